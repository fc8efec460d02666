"""CloudFormation's part for custom resources, played where moto leaves it out.

moto (with ``sandbox.moto_patches``) sends a custom resource's Create and resolves
``Fn::GetAtt`` from the answer. Everything else CloudFormation does with a custom resource
is done here, on moto's own stack objects: the event in its real shape (scalars as
strings, a presigned-looking ``ResponseURL``), the checks CloudFormation makes on the
response (one response, under 4,096 bytes, a non-empty PhysicalResourceId), the rollback
of a failed Create, Update events with ``OldResourceProperties``, replacement and its
cleanup Delete, the rollback of a failed Update, and Delete events in reverse dependency
order when a stack goes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, NoReturn
from urllib.parse import quote

import boto3
from moto.awslambda.models import LambdaFunction
from moto.cloudformation.models import Stack, cloudformation_backends
from moto.cloudformation.parsing import OutputMap, ResourceMap, clean_json

from sandbox.cfn_responses import CfnResponse, ResponseCollector

logger = logging.getLogger(__name__)

RequestType = Literal["Create", "Update", "Delete"]
SUCCESS: Final = "SUCCESS"
FAILED: Final = "FAILED"
#: CloudFormation rejects a response body above this size.
MAX_RESPONSE_BYTES: Final = 4096
MAX_PHYSICAL_ID_BYTES: Final = 1024
_STACK_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):cloudformation:(?P<region>[^:]+):(?P<account>\d{12}):stack/"
)
_UPDATABLE: Final = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"})
_SUB_REFERENCE = re.compile(r"\$\{(?!!)([^}]+)\}")


class StackOperationError(Exception):
    """A stack operation failed the way CloudFormation would report it.

    ``status`` is the stack's status afterwards (for example ``ROLLBACK_COMPLETE``),
    ``logical_id`` the resource that failed and ``reason`` the reason it gave.
    """

    def __init__(self, *, stack_name: str, status: str, logical_id: str, reason: str) -> None:
        super().__init__(f"stack {stack_name}: {logical_id} failed ({reason}); stack is {status}")
        self.stack_name = stack_name
        self.status = status
        self.logical_id = logical_id
        self.reason = reason


class CustomResourceFailedError(Exception):
    """Raised inside moto's CreateStack to stop it where CloudFormation would stop."""

    def __init__(self, *, stack_id: str, logical_id: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}")
        self.stack_id = stack_id
        self.logical_id = logical_id
        self.reason = reason


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
class CustomResourceRecord:
    """What CloudFormation remembers of a custom resource between requests."""

    logical_id: str
    resource_type: str
    service_token: str
    physical_id: str
    properties: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)


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


# --- pure helpers ------------------------------------------------------------------------


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


def references(node: Any) -> set[str]:
    """Names a template fragment refers to through Ref, GetAtt and Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value.split(".")[0] if isinstance(value, str) else value[0]
                found.add(str(target))
            elif key == "Fn::Sub":
                text, local = (value, {}) if isinstance(value, str) else (value[0], value[1])
                found |= {name.split(".")[0] for name in _SUB_REFERENCE.findall(text)}
                found -= set(local)
                found |= references(local)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def dependency_order(template: Mapping[str, Any]) -> list[str]:
    """The template's resources, each after everything it depends on (template order kept)."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    depends: dict[str, set[str]] = {}
    for name, body in resources.items():
        explicit = body.get("DependsOn", [])
        names = {explicit} if isinstance(explicit, str) else set(explicit)
        depends[name] = (references(body) | names) & set(resources) - {name}
    ordered: list[str] = []
    remaining = dict(depends)
    while remaining:
        ready = [n for n, needs in remaining.items() if needs <= set(ordered)]
        if not ready:
            raise ValueError(f"circular dependency between {sorted(remaining)}")
        ordered.extend(ready)
        for name in ready:
            del remaining[name]
    return ordered


def is_custom(resource_type: str) -> bool:
    """Whether CloudFormation hands this resource type to a provider."""
    return resource_type.startswith("Custom::") or (
        resource_type == "AWS::CloudFormation::CustomResource"
    )


@contextmanager
def as_account(account_id: str) -> Iterator[None]:
    """Make moto serve the calls in the block from ``account_id``."""
    previous = os.environ.get("MOTO_ACCOUNT_ID")
    os.environ["MOTO_ACCOUNT_ID"] = account_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MOTO_ACCOUNT_ID", None)
        else:
            os.environ["MOTO_ACCOUNT_ID"] = previous


# --- the engine ----------------------------------------------------------------------------


Invoker = Callable[[str, dict[str, Any]], None]


class CloudFormationEngine:
    """Sends custom resource events the way CloudFormation does and judges the answers.

    ``collector`` must be capturing (``ResponseCollector.capture``) while events are sent.
    """

    def __init__(self, collector: ResponseCollector) -> None:
        self._collector = collector
        self._records: dict[str, dict[str, CustomResourceRecord]] = {}
        self._failed_creates: dict[str, dict[str, CustomResourceRecord]] = {}
        self._clients: dict[str, Any] = {}
        self.events: list[SentEvent] = []
        #: Protocol breaches CloudFormation would have tolerated or hidden (tests assert none).
        self.anomalies: list[str] = []
        #: Changes to native resources that moto and the sandbox do not apply on update.
        self.unapplied: list[str] = []

    # -- records --

    def records(self, stack_id: str) -> dict[str, CustomResourceRecord]:
        """The custom resources of a stack as CloudFormation knows them."""
        return dict(self._records.get(stack_id, {}))

    # -- moto's Create --

    def dispatch_create(self, function: LambdaFunction, moto_event: dict[str, Any]) -> None:
        """Send moto's Create as CloudFormation would, and hand the answer back to moto."""
        stack_id = moto_event["StackId"]
        logical_id = moto_event["LogicalResourceId"]
        properties = stringify_properties(moto_event["ResourceProperties"])
        event = build_event(
            request_type="Create",
            stack_id=stack_id,
            logical_id=logical_id,
            resource_type=moto_event["ResourceType"],
            properties=properties,
            request_id=moto_event["RequestId"],
        )
        outcome = self._send(event, lambda payload: self._invoke_moto_function(function, payload))
        record = CustomResourceRecord(
            logical_id=logical_id,
            resource_type=event["ResourceType"],
            service_token=event["ServiceToken"],
            physical_id=outcome.physical_id,
            properties=properties,
            data=outcome.data,
        )
        stack = self._stack(stack_id)
        if not outcome.succeeded:
            if outcome.physical_id:
                self._failed_creates.setdefault(stack_id, {})[logical_id] = record
            raise CustomResourceFailedError(
                stack_id=stack_id, logical_id=logical_id, reason=outcome.reason
            )
        self._records.setdefault(stack_id, {})[logical_id] = record
        # What moto's own cfnresponse endpoint does, minus verify_readiness: that would
        # create the remaining resources out of order; moto's create loop checks instead.
        stack.get_custom_resource(logical_id).set_data(outcome.data)

    # -- stack operations --

    def rollback_create(self, stack_id: str, error: CustomResourceFailedError) -> NoReturn:
        """Undo a failed CreateStack: Delete what was created, newest first."""
        stack = self._stack(stack_id)
        failed = self._failed_creates.pop(stack_id, {})
        known = {**self._records.get(stack_id, {}), **failed}
        stack.status = "ROLLBACK_IN_PROGRESS"
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=error.reason)
        try:
            self._tear_down(stack, known)
        except StackOperationError as rollback_error:
            stack.status = "ROLLBACK_FAILED"
            raise StackOperationError(
                stack_name=stack.name,
                status="ROLLBACK_FAILED",
                logical_id=error.logical_id,
                reason=f"{error.reason}; rollback failed: {rollback_error.reason}",
            ) from rollback_error
        stack.status = "ROLLBACK_COMPLETE"
        stack._add_stack_event("ROLLBACK_COMPLETE")
        self._records.pop(stack_id, None)
        raise StackOperationError(
            stack_name=stack.name,
            status="ROLLBACK_COMPLETE",
            logical_id=error.logical_id,
            reason=error.reason,
        ) from error

    def update_stack(self, stack_id: str, parameters: Mapping[str, str]) -> None:
        """Update a stack's parameters: Update events, replacement cleanup, rollback."""
        stack = self._stack(stack_id)
        if stack.status not in _UPDATABLE:
            raise StackOperationError(
                stack_name=stack.name,
                status=stack.status,
                logical_id=stack.name,
                reason=f"stack is in {stack.status} state and can not be updated",
            )
        template = stack.template_dict
        merged = {**stack.parameters, **parameters}
        account, region = stack_account_and_region(stack_id)
        new_map = ResourceMap(
            stack_id,
            stack.name,
            merged,
            stack.tags,
            region_name=region,
            account_id=account,
            template=template,
            cross_stack_resources=stack.cross_stack_resources,
        )
        new_map.load()
        live = {
            name: resource
            for name, resource in stack.resource_map._parsed_resources.items()
            if name in template["Resources"]
        }
        new_map._parsed_resources.update(live)
        order = [name for name in dependency_order(template) if name in live]
        old_native = {
            name: self._resolve(template, name, stack.resource_map)
            for name in order
            if not is_custom(template["Resources"][name]["Type"])
        }
        stack.status = "UPDATE_IN_PROGRESS"
        stack._add_stack_event("UPDATE_IN_PROGRESS", resource_status_reason="User Initiated")
        undo: list[Callable[[], None]] = []
        replaced: list[CustomResourceRecord] = []
        records = self._records.setdefault(stack_id, {})
        try:
            for name in order:
                resource_type = template["Resources"][name]["Type"]
                new = self._resolve(template, name, new_map)
                if is_custom(resource_type):
                    self._update_custom(
                        stack=stack,
                        records=records,
                        name=name,
                        new_properties=new,
                        undo=undo,
                        replaced=replaced,
                    )
                elif new != old_native[name]:
                    self._update_native(stack, name, resource_type, old_native[name], new)
                    undo.append(
                        self._native_undo(stack, name, resource_type, new, old_native[name])
                    )
        except CustomResourceFailedError as failure:
            self._roll_back_update(stack, failure, undo)
        # The cleanup phase, newest first: a failure here never fails the update.
        for old in reversed(replaced):
            outcome = self._send_delete(stack, old)
            if not outcome.succeeded:
                self.anomalies.append(
                    f"cleanup Delete of {old.logical_id} failed: {outcome.reason}"
                )
        stack.parameters = merged
        stack.resource_map = new_map
        stack.output_map = stack._create_output_map()
        stack.status = "UPDATE_COMPLETE"
        stack._add_stack_event("UPDATE_COMPLETE")

    def delete_stack(self, stack_id: str) -> None:
        """Send Delete to the custom resources and remove the native ones, newest first."""
        stack = self._stack(stack_id)
        stack.status = "DELETE_IN_PROGRESS"
        stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        try:
            self._tear_down(stack, dict(self._records.get(stack_id, {})))
        except StackOperationError:
            stack.status = "DELETE_FAILED"
            raise
        self._records.pop(stack_id, None)

    # -- internals --

    def _update_custom(
        self,
        *,
        stack: Stack,
        records: dict[str, CustomResourceRecord],
        name: str,
        new_properties: dict[str, Any],
        undo: list[Callable[[], None]],
        replaced: list[CustomResourceRecord],
    ) -> None:
        before = records[name]
        properties = stringify_properties(new_properties)
        if properties == before.properties:
            return
        outcome = self._send_to_stack(
            stack,
            build_event(
                request_type="Update",
                stack_id=stack.stack_id,
                logical_id=name,
                resource_type=before.resource_type,
                properties=properties,
                physical_id=before.physical_id,
                old_properties=before.properties,
            ),
        )
        if not outcome.succeeded:
            # CloudFormation rolls the failed resource back too: it cannot know how far
            # the provider got.
            undo.append(lambda: self._restore(stack, records, before, properties))
            raise CustomResourceFailedError(
                stack_id=stack.stack_id, logical_id=name, reason=outcome.reason
            )
        after = replace(
            before,
            physical_id=outcome.physical_id,
            properties=properties,
            data=outcome.data,
            service_token=properties["ServiceToken"],
        )
        records[name] = after
        stack.get_custom_resource(name).set_data(outcome.data)
        if after.physical_id != before.physical_id:
            replaced.append(before)
            undo.append(lambda: self._undo_replacement(stack, records, before, after))
        else:
            undo.append(lambda: self._restore(stack, records, before, properties))

    def _restore(
        self,
        stack: Stack,
        records: dict[str, CustomResourceRecord],
        before: CustomResourceRecord,
        attempted: dict[str, Any],
    ) -> None:
        outcome = self._send_to_stack(
            stack,
            build_event(
                request_type="Update",
                stack_id=stack.stack_id,
                logical_id=before.logical_id,
                resource_type=before.resource_type,
                properties=before.properties,
                physical_id=records[before.logical_id].physical_id,
                old_properties=attempted,
            ),
        )
        if not outcome.succeeded:
            raise StackOperationError(
                stack_name=stack.name,
                status="UPDATE_ROLLBACK_FAILED",
                logical_id=before.logical_id,
                reason=outcome.reason,
            )
        records[before.logical_id] = replace(before, data=outcome.data or before.data)
        stack.get_custom_resource(before.logical_id).set_data(records[before.logical_id].data)

    def _undo_replacement(
        self,
        stack: Stack,
        records: dict[str, CustomResourceRecord],
        before: CustomResourceRecord,
        after: CustomResourceRecord,
    ) -> None:
        outcome = self._send_delete(stack, after)
        if not outcome.succeeded:
            self.anomalies.append(f"rollback Delete of {after.logical_id} failed: {outcome.reason}")
        records[before.logical_id] = before
        stack.get_custom_resource(before.logical_id).set_data(before.data)

    def _roll_back_update(
        self, stack: Stack, failure: CustomResourceFailedError, undo: list[Callable[[], None]]
    ) -> NoReturn:
        stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=failure.reason)
        try:
            for step in reversed(undo):
                step()
        except StackOperationError as rollback_error:
            stack.status = "UPDATE_ROLLBACK_FAILED"
            raise StackOperationError(
                stack_name=stack.name,
                status="UPDATE_ROLLBACK_FAILED",
                logical_id=failure.logical_id,
                reason=f"{failure.reason}; rollback failed: {rollback_error.reason}",
            ) from failure
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        raise StackOperationError(
            stack_name=stack.name,
            status="UPDATE_ROLLBACK_COMPLETE",
            logical_id=failure.logical_id,
            reason=failure.reason,
        ) from failure

    def _update_native(
        self,
        stack: Stack,
        name: str,
        resource_type: str,
        old: dict[str, Any],
        new: dict[str, Any],
    ) -> None:
        account, region = stack_account_and_region(stack.stack_id)
        resource = stack.resource_map._parsed_resources[name]
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        applied: set[str] = set()
        with as_account(account):
            if resource_type == "AWS::IAM::Role":
                applied = _update_role(self._client("iam", region), resource.name, old, new)
            elif resource_type == "AWS::Lambda::Function":
                applied = _update_function(
                    self._client("lambda", region), resource.function_name, new
                )
        for key in changed:
            if key not in applied:
                message = f"{name} ({resource_type}): change of {key} not applied by the sandbox"
                logger.warning("%s", message)
                self.unapplied.append(message)

    def _native_undo(
        self,
        stack: Stack,
        name: str,
        resource_type: str,
        new: dict[str, Any],
        old: dict[str, Any],
    ) -> Callable[[], None]:
        return lambda: self._update_native(stack, name, resource_type, new, old)

    def _tear_down(self, stack: Stack, customs: Mapping[str, CustomResourceRecord]) -> None:
        # A stack that is going has no outputs; moto would otherwise resolve them lazily
        # and so re-create (and send Create to) the resources removed here.
        stack.output_map = OutputMap(stack.resource_map, {"Outputs": {}}, stack.stack_id)
        template = stack.template_dict
        parsed = stack.resource_map._parsed_resources
        for name in reversed(dependency_order(template)):
            if name in customs:
                outcome = self._send_delete(stack, customs[name])
                if not outcome.succeeded:
                    raise StackOperationError(
                        stack_name=stack.name,
                        status="DELETE_FAILED",
                        logical_id=name,
                        reason=outcome.reason,
                    )
                parsed.pop(name, None)
                # A retried Delete (after DELETE_FAILED) skips what is already gone.
                self._records.get(stack.stack_id, {}).pop(name, None)
            elif name in parsed and not is_custom(template["Resources"][name]["Type"]):
                stack.resource_map._delete_resource(parsed[name], template["Resources"][name])
                parsed.pop(name)

    def _send_delete(self, stack: Stack, record: CustomResourceRecord) -> Outcome:
        return self._send_to_stack(
            stack,
            build_event(
                request_type="Delete",
                stack_id=stack.stack_id,
                logical_id=record.logical_id,
                resource_type=record.resource_type,
                properties=record.properties,
                physical_id=record.physical_id,
            ),
        )

    def _send_to_stack(self, stack: Stack, event: dict[str, Any]) -> Outcome:
        account, region = stack_account_and_region(stack.stack_id)

        def invoke(payload: str) -> None:
            with as_account(account):
                self._client("lambda", region).invoke(
                    FunctionName=event["ServiceToken"], InvocationType="Event", Payload=payload
                )

        return self._send(event, invoke)

    @staticmethod
    def _invoke_moto_function(function: LambdaFunction, payload: str) -> None:
        # Inside moto's CreateStack: call the function the way moto itself does.
        function.invoke(payload, {"x-amz-invocation-type": "Event"}, {})

    def _send(self, event: dict[str, Any], invoke: Callable[[str], None]) -> Outcome:
        invoke(json.dumps(event))
        outcome = self._judge(event, self._collector.for_request(event["RequestId"]))
        self.events.append(
            SentEvent(
                stack_id=event["StackId"],
                logical_id=event["LogicalResourceId"],
                request_type=event["RequestType"],
                request_id=event["RequestId"],
                physical_id=event.get("PhysicalResourceId"),
                properties=event["ResourceProperties"],
                old_properties=event.get("OldResourceProperties"),
                outcome=outcome,
            )
        )
        logger.info(
            "%s %s %s: %s %s",
            event["RequestType"],
            event["LogicalResourceId"],
            outcome.physical_id,
            outcome.status,
            outcome.reason,
        )
        return outcome

    def _judge(self, event: dict[str, Any], responses: list[CfnResponse]) -> Outcome:
        """Apply the checks CloudFormation makes on a custom resource response."""
        where = f"{event['RequestType']} {event['LogicalResourceId']}"
        if not responses:
            return Outcome(
                status=FAILED,
                reason="CloudFormation did not receive a response from your Custom Resource "
                "(it would wait until ServiceTimeout)",
                physical_id=event.get("PhysicalResourceId", ""),
                data={},
            )
        if len(responses) > 1:
            self.anomalies.append(f"{where}: {len(responses)} responses to one request")
        response = responses[0]
        expected_path = event["ResponseURL"].split("://", 1)[1].split("/", 1)[1].split("?")[0]
        if response.path.lstrip("/") != expected_path:
            self.anomalies.append(f"{where}: response sent to another URL")
        for key in ("StackId", "LogicalResourceId"):
            if response.body.get(key) != event[key]:
                self.anomalies.append(f"{where}: response {key} does not match the request")
        physical_id = response.physical_resource_id
        if len(response.raw) > MAX_RESPONSE_BYTES:
            return Outcome(FAILED, "Response object is too long.", physical_id, {})
        if response.status not in (SUCCESS, FAILED):
            return Outcome(FAILED, f"Invalid response status {response.status!r}", physical_id, {})
        if not physical_id or len(physical_id.encode()) > MAX_PHYSICAL_ID_BYTES:
            return Outcome(FAILED, "Invalid PhysicalResourceId", physical_id, {})
        if response.status == FAILED:
            return Outcome(FAILED, response.reason or "Unknown failure", physical_id, {})
        return Outcome(SUCCESS, response.reason, physical_id, dict(response.data))

    @staticmethod
    def _resolve(template: Mapping[str, Any], name: str, resource_map: ResourceMap) -> Any:
        properties = copy.deepcopy(template["Resources"][name].get("Properties", {}))
        return clean_json(properties, resource_map)

    @staticmethod
    def _stack(stack_id: str) -> Stack:
        account, region = stack_account_and_region(stack_id)
        return cloudformation_backends[account][region].get_stack(stack_id)

    def _client(self, service: str, region: str) -> Any:
        # One client per service and region; moto picks the account per call.
        key = f"{service}:{region}"
        if key not in self._clients:
            self._clients[key] = boto3.client(service, region_name=region)
        return self._clients[key]


def _update_role(client: Any, role_name: str, old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    applied = set()
    if new.get("AssumeRolePolicyDocument") != old.get("AssumeRolePolicyDocument"):
        document = new["AssumeRolePolicyDocument"]
        client.update_assume_role_policy(
            RoleName=role_name,
            PolicyDocument=document if isinstance(document, str) else json.dumps(document),
        )
        applied.add("AssumeRolePolicyDocument")
    if new.get("Policies") != old.get("Policies"):
        kept = {p["PolicyName"] for p in new.get("Policies", [])}
        for policy in old.get("Policies", []):
            if policy["PolicyName"] not in kept:
                client.delete_role_policy(RoleName=role_name, PolicyName=policy["PolicyName"])
        for policy in new.get("Policies", []):
            document = policy["PolicyDocument"]
            client.put_role_policy(
                RoleName=role_name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=document if isinstance(document, str) else json.dumps(document),
            )
        applied.add("Policies")
    return applied


_FUNCTION_SETTINGS: Final = ("Environment", "Timeout", "MemorySize", "Handler", "Description")


def _update_function(client: Any, function_name: str, new: dict[str, Any]) -> set[str]:
    changes = {key: new[key] for key in _FUNCTION_SETTINGS if key in new}
    if "Environment" in changes:
        variables = changes["Environment"].get("Variables", {})
        changes["Environment"] = {"Variables": {k: str(v) for k, v in variables.items()}}
    for key in ("Timeout", "MemorySize"):
        if key in changes:
            changes[key] = int(changes[key])
    client.update_function_configuration(FunctionName=function_name, **changes)
    return set(_FUNCTION_SETTINGS)
