"""What the lifecycle exchanges: request, result, outcome, and the Qualys API it needs."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from provider.deadline import Deadline
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges, Criterion

RESPONSE_LIMIT: Final = 4096
"""Bytes CloudFormation accepts in a custom resource's answer."""
REASON_LIMIT: Final = 199
"""Characters of a FAILED reason (crhelper keeps only the tail of one over 256)."""

CONNECTOR_TYPE: Final = "Custom::QualysConnector"
ACTIVATION_TYPE: Final = "Custom::QualysConnectorActivation"


class Outcome(enum.Enum):
    """What happened to a connector; the value is the word a message uses."""

    CREATED = "created"
    ACTIVATED = "activated"
    UPDATED = "updated"
    DEACTIVATED = "deactivated"
    DELETED = "deleted"
    FAILED = "failed"


UNKNOWN: Final = "unknown"


@dataclass(frozen=True)
class StackRef:
    """The parts of a CloudFormation StackId that a reader needs to find the stack."""

    partition: str
    region: str
    account_id: str
    stack_name: str

    @classmethod
    def parse(cls, stack_id: str) -> StackRef:
        """Parse ``arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<guid>``.

        Tolerant on purpose (the StackId only decorates a message): anything that is not a
        CloudFormation stack ARN yields ``unknown`` parts, and an empty part is ``unknown``.
        """
        parts = str(stack_id).split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "cloudformation":
            return cls(partition=UNKNOWN, region=UNKNOWN, account_id=UNKNOWN, stack_name=UNKNOWN)
        _, partition, _, region, account_id, resource = parts
        kind, _, rest = resource.partition("/")
        stack_name = rest.split("/", 1)[0] if kind == "stack" else ""
        return cls(
            partition=partition or UNKNOWN,
            region=region or UNKNOWN,
            account_id=account_id or UNKNOWN,
            stack_name=stack_name or UNKNOWN,
        )


class ConnectorApi(Protocol):
    """The Qualys operations the lifecycle needs; ``QualysClient`` provides them."""

    @property
    def api_version(self) -> ApiVersion: ...

    def create(self, changes: ConnectorChanges, *, deadline: Deadline) -> Connector: ...

    def get(self, connector_id: int, *, deadline: Deadline) -> Connector: ...

    def search(
        self, criteria: Sequence[Criterion], *, deadline: Deadline, page_size: int = 100
    ) -> list[Connector]: ...

    def update(
        self, connector_id: int, changes: ConnectorChanges, *, deadline: Deadline
    ) -> None: ...

    def delete(self, connector_id: int, *, deadline: Deadline) -> None: ...

    def run(self, connector_id: int, *, deadline: Deadline) -> None: ...


@dataclass(frozen=True)
class Request:
    """One custom resource event, reduced to what the lifecycle reads."""

    request_type: str
    request_id: str
    stack_id: str
    logical_resource_id: str
    resource_type: str
    physical_resource_id: str | None = None
    properties: object = field(default_factory=dict)
    """``ResourceProperties`` as sent: parsing checks that it is an object of properties."""
    old_properties: object = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        """The fields of a CloudFormation custom resource event."""
        return cls(
            request_type=str(event["RequestType"]),
            request_id=str(event["RequestId"]),
            stack_id=str(event["StackId"]),
            logical_resource_id=str(event["LogicalResourceId"]),
            resource_type=str(event.get("ResourceType", "")),
            physical_resource_id=event.get("PhysicalResourceId"),
            properties=event.get("ResourceProperties", {}),
            old_properties=event.get("OldResourceProperties", {}),
        )

    def answer_size(self, data: Mapping[str, str], *, physical_resource_id: str) -> int:
        """Bytes of the answer to this request with ``data``, encoded as crhelper sends it
        (``json.dumps``, so a character outside ASCII can take 12 bytes), with the longest
        reason the provider gives."""
        body = {
            "Status": "SUCCESS",
            "PhysicalResourceId": physical_resource_id,
            "StackId": self.stack_id,
            "RequestId": self.request_id,
            "LogicalResourceId": self.logical_resource_id,
            "Reason": "x" * REASON_LIMIT,
            "Data": dict(data),
            "NoEcho": False,
        }
        return len(json.dumps(body).encode())

    @property
    def stack(self) -> StackRef:
        """The StackId's partition, region, account and stack name."""
        return StackRef.parse(self.stack_id)

    @property
    def connector_name(self) -> str | None:
        """The ConnectorName property as sent, for messages about any outcome."""
        if not isinstance(self.properties, Mapping):
            return None
        name = self.properties.get("ConnectorName")
        return name if isinstance(name, str) and name else None


@dataclass(frozen=True)
class Result:
    """A successful outcome: the answer to CloudFormation and the facts for Slack."""

    physical_resource_id: str
    outcome: Outcome
    data: Mapping[str, str] = field(default_factory=dict)
    connector_name: str | None = None
    connector_id: str | None = None
    state: str | None = None
    note: str | None = None
    warning: str | None = None
    """Something a person should look at, though the request succeeded."""
    quiet: bool = False
    """Nothing happened worth a message: the Delete after a Create that never made
    anything (the failed Create has told Slack already)."""
