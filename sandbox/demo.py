"""``make demo``: deploy, update and delete the connector stack in the sandbox, and show it.

Everything runs on this machine: moto for AWS, the Qualys simulator, the Slack receiver.
Each step checks that what it shows really happened and the demo exits non-zero, naming
the step, when it did not. Nothing secret is printed (the sandbox's own generated Qualys
password and the webhook URL included).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final, TextIO

from sandbox.aws import Sandbox, StackView
from sandbox.qualys import SimConnector

STACK_NAME: Final = "qualys-connector"
UPDATED_MODULES: Final = "VM,PC"


class DemoStepError(Exception):
    """A demo step did not do what it shows."""

    def __init__(self, step: str, problem: str) -> None:
        super().__init__(f"step '{step}': {problem}")
        self.step = step


class _Report:
    """Writes the demo's output and keeps track of the step in progress."""

    def __init__(self, out: TextIO, secrets: Callable[[], tuple[str, ...]]) -> None:
        # ``secrets`` is asked on every line: the sandbox makes them when it starts.
        self._out = out
        self._secrets = secrets
        self.step = "start the sandbox"
        self._started = time.monotonic()

    def line(self, text: str = "") -> None:
        for secret in self._secrets():
            # Belt and braces: nothing printed here should ever hold one.
            text = text.replace(secret, "********")
        self._out.write(text + "\n")
        self._out.flush()

    def begin(self, number: int, step: str) -> None:
        self.step = step
        self.line()
        self.line(f"[{number}/4] {step}")

    def check(self, condition: bool, problem: str) -> None:  # noqa: FBT001 - reads as an assertion
        if not condition:
            raise DemoStepError(self.step, problem)

    def elapsed(self) -> float:
        return time.monotonic() - self._started


def _connector_lines(connector: SimConnector) -> list[str]:
    return [
        f"    id            {connector.id}",
        f"    name          {connector.name}",
        f"    state         {connector.connector_state}"
        + (f" ({connector.last_error})" if connector.last_error else ""),
        f"    external id   {connector.external_id}",
        f"    role arn      {connector.arn}",
        f"    disabled      {'yes' if connector.disabled else 'no'}",
        f"    modules       {','.join(connector.activation_modules)}",
    ]


def _slack_line(message: dict[str, Any]) -> str:
    attachments = message.get("attachments") or [{}]
    colour = attachments[0].get("color", "-")
    return f"    {colour:<8} {message.get('text', '')}"


def _show_connector(report: _Report, box: Sandbox, connector_id: str) -> SimConnector:
    connector = box.qualys.connector(int(connector_id))
    report.check(connector is not None, f"Qualys has no connector {connector_id}")
    assert connector is not None
    report.line("  The connector, as Qualys has it:")
    for line in _connector_lines(connector):
        report.line(line)
    return connector


def _show_slack(report: _Report, box: Sandbox, seen: int, expected: int) -> int:
    messages = box.slack.wait_for(seen + expected, timeout=5.0)
    report.line("  Slack:")
    for message in messages[seen:]:
        report.line(_slack_line(message))
    report.check(
        len(messages) >= seen + expected,
        f"expected {expected} new Slack message(s), got {len(messages) - seen}",
    )
    return len(messages)


def _deploy(report: _Report, box: Sandbox) -> tuple[StackView, SimConnector]:
    report.begin(2, f"deploy stack {STACK_NAME} (templates/qualys-connector.yaml)")
    view = box.deploy(STACK_NAME)
    report.line(f"  stack status: {view.status}")
    connector = _show_connector(report, box, view.outputs["ConnectorId"])
    report.check(not connector.disabled, "the connector is still disabled")
    report.check(
        connector.connector_state != "ERROR", f"connector in ERROR: {connector.last_error}"
    )
    report.check(connector.arn == view.outputs["RoleArn"], "the connector does not use the role")
    trust = box.role_trust_policy(view.outputs["RoleArn"])
    report.line(f"  Trust policy of {view.outputs['RoleArn']}:")
    for line in json.dumps(trust, indent=2).splitlines():
        report.line(f"    {line}")
    statement = trust["Statement"][0]
    report.check(
        statement["Principal"].get("AWS") == f"arn:aws:iam::{connector.qualys_aws_account_id}:root",
        "the role does not trust the connector's Qualys account",
    )
    report.check(
        statement["Condition"]["StringEquals"]["sts:ExternalId"] == connector.external_id,
        "the role's sts:ExternalId is not the connector's external ID",
    )
    return view, connector


def run(out: TextIO) -> int:
    """Run the demo, writing to ``out``; 0 when every step did what it shows."""
    box = Sandbox()
    report = _Report(out, lambda: box.secret_values)
    report.line("Qualys connector provider: local demo (moto, Qualys simulator, Slack receiver)")
    report.begin(1, "start the sandbox")
    try:
        with box:
            report.line(f"  Qualys simulator at {box.qualys.base_url}; AWS is moto, in-process")
            _, connector = _deploy(report, box)
            seen = _show_slack(report, box, 0, 2)

            report.begin(3, f"update stack: ActivationModules -> {UPDATED_MODULES}")
            updated = box.update(STACK_NAME, {"ActivationModules": UPDATED_MODULES})
            report.line(f"  stack status: {updated.status}")
            after = _show_connector(report, box, updated.outputs["ConnectorId"])
            report.check(after.id == connector.id, "the update replaced the connector")
            report.check(
                ",".join(after.activation_modules) == UPDATED_MODULES,
                f"activation modules are {after.activation_modules}",
            )
            seen = _show_slack(report, box, seen, 1)

            report.begin(4, f"delete stack {STACK_NAME}")
            box.delete(STACK_NAME)
            left = box.qualys.connectors()
            report.line(f"  Connectors left in Qualys: {len(left)}")
            report.check(not left, f"connectors left behind: {[c.id for c in left]}")
            _show_slack(report, box, seen, 2)
            if box.skipped_resources:
                report.line()
                report.line(
                    "Note: moto does not support "
                    + ", ".join(box.skipped_resources)
                    + " (created nothing for it)."
                )
    except Exception as error:  # noqa: BLE001 - the demo reports any failure by its step
        report.line()
        report.line(f"DEMO FAILED at step '{report.step}': {error}")
        return 1
    report.line()
    report.line(f"Demo complete in {report.elapsed():.1f} s: deployed, updated, deleted.")
    return 0


def quiet_logging() -> None:
    """Keep library chatter (moto's unsupported-resource warnings) off the demo's output."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("moto").setLevel(logging.CRITICAL)
