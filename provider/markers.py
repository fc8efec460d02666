"""The marker by which the provider recognises the connectors it created.

Qualys does not enforce unique names, so a name alone identifies nothing. Every connector
the provider creates carries ``[qualys-cfn:<stack hash>:<LogicalResourceId>]`` at the end
of its description: the stack hash comes from the full StackId (which holds a unique
GUID), so a connector is claimed by exactly one resource of exactly one stack.
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
    """The description as written to Qualys: the user's text, then the marker."""
    return f"{description}\n{mark}" if description else mark


def owned_by_resource(connector: Connector, stack_id: str, logical_resource_id: str) -> bool:
    """Whether this resource of this stack created the connector."""
    return marker(stack_id, logical_resource_id) in (connector.description or "")


def owned_by_stack(connector: Connector, stack_id: str) -> bool:
    """Whether any resource of this stack created the connector."""
    return f"{_PREFIX}{stack_hash(stack_id)}:" in (connector.description or "")
