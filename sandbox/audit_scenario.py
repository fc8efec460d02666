"""``python -m sandbox audit``: the fleet audit's six classes in the sandbox, then the clean-up.

An organisation in moto's Organizations and connectors in the Qualys simulator, made to
hold one of each finding: a closed account's connector (orphaned), a second connector for
one account (duplicate), a connector made by hand (foreign), one in ERROR (unhealthy) and
an ACTIVE account without any (missing). ``python -m provider.audit`` runs on them as a
person would run it; then ``--delete-orphans`` (a dry run) and ``--delete-orphans --yes``,
which must remove the orphan and nothing else. Each step checks what it shows.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TextIO
from unittest import mock

import boto3
import requests
from moto import mock_aws

from provider.audit import cli
from provider.credentials import SecretStore
from provider.markers import marker
from sandbox.qualys import QualysSimulator, SimConnector
from sandbox.steps import StepReport

REGION: Final = "us-east-1"
STEPS: Final = 5
WIDTH: Final = 118
"""The table's width (indented by two): every line of the output within 120 characters."""
USERNAME: Final = "qualys-audit-user"
QUALYS_ACCOUNT: Final = "805950163170"
MOTO_SEED: Final = 20261127
"""Seeds moto's ids (accounts, OUs), so that the scenario prints the same table each run."""
EXPECTED: Final = {
    "ok": 3,
    "missing": 1,
    "orphaned": 1,
    "duplicate": 1,
    "unhealthy": 1,
    "foreign": 1,
}
ROLE_ERROR: Final = (
    "Unable to assume role arn:aws:iam::{account}:role/qualys-connector-us-east-1:"
    " the trust policy does not allow this external ID"
)


@dataclass(frozen=True)
class AuditRun:
    """One run of ``python -m provider.audit``: exit status, stdout, stderr."""

    status: int
    stdout: str
    stderr: str


@dataclass
class Fleet:
    """The organisation and the connectors the scenario made, by role in the story."""

    accounts: dict[str, str] = field(default_factory=dict)
    """Account id by name (moto's management account is ``master``)."""
    connectors: dict[str, int] = field(default_factory=dict)
    """Connector id by what it stands for (``orphan``, ``duplicate`` ...)."""


@contextmanager
def _moto() -> Iterator[None]:
    fake = {
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_SESSION_TOKEN": "sandbox",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    with mock.patch.dict(os.environ, fake), mock_aws():
        # moto's documented seed: its random ids (accounts, OUs) are then the same each run.
        requests.post(f"http://motoapi.amazonaws.com/moto-api/seed?a={MOTO_SEED}", timeout=5)
        yield


def _ours(qualys: QualysSimulator, account_id: str, *, stack: str, **fields: Any) -> SimConnector:
    """A connector as the provider makes it: marked by its stack, named aws-<account>."""
    stack_id = f"arn:aws:cloudformation:{REGION}:{account_id}:stack/{stack}/{secrets.token_hex(8)}"
    values: dict[str, Any] = {
        "name": f"aws-{account_id}",
        "description": marker(stack_id, "QualysConnector"),
        "arn": f"arn:aws:iam::{account_id}:role/qualys-connector-{REGION}",
        "last_sync": "2026-11-27T06:00:00Z",
        **fields,
    }
    return qualys.seed(**values)


def build(qualys: QualysSimulator, organizations: Any) -> Fleet:
    """The organisation (moto) and its connectors (simulator), one finding of each class."""
    fleet = Fleet()
    organizations.create_organization(FeatureSet="ALL")
    (management,) = organizations.list_accounts()["Accounts"]
    fleet.accounts[management["Name"]] = management["Id"]
    for name in ("prod-web", "prod-api", "dev-sandbox", "retired-app", "new-team"):
        created = organizations.create_account(AccountName=name, Email=f"{name}@example.com")
        fleet.accounts[name] = created["CreateAccountStatus"]["AccountId"]
    organizations.close_account(AccountId=fleet.accounts["retired-app"])

    ids = fleet.accounts
    made = fleet.connectors
    made["management"] = _ours(qualys, ids["master"], stack="qualys-connector").id
    made["prod-web"] = _ours(qualys, ids["prod-web"], stack="qualys-connector").id
    made["prod-api"] = _ours(qualys, ids["prod-api"], stack="qualys-connector").id
    made["unhealthy"] = _ours(
        qualys,
        ids["dev-sandbox"],
        stack="qualys-connector",
        connector_state="ERROR",
        last_error=ROLE_ERROR.format(account=ids["dev-sandbox"]),
    ).id
    made["orphan"] = _ours(qualys, ids["retired-app"], stack="qualys-connector").id
    # A second stack in the same account (the StackSet also targeting eu-west-1, say).
    made["duplicate"] = _ours(qualys, ids["prod-api"], stack="qualys-connector-eu").id
    made["foreign"] = qualys.seed(
        name="prod-web (made in the Qualys UI)",
        description="made by hand by the security team",
        arn=f"arn:aws:iam::{ids['prod-web']}:role/QualysManual",
        last_sync="2026-11-27T05:00:00Z",
    ).id
    return fleet


def audit(
    argv: Sequence[str], *, environ: dict[str, str], store: SecretStore, organizations: Any
) -> AuditRun:
    """``python -m provider.audit ARGV``, in this process (moto lives here)."""
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(
        argv,
        environ=environ,
        stdout=out,
        stderr=err,
        secrets=store,
        organizations=organizations,
    )
    return AuditRun(status, out.getvalue(), err.getvalue())


def _show(report: StepReport, argv: Sequence[str], run: AuditRun) -> None:
    report.line(f"  $ python -m provider.audit {' '.join(argv)}".rstrip())
    report.lines(run.stdout, "  ")
    for line in run.stderr.splitlines():
        if not line.startswith("Reading "):  # progress, not news
            report.line(f"  (stderr) {line}")
    report.line(f"  exit status {run.status}")


def run(out: TextIO) -> int:
    """Build the scenario, audit it, clean it up; 0 when every step did what it shows."""
    password = secrets.token_urlsafe(24)
    report = StepReport(out, lambda: (password,), steps=STEPS)
    report.line("Fleet audit scenario: moto Organizations and the Qualys simulator, on loopback")
    report.begin(1, "build the organisation and its connectors")

    def scenario() -> None:
        with (
            _moto(),
            QualysSimulator(users={USERNAME: password}, qualys_account_id=QUALYS_ACCOUNT) as qualys,
        ):
            organizations = boto3.client("organizations", region_name=REGION)
            manager = boto3.client("secretsmanager", region_name=REGION)
            secret = manager.create_secret(
                Name="qualys-connector/qualys-credentials",
                SecretString=json.dumps({"username": USERNAME, "password": password}),
            )["ARN"]
            environ = {
                "QUALYS_API_URL": qualys.base_url,
                "QUALYS_CREDENTIALS_SECRET_ID": secret,
                "COLUMNS": str(WIDTH),
            }
            store = SecretStore()

            def audit_with(argv: Sequence[str]) -> AuditRun:
                return audit(argv, environ=environ, store=store, organizations=organizations)

            fleet = build(qualys, organizations)
            _show_fleet(report, fleet, qualys)
            _steps(report, fleet, qualys, audit_with)

    return report.run(
        scenario, name="Scenario", summary="every class shown, exactly the orphan deleted."
    )


def _show_fleet(report: StepReport, fleet: Fleet, qualys: QualysSimulator) -> None:
    statuses = {
        a["Id"]: a["Status"]
        for a in boto3.client("organizations", region_name=REGION).list_accounts()["Accounts"]
    }
    for name, account_id in fleet.accounts.items():
        report.line(f"  account {account_id} {name:<12} {statuses[account_id]}")
    for role, connector_id in fleet.connectors.items():
        connector = qualys.connector(connector_id)
        assert connector is not None
        report.line(
            f"  connector {connector_id} {connector.name:<34} {connector.connector_state:<17}"
            f" ({role})"
        )
    report.check(
        statuses[fleet.accounts["retired-app"]] != "ACTIVE", "the closed account is still ACTIVE"
    )


def _steps(
    report: StepReport,
    fleet: Fleet,
    qualys: QualysSimulator,
    audit_with: Callable[[Sequence[str]], AuditRun],
) -> None:
    report.begin(2, "audit: every class, in a table")
    shown = audit_with([])
    _show(report, [], shown)
    document = json.loads(audit_with(["--json"]).stdout)
    report.check(shown.status == 1, f"exit status {shown.status}, not 1 (not everything is ok)")
    report.check(document["summary"] == EXPECTED, f"summary {document['summary']}")
    by_id = {c["id"]: c["status"] for c in document["connectors"]}
    for role, status in (
        ("orphan", "orphaned"),
        ("duplicate", "duplicate"),
        ("unhealthy", "unhealthy"),
        ("foreign", "foreign"),
        ("prod-api", "ok"),
    ):
        found = by_id.get(fleet.connectors[role])
        report.check(found == status, f"the {role} connector is {found}, not {status}")
    missing = [m["account"] for m in document["missing"]]
    report.check(missing == [fleet.accounts["new-team"]], f"missing accounts {missing}")

    report.begin(3, "dry run: --delete-orphans lists what it would delete")
    before = qualys.connectors()
    argv = ["--delete-orphans"]
    dry = audit_with(argv)
    _show(report, argv, dry)
    report.check(qualys.connectors() == before, "the dry run changed Qualys")
    report.check("Dry run: would delete 1 orphaned connector" in dry.stdout, "no dry-run list")

    report.begin(4, "clean-up: --delete-orphans --yes deletes exactly the orphan")
    argv = ["--delete-orphans", "--yes"]
    done = audit_with(argv)
    _show(report, argv, done)
    after = qualys.connectors()
    gone = sorted({c.id for c in before} - {c.id for c in after})
    report.line(f"  removed from Qualys: {gone}; {len(after)} connectors left, unchanged")
    report.check(gone == [fleet.connectors["orphan"]], f"removed {gone}, not the orphan")
    report.check(
        after == [c for c in before if c.id != fleet.connectors["orphan"]],
        "a connector other than the orphan changed",
    )
    report.check("Deleted 1 of 1 orphaned connector(s)." in done.stdout, "no deletion report")

    report.begin(5, "audit again: no orphan left; the rest is for people to fix")
    again = audit_with([])
    _show(report, [], again)
    summary = json.loads(audit_with(["--json"]).stdout)["summary"]
    report.check(summary == {**EXPECTED, "orphaned": 0}, f"summary {summary}")
