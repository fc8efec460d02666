"""What the lifecycle exchanges: request, result, outcome, and the Qualys API it needs."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from provider.deadline import Deadline
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges, Criterion

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
    properties: Mapping[str, Any] = field(default_factory=dict)
    old_properties: Mapping[str, Any] = field(default_factory=dict)

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
            properties=event.get("ResourceProperties") or {},
            old_properties=event.get("OldResourceProperties") or {},
        )

    @property
    def stack(self) -> StackRef:
        """The StackId's partition, region, account and stack name."""
        return StackRef.parse(self.stack_id)

    @property
    def connector_name(self) -> str | None:
        """The ConnectorName property as sent, for messages about any outcome."""
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
