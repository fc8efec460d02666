"""The fault matrix: every operation under every fault the simulator can script, judged.

    python -m sandbox reliability        (make reliability)

Each cell runs one request of one resource type against the Qualys simulator with one
fault on the request's key call (the write whose outcome matters), through the real
handler and crhelper's send path, with a connector of the same name made by hand beside
it. Then it does what CloudFormation would do next (the rollback Delete after a failed
Create, a retry of a failed Delete) and checks: exactly one answer, a reason and an id
CloudFormation accepts, no orphaned or duplicate connector, nothing foreign touched, and
no secret in any answer, log line or Slack message.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto import mock_aws

from provider.handler import Container
from provider.lifecycle import ActivationPolicy
from provider.markers import owned_by_resource
from provider.qualys.client import RetryPolicy
from provider.qualys.models import Connector
from sandbox.cfn_responses import CfnResponse, ResponseCollector
from sandbox.qualys import Fault, QualysSimulator, SimConnector, SyncOutcome
from sandbox.slack import SlackReceiver

EVENTS = Path(__file__).resolve().parent.parent / "tests" / "events"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
USERNAME = "qualys-reliability"
PASSWORD = "Rel1ability-pa55word-never-shown"  # noqa: S105 - the sandbox's own, checked for leaks
ROLE = f"arn:aws:iam::{ACCOUNT}:role/qualys-connector-{REGION}"
BUDGET_MS = 14_000
"""Each request's Lambda time: a trickling answer is cut off by it, not by a test timeout."""

FAULTS: dict[str, Fault] = {
    "HTTP 401": Fault.http(401),
    "HTTP 403": Fault.http(403),
    "HTTP 404": Fault.http(404),
    "409 with ToWait": Fault.http(409, headers={"X-RateLimit-ToWait-Sec": "1"}),
    "409 without ToWait": Fault.http(409),
    "429 Retry-After": Fault.http(429, headers={"Retry-After": "1"}),
    "HTTP 500": Fault.http(500),
    "HTTP 502": Fault.http(502),
    "HTTP 503": Fault.http(503),
    "HTML page": Fault.html(),
    "malformed XML": Fault.malformed(),
    "truncated XML": Fault.truncated(),
    "trickling answer": Fault.trickle(pause=0.5),
    "oversized answer": Fault.oversized(20 * 1024 * 1024),
    "dropped before": Fault.drop(process=False),
    "dropped after": Fault.drop(process=True),
    "reset before": Fault.reset(process=False),
    "reset after": Fault.reset(process=True),
    **{
        code: Fault.response_code(code)
        for code in (
            "INVALID_REQUEST",
            "UNAUTHORIZED",
            "AUTH_CREDENTIALS_NEEDED",
            "OBJECT_NOT_FOUND",
            "INSUFFICIENT_PERMISSION",
            "LIMIT_EXCEEDED",
            "OTHER_ERROR",
            "UNKNOWN_CODE",
        )
    },
}

OPERATIONS = (
    "connector Create",
    "connector Update",
    "connector Delete",
    "activation Create",
    "activation Update",
    "activation Delete",
)
KEY_CALL = {
    "connector Create": "create",
    "connector Update": "update",
    "connector Delete": "delete",
    "activation Create": "update",
    "activation Update": "update",
    "activation Delete": "update",
}


@dataclass
class Verdict:
    """What one cell showed."""

    status: str = ""
    problems: list[str] = field(default_factory=list)
    orphans: int = 0
    duplicates: int = 0
    leaks: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems


class _Stand:
    """The stand-ins shared by every cell: the simulator, Slack, moto's Secrets Manager."""

    def __init__(self, exit_stack: ExitStack) -> None:
        self.qualys = exit_stack.enter_context(
            QualysSimulator(users={USERNAME: PASSWORD}, sync_seconds=0.05)
        )
        self.slack = exit_stack.enter_context(SlackReceiver())
        self.collector = ResponseCollector()
        exit_stack.enter_context(self.collector.capture())
        self.logs = io.StringIO()
        self.log_handler = logging.StreamHandler(self.logs)
        self.log_handler.setLevel(logging.DEBUG)
        root = logging.getLogger()
        saved = root.handlers[:]
        exit_stack.callback(setattr, root, "handlers", saved)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        credentials = secrets.create_secret(
            Name="reliability/qualys",
            SecretString=json.dumps({"username": USERNAME, "password": PASSWORD}),
        )["ARN"]
        webhook = secrets.create_secret(
            Name="reliability/slack",
            SecretString=json.dumps({"webhook_url": self.slack.webhook_url}),
        )["ARN"]
        self.environ = {
            "QUALYS_API_URL": self.qualys.base_url,
            "QUALYS_CREDENTIALS_SECRET_ID": credentials,
            "SLACK_WEBHOOK_SECRET_ID": webhook,
            "LOG_LEVEL": "DEBUG",
        }

    def container(self) -> Container:
        """A fresh Lambda container, with waits short enough for a matrix."""
        # Every log record goes to the buffer the leak check reads, and nowhere else
        # (crhelper adds a console handler of its own when it starts).
        logging.getLogger().handlers = [self.log_handler]
        return Container(
            self.environ,
            retry=RetryPolicy(backoff_base=0.05, backoff_cap=0.2, throttle_base=0.1),
            activation=ActivationPolicy(max_wait=1.0, first_delay=0.1, sync_poll=0.05),
            safety_margin=2.0,
            sleep_on_delete=0,
        )

    def secrets(self) -> tuple[str, ...]:
        return (PASSWORD, self.slack.webhook_url, self.slack.path, "X-Amz-Signature")


class _Context:
    """Lambda's context object, as crhelper and the provider read it."""

    function_name = "qualys-connector-provider"
    memory_limit_in_mb = 256
    aws_request_id = "reliability"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:qualys-connector-provider"

    def __init__(self, milliseconds: int) -> None:
        self._ends = time.monotonic() + milliseconds / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


class _Stack:
    """One cell's stack: its events, sent the way CloudFormation sends them."""

    def __init__(self, stand: _Stand) -> None:
        self.stand = stand
        self.stack_id = (
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/reliability/{uuid.uuid4()}"
        )
        self.name = f"aws-{uuid.uuid4().hex[:12]}"
        self.foreign = stand.qualys.seed(name=self.name, description="Made by hand")
        self.answers: list[CfnResponse] = []
        self.connector_id: str | None = None

    def send(self, template: str, request_type: str, **changes: Any) -> CfnResponse:
        event: dict[str, Any] = json.loads((EVENTS / f"{template}.json").read_text())
        event.update(RequestType=request_type, StackId=self.stack_id, RequestId=str(uuid.uuid4()))
        event.update(changes)
        if template.startswith("connector"):
            event["ResourceProperties"]["ConnectorName"] = self.name
        before = len(self.stand.collector.responses)
        self.stand.container()(copy.deepcopy(event), _Context(BUDGET_MS))
        answers = self.stand.collector.responses[before:]
        if len(answers) != 1:
            raise AssertionError(f"{len(answers)} answers to one {request_type}")
        self.answers.append(answers[0])
        return answers[0]

    def connector(self, request_type: str) -> CfnResponse:
        changes: dict[str, Any] = {}
        if self.connector_id is not None:
            changes["PhysicalResourceId"] = self.connector_id
        answer = self.send(f"connector_{_template(request_type)}", request_type, **changes)
        if request_type == "Create":
            self.connector_id = answer.physical_resource_id
        return answer

    def activation(self, request_type: str) -> CfnResponse:
        connector_id = self.connector_id or "0"
        template = "activation_delete" if request_type == "Delete" else "activation_create"
        event: dict[str, Any] = json.loads((EVENTS / f"{template}.json").read_text())
        properties = {**event["ResourceProperties"], "ConnectorId": connector_id, "RoleArn": ROLE}
        return self.send(
            template,
            request_type,
            ResourceProperties=properties,
            PhysicalResourceId=f"{connector_id}/activation",
            OldResourceProperties=properties,
        )

    def own(self) -> list[SimConnector]:
        """The connectors of this stack's connector resource, in the simulator."""
        return [
            c
            for c in self.stand.qualys.connectors()
            if owned_by_resource(
                Connector(id=c.id, description=c.description), self.stack_id, "QualysConnector"
            )
        ]


def _template(request_type: str) -> str:
    return {"Create": "create", "Update": "update", "Delete": "delete"}[request_type]


def _prepare(stack: _Stack, operation: str) -> None:
    """Bring the stack to where the operation starts, with no fault."""
    if operation == "connector Create":
        return
    created = stack.connector("Create")
    if created.status != "SUCCESS":
        raise AssertionError(f"setting up: {created.reason}")
    if operation in {"activation Update", "activation Delete"}:
        activated = stack.activation("Create")
        if activated.status != "SUCCESS":
            raise AssertionError(f"setting up: {activated.reason}")


def _run(stack: _Stack, operation: str) -> CfnResponse:
    kind, request_type = operation.split()
    if kind == "connector":
        return stack.connector(request_type)
    return stack.activation(request_type)


def _follow_up(stack: _Stack, operation: str, answer: CfnResponse) -> None:
    """What CloudFormation does next, then the stack's deletion, with no fault."""
    kind, request_type = operation.split()
    if answer.status == "FAILED" and request_type == "Create":
        # The rollback: Delete with the id the failed Create answered.
        if kind == "connector":
            stack.connector_id = answer.physical_resource_id
            stack.connector("Delete")
            return
        stack.activation("Delete")
    if answer.status == "FAILED" and request_type == "Delete":
        # DELETE_FAILED: a person fixes the cause and deletes again.
        stack.send(
            f"{kind}_delete",
            "Delete",
            PhysicalResourceId=answer.physical_resource_id,
        )
    if kind == "activation" and request_type != "Delete":
        stack.activation("Delete")
    if not (kind == "connector" and request_type == "Delete"):
        stack.connector("Delete")


def judge(
    stand: _Stand,
    operation: str,
    fault: Fault | None,
    *,
    scenario: Callable[[_Stack], None] | None = None,
) -> Verdict:
    """Run one cell and check what it left."""
    stand.qualys.reset()
    stand.slack.reset()
    logs_before = len(stand.logs.getvalue())
    stack = _Stack(stand)
    foreign_before = stand.qualys.connector(stack.foreign.id)
    verdict = Verdict()
    try:
        if scenario is not None:
            scenario(stack)
            answer = stack.answers[-1]
        else:
            _prepare(stack, operation)
            assert fault is not None
            stand.qualys.inject(KEY_CALL[operation], fault)
            answer = _run(stack, operation)
            _check_answer(answer, verdict)
            verdict.status = answer.status
            if len(stack.own()) > 1:
                verdict.duplicates += 1
                verdict.problems.append("duplicate connector")
            _follow_up(stack, operation, answer)
        verdict.status = verdict.status or answer.status
    except AssertionError as error:
        verdict.problems.append(str(error))
    for later in stack.answers:
        _check_answer(later, verdict)
    if stack.own():
        verdict.orphans += len(stack.own())
        verdict.problems.append(f"{len(stack.own())} connector(s) left after the stack went")
    if stand.qualys.connector(stack.foreign.id) != foreign_before:
        verdict.problems.append("the hand-made connector was changed")
    seen = (
        stand.logs.getvalue()[logs_before:]
        + json.dumps(stand.slack.messages)
        + "".join(a.raw.decode() for a in stack.answers)
    )
    for secret in stand.secrets():
        if secret in seen:
            verdict.leaks += 1
            verdict.problems.append(f"a secret appeared ({secret[:6]}…)")
    return verdict


def _check_answer(answer: CfnResponse, verdict: Verdict) -> None:
    if answer.status not in {"SUCCESS", "FAILED"}:
        verdict.problems.append(f"status {answer.status!r}")
    if not answer.physical_resource_id:
        verdict.problems.append("empty PhysicalResourceId")
    if len(answer.reason) >= 200:
        verdict.problems.append("reason of 200 characters or more")
    if answer.reason == "Execution timed out":
        verdict.problems.append("crhelper's timer answered")
    if len(answer.raw) >= 4096:
        verdict.problems.append("answer of 4,096 bytes or more")


# --- scenarios beyond single faults ------------------------------------------------------


def _duplicate_delivery(stack: _Stack) -> None:
    event_name = "connector_create"
    stack.send(event_name, "Create")
    again = stack.send(event_name, "Create")
    if len(stack.own()) != 1:
        raise AssertionError(f"{len(stack.own())} connectors after a repeated Create")
    stack.connector_id = again.physical_resource_id
    stack.connector("Delete")


def _activate_waiting_for_the_first_sync(stack: _Stack) -> CfnResponse:
    event: dict[str, Any] = json.loads((EVENTS / "activation_create.json").read_text())
    properties = {
        **event["ResourceProperties"],
        "ConnectorId": stack.connector_id,
        "RoleArn": ROLE,
        "WaitForFirstSync": "true",
    }
    return stack.send("activation_create", "Create", ResourceProperties=properties)


def _rollback_after_failed_activation(stack: _Stack) -> None:
    stack.connector("Create")
    stack.stand.qualys.role_checker = lambda _c: "Unable to assume role: AccessDenied"
    try:
        failed = _activate_waiting_for_the_first_sync(stack)
    finally:
        stack.stand.qualys.role_checker = None
    if failed.status != "FAILED" or "AccessDenied" not in failed.reason:
        raise AssertionError(f"a broken trust answered {failed.status}: {failed.reason}")
    stack.activation("Delete")
    stack.connector("Delete")


def _iam_propagation(stack: _Stack) -> None:
    stack.connector("Create")
    stack.stand.qualys.script_sync(SyncOutcome.failed("Unable to assume role: not yet"), times=2)
    answer = _activate_waiting_for_the_first_sync(stack)
    if answer.status != "SUCCESS":
        raise AssertionError(f"IAM propagation not waited out: {answer.reason}")
    stack.activation("Delete")
    stack.connector("Delete")


SCENARIOS: dict[str, Callable[[_Stack], None]] = {
    "Create delivered twice": _duplicate_delivery,
    "failed activation, rolled back": _rollback_after_failed_activation,
    "IAM propagation (2 failed syncs)": _iam_propagation,
}


@contextmanager
def _stand() -> Iterator[_Stand]:
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="reliability",
        AWS_SECRET_ACCESS_KEY="reliability",  # noqa: S106 - moto's, not a credential
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    try:
        with ExitStack() as exit_stack, mock_aws():
            yield _Stand(exit_stack)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run(out: TextIO) -> int:
    """Run the matrix and the scenarios, print the table; 0 when every cell passed."""
    logging.getLogger("provider").setLevel(logging.DEBUG)
    started = time.monotonic()
    results: dict[tuple[str, str], Verdict] = {}
    with _stand() as stand:
        for fault_name, fault in FAULTS.items():
            for operation in OPERATIONS:
                results[(fault_name, operation)] = judge(stand, operation, fault)
        scenario_results = {
            name: judge(stand, name, None, scenario=scenario)
            for name, scenario in SCENARIOS.items()
        }
    width = 13
    out.write(
        f"{'fault on the key call':<26}" + "".join(f"{op:>{width + 6}}" for op in OPERATIONS) + "\n"
    )
    for fault_name in FAULTS:
        cells = []
        for operation in OPERATIONS:
            verdict = results[(fault_name, operation)]
            mark = "ok" if verdict.passed else "FAIL"
            cells.append(f"{mark + ' ' + verdict.status:>{width + 6}}")
        out.write(f"{fault_name:<26}" + "".join(cells) + "\n")
    out.write("\n")
    for name, verdict in scenario_results.items():
        out.write(f"{name:<40} {'ok' if verdict.passed else 'FAIL'}\n")
    everything = [*results.items(), *((("scenario", n), v) for n, v in scenario_results.items())]
    failures = [(key, v) for key, v in everything if not v.passed]
    for (fault_name, operation), verdict in failures:
        out.write(f"  {fault_name} / {operation}: {'; '.join(verdict.problems)}\n")
    verdicts = [v for _, v in everything]
    out.write(
        f"\nscenarios {len(verdicts)}, passed {sum(v.passed for v in verdicts)},"
        f" orphans {sum(v.orphans for v in verdicts)},"
        f" duplicates {sum(v.duplicates for v in verdicts)},"
        f" leaks {sum(v.leaks for v in verdicts)}"
        f"  ({time.monotonic() - started:.0f} s)\n"
    )
    return 0 if not failures else 1
