"""``make demo``: the connector stacks' whole life in the sandbox, each step checked."""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import boto3

from provider.audit import cli as audit_cli
from provider.credentials import SecretStore
from provider.lifecycle import ActivationPolicy
from provider.lifecycle.activation import SYNCING
from sandbox.aws import QUALYS_ACCOUNT_ID, Sandbox, StackView
from sandbox.cloudformation.engine import StackOperationError
from sandbox.iam_check import MotoRoleChecker
from sandbox.qualys import SimConnector
from sandbox.steps import WIDTH, StepReport

STACK_NAME: Final = "qualys-connector"
UPDATED_MODULES: Final = "VM,PC"
STEPS: Final = 6

CSPM_ACCOUNT: Final = "111111111111"
INVENTORY_ACCOUNT: Final = "222222222222"
BROKEN_ACCOUNT: Final = "333333333333"
#: Where Qualys assumes roles from in the broken-trust step (as a subscription's custom base
#: account would be): not the account its API reports, so not the one the role trusts.
OTHER_QUALYS_ACCOUNT: Final = "444455556666"

SECURITY_AUDIT: Final = "iam::aws:policy/SecurityAudit"
#: Seconds a sync of the simulator shows QUEUED, then PROCESSING, before its result.
SYNC_QUEUE_SECONDS: Final = 0.2
SYNC_RUN_SECONDS: Final = 0.2
SYNC_TIMEOUT: Final = 5.0
#: The activation's waits in the demo, instead of the production ones (5 s between reads
#: of a sync, 120 s of retries): the failing stack then takes a second, not two minutes.
DEMO_ACTIVATION: Final = {
    "max_wait": 1.0,
    "first_delay": 0.25,
    "max_delay": 0.5,
    "sync_poll": 0.1,
}


@dataclass(frozen=True)
class _Connector:
    """One connector stack of the demo: where it is deployed and what it is for."""

    account_id: str
    permission_set: str
    apps: tuple[str, ...]


CSPM: Final = _Connector(CSPM_ACCOUNT, "CSPM", ("AI", "CI", "CSA"))
INVENTORY: Final = _Connector(INVENTORY_ACCOUNT, "AssetInventory", ("AI",))


@dataclass
class _Demo:
    """The sandbox, the report, and what the steps have seen so far."""

    box: Sandbox
    report: StepReport
    slack_seen: int = 0
    views: dict[str, StackView] = field(default_factory=dict)
    """The deployed stacks by account."""


class _ShortWaits:
    """The provider's Lambda entry point, with the activation's waits of the demo.

    Each function keeps one ``provider.handler.Container`` (the object ``lambda_handler``
    runs), built with ``DEMO_ACTIVATION`` instead of the production policy; everything
    else is the provider as deployed.
    """

    def __init__(self) -> None:
        self._containers: dict[str, Any] = {}

    def __call__(self, event: Any, context: Any) -> None:
        # Imported during the invocation: the sandbox gives each function its own copy of
        # the provider's modules (one warm container each), and this must use that copy.
        handler = importlib.import_module("provider.handler")
        lifecycle = importlib.import_module("provider.lifecycle")
        arn = context.invoked_function_arn
        if arn not in self._containers:
            policy = lifecycle.ActivationPolicy(**DEMO_ACTIVATION)
            self._containers[arn] = handler.Container(os.environ, activation=policy)
        self._containers[arn](event, context)


# --- what is shown ----------------------------------------------------------------------


def _connector(demo: _Demo, connector_id: str) -> SimConnector:
    connector = demo.box.qualys.connector(int(connector_id))
    demo.report.check(connector is not None, f"Qualys has no connector {connector_id}")
    assert connector is not None
    return connector


def _show_connector(demo: _Demo, connector: SimConnector) -> None:
    line = demo.report.wrapped
    state = connector.connector_state
    line(
        "connector",
        f"{connector.id} {connector.name}, {'disabled' if connector.disabled else 'enabled'}",
    )
    line("state", state + (f" ({connector.last_error})" if connector.last_error else ""))
    line("modules", ",".join(connector.activation_modules))
    for name, identifier in connector.applications:
        line(f"app {name}", identifier or f"{connector.arn} (the connector's)")


def _show_role(demo: _Demo, view: StackView, connector: SimConnector, expected: _Connector) -> None:
    report, box = demo.report, demo.box
    role_arn = view.outputs["RoleArn"]
    statement = box.role_trust_policy(role_arn)["Statement"][0]
    principal = statement["Principal"].get("AWS")
    external_id = statement["Condition"]["StringEquals"]["sts:ExternalId"]
    report.wrapped("role", role_arn)
    report.wrapped("trusts", f"{principal} to {statement['Action']}")
    report.wrapped("  if", f"sts:ExternalId = {external_id}")
    report.check(
        principal == f"arn:aws:iam::{connector.qualys_aws_account_id}:root",
        "the role does not trust the connector's Qualys account",
    )
    report.check(
        external_id == connector.external_id,
        "the role's sts:ExternalId is not the connector's external ID",
    )
    permissions = box.role_permissions(view)
    for arn in permissions.managed_policy_arns:
        report.wrapped("managed", arn)
    for name, document in permissions.inline_policies.items():
        statements = document["Statement"]
        actions = sum(len(_as_list(s.get("Action"))) for s in statements)
        sids = ", ".join(str(s.get("Sid", "-")) for s in statements)
        report.wrapped("inline", f"{name}: {actions} actions ({sids})")
    cspm = any(arn.endswith(SECURITY_AUDIT) for arn in permissions.managed_policy_arns)
    report.check(
        cspm == (expected.permission_set == "CSPM"),
        f"SecurityAudit {'missing from' if not cspm else 'on'} a {expected.permission_set} role",
    )


def _show_slack(demo: _Demo, expected: int) -> list[dict[str, Any]]:
    seen = demo.slack_seen
    messages = demo.box.slack.wait_for(seen + expected, timeout=5.0)[seen:]
    demo.report.line("  Slack:")
    for message in messages:
        attachments = message.get("attachments") or [{}]
        demo.report.wrapped(attachments[0].get("color", "-"), str(message.get("text", "")))
    demo.report.check(
        len(messages) == expected, f"expected {expected} new Slack message(s), got {len(messages)}"
    )
    demo.slack_seen = seen + len(messages)
    return messages


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _account_connectors(demo: _Demo, account_id: str) -> list[SimConnector]:
    return [c for c in demo.box.qualys.connectors() if c.name.endswith(account_id)]


def _created_connector(demo: _Demo, account_id: str) -> int | None:
    """The id of the connector the account's stack created last (gone or not)."""
    created = [
        event.outcome.physical_id
        for event in demo.box.engine.events
        if f":{account_id}:stack/" in event.stack_id
        and event.request_type == "Create"
        and event.logical_id == "QualysConnector"
    ]
    return int(created[-1]) if created and created[-1].isdigit() else None


def _runs(demo: _Demo, connector_id: int | None) -> int:
    """How many times Qualys was asked to sync the connector now."""
    return sum(
        1
        for request in demo.box.qualys.requests
        if request.operation == "run" and request.connector_id == connector_id
    )


def _calls(runs: int) -> str:
    return f"{runs} run call{'' if runs == 1 else 's'}"


# --- the steps --------------------------------------------------------------------------


def _deploy(demo: _Demo) -> None:
    demo.report.begin(2, f"deploy stack {STACK_NAME} in two member accounts: CSPM, asset inventory")
    for expected in (CSPM, INVENTORY):
        report = demo.report
        report.line()
        report.line(f"  account {expected.account_id}, PermissionSet={expected.permission_set}")
        view = demo.box.deploy(
            STACK_NAME, {"PermissionSet": expected.permission_set}, account_id=expected.account_id
        )
        demo.views[expected.account_id] = view
        state = view.outputs["ConnectorState"]
        report.wrapped("stack", view.status)
        report.wrapped(
            "ConnectorState",
            state + (" (queued for first sync)" if state in ("QUEUED", "PENDING") else ""),
        )
        report.check(state in SYNCING, f"ConnectorState {state}: no first sync under way")
        connector = _connector(demo, view.outputs["ConnectorId"])
        _show_connector(demo, connector)
        report.check(not connector.disabled, "the connector is still disabled")
        report.check(
            connector.arn == view.outputs["RoleArn"], "the connector does not use the role"
        )
        report.check(
            connector.application_names == expected.apps,
            f"apps are {connector.application_names}, not {expected.apps}",
        )
        report.check(
            all(identifier == connector.arn for _, identifier in connector.applications),
            "an app does not name the stack's role",
        )
        _show_role(demo, view, connector, expected)
        _show_slack(demo, 2)


def _first_sync(demo: _Demo) -> None:
    demo.report.begin(3, "the first sync, started by the activation's run call")
    for expected in (CSPM, INVENTORY):
        view = demo.views[expected.account_id]
        runs = _runs(demo, int(view.outputs["ConnectorId"]))
        connector = _wait_for_sync(demo, view.outputs["ConnectorId"])
        demo.report.wrapped(
            f"{expected.account_id}",
            f"{_calls(runs)}, then {view.outputs['ConnectorState']} -> "
            f"{connector.connector_state}, lastSync {connector.last_sync}",
        )
        demo.report.check(runs > 0, "the activation did not ask Qualys to run a sync")
        demo.report.check(
            connector.connector_state == "FINISHED_SUCCESS",
            f"the sync ended {connector.connector_state}: {connector.last_error}",
        )
        demo.report.check(connector.last_sync is not None, "Qualys shows no lastSync")


def _wait_for_sync(demo: _Demo, connector_id: str) -> SimConnector:
    ends = time.monotonic() + SYNC_TIMEOUT
    connector = _connector(demo, connector_id)
    while connector.connector_state in SYNCING and time.monotonic() < ends:
        time.sleep(0.05)
        connector = _connector(demo, connector_id)
    return connector


@contextmanager
def _qualys_assumes_from(demo: _Demo, account_id: str) -> Iterator[None]:
    """Qualys's sync assumes roles from ``account_id`` while its API still reports its own."""
    qualys = demo.box.qualys
    previous = qualys.role_checker
    qualys.role_checker = MotoRoleChecker(account_id)
    try:
        yield
    finally:
        qualys.role_checker = previous


def _broken_trust(demo: _Demo) -> None:
    report = demo.report
    report.begin(
        4, f"deploy in account {BROKEN_ACCOUNT} with WaitForFirstSync=true: a broken trust"
    )
    report.wrapped(
        "Qualys",
        f"reports {QUALYS_ACCOUNT_ID} (which the role will trust) but assumes roles from "
        f"{OTHER_QUALYS_ACCOUNT}, as with a custom base account",
    )
    failure: StackOperationError | None = None
    with _qualys_assumes_from(demo, OTHER_QUALYS_ACCOUNT):
        try:
            demo.box.deploy(STACK_NAME, {"WaitForFirstSync": "true"}, account_id=BROKEN_ACCOUNT)
        except StackOperationError as error:
            failure = error
    report.check(failure is not None, "the stack was created although Qualys cannot use its role")
    assert failure is not None
    report.wrapped("failed", f"{failure.logical_id} FAILED")
    report.wrapped("reason", failure.reason)
    report.wrapped("stack", failure.status)
    runs = _runs(demo, _created_connector(demo, BROKEN_ACCOUNT))
    report.wrapped(
        "syncs",
        f"{_calls(runs)} (while Qualys says ERROR the activation is applied again, for"
        f" {DEMO_ACTIVATION['max_wait']} s here)",
    )
    report.check(runs > 0, "the activation did not ask Qualys to run a sync")
    left = _account_connectors(demo, BROKEN_ACCOUNT)
    report.wrapped("connectors", f"{len(left)} left in Qualys for account {BROKEN_ACCOUNT}")
    report.check(failure.logical_id == "QualysConnectorActivation", "another resource failed")
    report.check("Unable to assume role" in failure.reason, "the reason is not Qualys's lastError")
    report.check(failure.status == "ROLLBACK_COMPLETE", f"the stack is {failure.status}")
    report.check(not left, f"the rollback left connectors {[c.id for c in left]}")
    messages = _show_slack(demo, 4)
    report.check(
        any("failed" in str(m.get("text", "")) for m in messages), "Slack heard of no failure"
    )
    # As its owner would: a stack in ROLLBACK_COMPLETE can only be deleted.
    demo.box.delete(STACK_NAME, account_id=BROKEN_ACCOUNT)


def _update(demo: _Demo) -> None:
    report = demo.report
    report.begin(
        5, f"update stack {STACK_NAME} in {CSPM_ACCOUNT}: ActivationModules -> {UPDATED_MODULES}"
    )
    before = demo.views[CSPM_ACCOUNT]
    updated = demo.box.update(
        STACK_NAME, {"ActivationModules": UPDATED_MODULES}, account_id=CSPM_ACCOUNT
    )
    report.wrapped("stack", updated.status)
    after = _connector(demo, updated.outputs["ConnectorId"])
    _show_connector(demo, after)
    report.check(
        updated.outputs["ConnectorId"] == before.outputs["ConnectorId"],
        "the update replaced the connector",
    )
    report.check(
        ",".join(after.activation_modules) == UPDATED_MODULES,
        f"activation modules are {after.activation_modules}",
    )
    _show_slack(demo, 1)


def _delete(demo: _Demo) -> None:
    report = demo.report
    report.begin(6, f"delete stack {STACK_NAME} in both accounts")
    for expected in (CSPM, INVENTORY):
        demo.box.delete(STACK_NAME, account_id=expected.account_id)
    left = demo.box.qualys.connectors()
    report.line(f"  Connectors left in Qualys: {len(left)}")
    report.check(not left, f"connectors left behind: {[c.id for c in left]}")
    _show_slack(demo, 4)


#: The demo's member accounts, as the audit's --accounts file lists them.
DEMO_ACCOUNTS: Final = (
    (CSPM_ACCOUNT, "cspm"),
    (INVENTORY_ACCOUNT, "asset-inventory"),
    (BROKEN_ACCOUNT, "broken-trust"),
)


def _audit(demo: _Demo) -> None:
    """The fleet audit of what the demo built: python -m provider.audit on its accounts."""
    report, box = demo.report, demo.box
    report.step = "audit what the demo built"
    report.line()
    report.line("[audit] python -m provider.audit --accounts demo-accounts.json, on the sandbox")
    accounts = [{"Id": i, "Name": name, "Status": "ACTIVE"} for i, name in DEMO_ACCOUNTS]
    environ = {
        "QUALYS_API_URL": box.qualys.base_url,
        "QUALYS_CREDENTIALS_SECRET_ID": box.credentials_secret_arn,
        "COLUMNS": str(WIDTH),
    }

    def client(config: Any) -> Any:
        return boto3.client("secretsmanager", region_name=box.region, config=config)

    with tempfile.TemporaryDirectory(prefix="qualys-demo-audit-") as folder:
        path = Path(folder) / "demo-accounts.json"
        path.write_text(json.dumps(accounts), encoding="utf-8")
        runs = []
        for extra in ([], ["--json"]):
            out, err = io.StringIO(), io.StringIO()
            status = audit_cli.main(
                ["--accounts", str(path), *extra],
                environ=environ,
                stdout=out,
                stderr=err,
                secrets=SecretStore(client),
            )
            runs.append((status, out.getvalue(), err.getvalue()))
    (status, table, errors), (_, document, _) = runs
    for line in table.splitlines():
        report.line(f"  {line}".rstrip())
    report.line(f"  exit status {status}")
    report.check(status == 1, f"exit status {status} ({errors.strip()})")
    summary = json.loads(document)["summary"]
    left = {name: n for name, n in summary.items() if name not in ("ok", "missing") and n}
    report.check(not left, f"the demo left connectors behind: {left}")
    report.check(summary["missing"] == len(DEMO_ACCOUNTS), f"{summary['missing']} missing")
    report.wrapped(
        "audit",
        "nothing left behind (no orphaned, duplicate, unhealthy or foreign connector); the"
        " accounts, their stacks deleted, have no connector: missing, as the audit says",
        indent=2,
    )


def run(out: TextIO) -> int:
    """Run the demo, writing to ``out``; 0 when every step did what it shows.

    Everything runs on this machine: moto for AWS, the Qualys simulator, the Slack
    receiver. Two member accounts get a connector each, CSPM and asset inventory, whose
    first sync is watched to its end; a third account's stack waits for its first sync,
    which fails because Qualys assumes the role from an account the trust does not name,
    and is rolled back; then one stack is updated and both are deleted. Each step checks
    what it shows and the demo answers 1, naming the step, when one did not happen.
    Nothing secret is printed (the sandbox's generated Qualys password and the webhook URL
    included).
    """
    box = Sandbox(
        handler_overrides={"provider.handler.lambda_handler": _ShortWaits()},
        simulator_options={
            "sync_queue_seconds": SYNC_QUEUE_SECONDS,
            "sync_seconds": SYNC_RUN_SECONDS,
        },
    )
    report = StepReport(out, lambda: box.secret_values, steps=STEPS)
    demo = _Demo(box, report)
    production = ActivationPolicy()
    report.line("Qualys connector provider: local demo (moto, Qualys simulator, Slack receiver)")
    report.begin(1, "start the sandbox")

    def scenario() -> None:
        with box:
            report.line(f"  Qualys simulator at {box.qualys.base_url}; AWS is moto, in-process")
            poll, retries = DEMO_ACTIVATION["sync_poll"], DEMO_ACTIVATION["max_wait"]
            report.line(
                "  The provider's waits, shortened for the demo: reads of a sync every"
                f" {poll} s (Lambda: {production.sync_poll:.0f} s),"
            )
            report.line(f"  retries for {retries} s (Lambda: {production.max_wait:.0f} s)")
            _deploy(demo)
            _first_sync(demo)
            _broken_trust(demo)
            _update(demo)
            _delete(demo)
            _audit(demo)
            _notes(demo)

    return report.run(
        scenario,
        name="Demo",
        summary="deployed, synced, rolled back a broken trust, updated, deleted, audited.",
    )


def _notes(demo: _Demo) -> None:
    demo.report.line()
    if demo.box.skipped_resources:
        note = f"Note: moto does not support {', '.join(demo.box.skipped_resources)}"
        for line in textwrap.wrap(f"{note} (created nothing for it).", width=92):
            demo.report.line(line)
    demo.report.line(
        "Note: moto attaches no managed policy to a stack's role; the ones shown are the"
    )
    demo.report.line("stack's ManagedPolicyArns.")


def quiet_logging() -> None:
    """Keep library chatter (moto's unsupported-resource warnings) off the demo's output."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("moto").setLevel(logging.CRITICAL)
