"""The engine that sends custom resource events through a stack's life and rolls back failures."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Final, NoReturn

import boto3
from moto.cloudformation.models import Stack, cloudformation_backends
from moto.cloudformation.parsing import OutputMap, ResourceMap

from sandbox.cfn_responses import CfnResponse, ResponseCollector
from sandbox.cloudformation.events import (
    FAILED,
    SUCCESS,
    Outcome,
    RequestType,
    SentEvent,
    build_event,
    stack_account_and_region,
    stringify_properties,
)
from sandbox.cloudformation.template import dependency_order, is_custom, resolved_properties
from sandbox.moto_patches import CustomResourceTarget, TopicServiceToken, is_topic_arn

logger = logging.getLogger(__name__)

#: CloudFormation rejects a response body above this size.
MAX_RESPONSE_BYTES: Final = 4096
MAX_PHYSICAL_ID_BYTES: Final = 1024
_UPDATABLE: Final = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"})

#: One change to a stack undone; a failing one raises StackOperationError.
Step = Callable[[], None]

#: ``deliver(topic_arn, payload)``: a request sent to a ServiceToken that is an SNS topic,
#: returning once it is answered or given up on (``sandbox.topics.TopicDelivery``).
TopicDeliverer = Callable[[str, str], None]


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
class CustomResourceRecord:
    """What CloudFormation remembers of a custom resource between requests."""

    logical_id: str
    resource_type: str
    service_token: str
    physical_id: str
    properties: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)


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


class CloudFormationEngine:
    """Sends custom resource events the way CloudFormation does and judges the answers.

    moto (with ``sandbox.moto_patches``) sends a custom resource's Create and resolves
    ``Fn::GetAtt`` from the answer; the engine does the rest on moto's own stack objects:
    the event in its real shape, the checks CloudFormation makes on the response (one
    response, under 4,096 bytes, a non-empty PhysicalResourceId), Update events with
    ``OldResourceProperties``, replacement and its cleanup Delete, Delete events in reverse
    dependency order when a stack goes, and the rollback of a failed Create or Update.

    Both rollbacks are one mechanism: the changes made so far as a list of undo steps in
    the order they were made, run newest first under CloudFormation's rollback statuses.

    A ServiceToken is a Lambda function, invoked asynchronously, or an SNS topic (the
    central provider's), whose requests ``topics`` delivers.

    ``collector`` must be capturing (``ResponseCollector.capture``) while events are sent.
    """

    def __init__(
        self, collector: ResponseCollector, *, topics: TopicDeliverer | None = None
    ) -> None:
        self._collector = collector
        self._topics = topics
        self._records: dict[str, dict[str, CustomResourceRecord]] = {}
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

    def dispatch_create(self, target: CustomResourceTarget, moto_event: dict[str, Any]) -> None:
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
        outcome = self._send(event, lambda payload: self._invoke_moto_target(target, payload))
        if outcome.physical_id:
            # A failed resource that named itself stays part of the stack, as in
            # CloudFormation: the rollback, or a Delete after ROLLBACK_FAILED, deletes it.
            self._records.setdefault(stack_id, {})[logical_id] = CustomResourceRecord(
                logical_id=logical_id,
                resource_type=event["ResourceType"],
                service_token=event["ServiceToken"],
                physical_id=outcome.physical_id,
                properties=properties,
                data=outcome.data,
            )
        if not outcome.succeeded:
            raise CustomResourceFailedError(
                stack_id=stack_id, logical_id=logical_id, reason=outcome.reason
            )
        # What moto's own cfnresponse endpoint does, minus verify_readiness: that would
        # create the remaining resources out of order; moto's create loop checks instead.
        self._stack(stack_id).get_custom_resource(logical_id).set_data(outcome.data)

    # -- stack operations --

    def rollback_create(self, stack_id: str, error: CustomResourceFailedError) -> NoReturn:
        """Undo a failed CreateStack: Delete what was created, newest first."""
        stack = self._stack(stack_id)
        self._roll_back(stack, error, self._tear_down_steps(stack), kind="ROLLBACK")

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
            name: resolved_properties(template, name, stack.resource_map)
            for name in order
            if not is_custom(template["Resources"][name]["Type"])
        }
        stack.status = "UPDATE_IN_PROGRESS"
        stack._add_stack_event("UPDATE_IN_PROGRESS", resource_status_reason="User Initiated")
        undo: list[Step] = []
        replaced: list[CustomResourceRecord] = []
        try:
            for name in order:
                resource_type = template["Resources"][name]["Type"]
                new = resolved_properties(template, name, new_map)
                if is_custom(resource_type):
                    self._update_custom(
                        stack=stack, name=name, new_properties=new, undo=undo, replaced=replaced
                    )
                elif new != old_native[name]:
                    self._update_native(stack, name, resource_type, old_native[name], new)
                    undo.append(
                        partial(
                            self._update_native, stack, name, resource_type, new, old_native[name]
                        )
                    )
        except CustomResourceFailedError as failure:
            self._roll_back(stack, failure, undo, kind="UPDATE_ROLLBACK")
        # The cleanup phase, newest first: a failure here never fails the update.
        for old in reversed(replaced):
            self._clean_up(stack, old, phase="cleanup")
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
            _run_newest_first(self._tear_down_steps(stack))
        except StackOperationError:
            stack.status = "DELETE_FAILED"
            raise

    # -- rollback --

    def _roll_back(
        self, stack: Stack, failure: CustomResourceFailedError, undo: Sequence[Step], *, kind: str
    ) -> NoReturn:
        """Undo the steps under ``<kind>_IN_PROGRESS`` and raise with the status they end in.

        ``kind`` is ``ROLLBACK`` after a failed Create and ``UPDATE_ROLLBACK`` after a
        failed Update; the first step that fails stops the rollback at ``<kind>_FAILED``.
        """
        stack.status = f"{kind}_IN_PROGRESS"
        stack._add_stack_event(f"{kind}_IN_PROGRESS", resource_status_reason=failure.reason)
        try:
            _run_newest_first(undo)
        except StackOperationError as rollback_error:
            stack.status = f"{kind}_FAILED"
            # From the rollback error, whose own context is the failure: both stay in the
            # traceback.
            raise StackOperationError(
                stack_name=stack.name,
                status=f"{kind}_FAILED",
                logical_id=failure.logical_id,
                reason=f"{failure.reason}; rollback failed: {rollback_error.reason}",
            ) from rollback_error
        stack.status = f"{kind}_COMPLETE"
        stack._add_stack_event(f"{kind}_COMPLETE")
        raise StackOperationError(
            stack_name=stack.name,
            status=f"{kind}_COMPLETE",
            logical_id=failure.logical_id,
            reason=failure.reason,
        ) from failure

    def _tear_down_steps(self, stack: Stack) -> list[Step]:
        """Undoing the stack's creation, as steps in the order it was made."""
        template = stack.template_dict
        records = dict(self._records.get(stack.stack_id, {}))
        # The records were made first and the outputs last: forgotten last, dropped first.
        steps: list[Step] = [partial(self._forget, stack)]
        for name in dependency_order(template):
            if name in records:
                steps.append(partial(self._delete_custom, stack, records[name]))
            elif not is_custom(template["Resources"][name]["Type"]):
                steps.append(partial(self._delete_native, stack, name))
        steps.append(partial(self._drop_outputs, stack))
        return steps

    def _forget(self, stack: Stack) -> None:
        self._records.pop(stack.stack_id, None)

    @staticmethod
    def _drop_outputs(stack: Stack) -> None:
        # A stack that is going has no outputs; moto would otherwise resolve them lazily
        # and so re-create (and send Create to) the resources removed here.
        stack.output_map = OutputMap(stack.resource_map, {"Outputs": {}}, stack.stack_id)

    def _delete_custom(self, stack: Stack, record: CustomResourceRecord) -> None:
        outcome = self._send_request(stack, "Delete", record)
        _fail_step_unless_done(stack, record.logical_id, outcome, status="DELETE_FAILED")
        stack.resource_map._parsed_resources.pop(record.logical_id, None)
        # A retried Delete (after DELETE_FAILED) skips what is already gone.
        self._records.get(stack.stack_id, {}).pop(record.logical_id, None)

    @staticmethod
    def _delete_native(stack: Stack, name: str) -> None:
        parsed = stack.resource_map._parsed_resources
        if name in parsed:
            stack.resource_map._delete_resource(
                parsed[name], stack.template_dict["Resources"][name]
            )
            parsed.pop(name)

    def _clean_up(self, stack: Stack, record: CustomResourceRecord, *, phase: str) -> None:
        # A physical resource no longer in the stack: CloudFormation leaves it behind when
        # its Delete fails, and the stack operation still completes.
        outcome = self._send_request(stack, "Delete", record)
        if not outcome.succeeded:
            self.anomalies.append(f"{phase} Delete of {record.logical_id} failed: {outcome.reason}")

    # -- updates --

    def _update_custom(
        self,
        *,
        stack: Stack,
        name: str,
        new_properties: dict[str, Any],
        undo: list[Step],
        replaced: list[CustomResourceRecord],
    ) -> None:
        before = self._records[stack.stack_id][name]
        properties = stringify_properties(new_properties)
        if properties == before.properties:
            return
        outcome = self._send_request(
            stack, "Update", before, properties=properties, old_properties=before.properties
        )
        if not outcome.succeeded:
            # CloudFormation rolls the failed resource back too: it cannot know how far
            # the provider got.
            undo.append(lambda: self._restore(stack, before, properties))
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
        self._remember(stack, after)
        if after.physical_id != before.physical_id:
            replaced.append(before)
            undo.append(lambda: self._undo_replacement(stack, before, after))
        else:
            undo.append(lambda: self._restore(stack, before, properties))

    def _restore(
        self, stack: Stack, before: CustomResourceRecord, attempted: dict[str, Any]
    ) -> None:
        # The Update that failed or is undone, with old and new properties swapped.
        current = self._records[stack.stack_id][before.logical_id]
        outcome = self._send_request(
            stack, "Update", current, properties=before.properties, old_properties=attempted
        )
        _fail_step_unless_done(stack, before.logical_id, outcome, status="UPDATE_ROLLBACK_FAILED")
        self._remember(stack, replace(before, data=outcome.data or before.data))

    def _undo_replacement(
        self, stack: Stack, before: CustomResourceRecord, after: CustomResourceRecord
    ) -> None:
        self._clean_up(stack, after, phase="rollback")
        self._remember(stack, before)

    def _remember(self, stack: Stack, record: CustomResourceRecord) -> None:
        # moto resolves Fn::GetAtt from the custom model's data, so both must agree.
        self._records.setdefault(stack.stack_id, {})[record.logical_id] = record
        stack.get_custom_resource(record.logical_id).set_data(record.data)

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

    # -- sending --

    def _send_request(
        self,
        stack: Stack,
        request_type: RequestType,
        record: CustomResourceRecord,
        *,
        properties: Mapping[str, Any] | None = None,
        old_properties: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Send a request for a resource the stack has (by default with its own properties)."""
        return self._send_to_stack(
            stack,
            build_event(
                request_type=request_type,
                stack_id=stack.stack_id,
                logical_id=record.logical_id,
                resource_type=record.resource_type,
                properties=record.properties if properties is None else properties,
                physical_id=record.physical_id,
                old_properties=old_properties,
            ),
        )

    def _send_to_stack(self, stack: Stack, event: dict[str, Any]) -> Outcome:
        account, region = stack_account_and_region(stack.stack_id)

        token = event["ServiceToken"]

        def invoke(payload: str) -> None:
            if is_topic_arn(token):
                self._publish(token, payload)
                return
            with as_account(account):
                self._client("lambda", region).invoke(
                    FunctionName=token, InvocationType="Event", Payload=payload
                )

        return self._send(event, invoke)

    def _invoke_moto_target(self, target: CustomResourceTarget, payload: str) -> None:
        # Inside moto's CreateStack: call the function the way moto itself does.
        if isinstance(target, TopicServiceToken):
            self._publish(target.arn, payload)
        else:
            target.invoke(payload, {"x-amz-invocation-type": "Event"}, {})

    def _publish(self, topic_arn: str, payload: str) -> None:
        if self._topics is None:
            raise RuntimeError(f"ServiceToken {topic_arn} is a topic, and no delivery was given")
        self._topics(topic_arn, payload)

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

    # -- moto --

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


def _run_newest_first(steps: Sequence[Step]) -> None:
    for step in reversed(steps):
        step()


def _fail_step_unless_done(stack: Stack, logical_id: str, outcome: Outcome, *, status: str) -> None:
    if not outcome.succeeded:
        raise StackOperationError(
            stack_name=stack.name, status=status, logical_id=logical_id, reason=outcome.reason
        )


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
