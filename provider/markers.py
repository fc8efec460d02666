"""The marker by which the provider recognises the connectors it created.

Qualys does not enforce unique names, so a name alone identifies nothing. Every connector
the provider creates carries ``[qualys-cfn:<stack hash>:<LogicalResourceId>]`` as the first
word of its description: the stack hash comes from the full StackId (which holds a unique
GUID), so a connector is claimed by exactly one resource of exactly one stack. First, so
that Qualys cutting a long description short cannot cut it; a word of its own, so that the
same text copied anywhere else in a description claims nothing.
"""

from __future__ import annotations

import hashlib

from provider.qualys.models import Connector

_PREFIX = "[qualys-cfn:"


def stack_hash(stack_id: str) -> str:
    """A short stable digest of the StackId (16 hex characters)."""
    return hashlib.sha256(stack_id.encode()).hexdigest()[:16]


def marker(stack_id: str, logical_resource_id: str) -> str:
    """The marker of one resource of one stack."""
    return f"{_PREFIX}{stack_hash(stack_id)}:{logical_resource_id}]"


def with_marker(description: str, mark: str) -> str:
    """The description as written to Qualys: the marker, then the user's text."""
    return f"{mark} {description}" if description else mark


def leading_marker(connector: Connector) -> str | None:
    """The marker in the place the provider writes it (the description's first word)."""
    word = (connector.description or "").split(" ", 1)[0]
    if word.startswith(_PREFIX) and word.endswith("]"):
        return word
    return None


def owned_by_resource(connector: Connector, stack_id: str, logical_resource_id: str) -> bool:
    """Whether this resource of this stack created the connector."""
    return leading_marker(connector) == marker(stack_id, logical_resource_id)


def owned_by_stack(connector: Connector, stack_id: str) -> bool:
    """Whether any resource of this stack created the connector."""
    found = leading_marker(connector)
    return found is not None and found.startswith(f"{_PREFIX}{stack_hash(stack_id)}:")
