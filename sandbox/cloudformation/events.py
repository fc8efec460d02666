"""The custom resource events CloudFormation sends and what it makes of the answers."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import quote

RequestType = Literal["Create", "Update", "Delete"]
SUCCESS: Final = "SUCCESS"
FAILED: Final = "FAILED"
_STACK_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):cloudformation:(?P<region>[^:]+):(?P<account>\d{12}):stack/"
)


@dataclass(frozen=True)
class Outcome:
    """What CloudFormation made of one custom resource response."""

    status: str
    reason: str
    physical_id: str
    data: dict[str, Any]

    @property
    def succeeded(self) -> bool:
        """Whether CloudFormation would count the request as done."""
        return self.status == SUCCESS


@dataclass(frozen=True)
class SentEvent:
    """One event the sandbox sent to a provider, with the outcome (no ResponseURL kept)."""

    stack_id: str
    logical_id: str
    request_type: str
    request_id: str
    physical_id: str | None
    properties: dict[str, Any]
    old_properties: dict[str, Any] | None
    outcome: Outcome


def stringify_properties(value: Any) -> Any:
    """Turn every scalar into the string CloudFormation sends (``true``, ``240``)."""
    if isinstance(value, dict):
        return {str(k): stringify_properties(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [stringify_properties(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def response_url(*, region: str, stack_id: str, logical_id: str, request_id: str) -> str:
    """A ResponseURL shaped like CloudFormation's presigned S3 URL (it is never fetched)."""
    now = datetime.now(tz=UTC)
    key = quote(f"{stack_id}|{logical_id}|{request_id}", safe="")
    credential = quote(f"AKIA{secrets.token_hex(8).upper()}/{now:%Y%m%d}/{region}/s3/aws4_request")
    query = (
        f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={now:%Y%m%dT%H%M%SZ}"
        f"&X-Amz-SignedHeaders=host&X-Amz-Expires=7200&X-Amz-Credential={credential}"
        f"&X-Amz-Signature={secrets.token_hex(32)}"
    )
    host = f"cloudformation-custom-resource-response-{region.replace('-', '')}.s3.amazonaws.com"
    return f"https://{host}/{key}?{query}"


def build_event(
    *,
    request_type: RequestType,
    stack_id: str,
    logical_id: str,
    resource_type: str,
    properties: Mapping[str, Any],
    request_id: str | None = None,
    physical_id: str | None = None,
    old_properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event CloudFormation sends for one custom resource request."""
    request_id = request_id or str(uuid.uuid4())
    resource_properties = stringify_properties(dict(properties))
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": resource_properties["ServiceToken"],
        "ResponseURL": response_url(
            region=stack_region(stack_id),
            stack_id=stack_id,
            logical_id=logical_id,
            request_id=request_id,
        ),
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": resource_properties,
    }
    if request_type != "Create":
        assert physical_id, f"{request_type} needs the PhysicalResourceId"
        event["PhysicalResourceId"] = physical_id
    if request_type == "Update":
        assert old_properties is not None, "Update needs OldResourceProperties"
        event["OldResourceProperties"] = stringify_properties(dict(old_properties))
    return event


def stack_account_and_region(stack_id: str) -> tuple[str, str]:
    """The account and region a stack id names."""
    match = _STACK_ARN.match(stack_id)
    if match is None:
        raise ValueError(f"not a CloudFormation stack id: {stack_id}")
    return match["account"], match["region"]


def stack_region(stack_id: str) -> str:
    """The region a stack id names."""
    return stack_account_and_region(stack_id)[1]
