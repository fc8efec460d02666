"""``python -m provider.audit`` against the Qualys simulator and moto's Organizations: the
classes, the exit statuses, the output, ``--ou``, paging, and deleting safely."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from conftest import PASSWORD, REGION, USERNAME
from provider.audit import cli
from provider.audit.accounts import Organizations
from provider.audit.fleet import delete_orphans, qualys_client, run_audit
from provider.config import Settings
from provider.credentials import SecretStore
from provider.deadline import Deadline
from provider.markers import marker
from sandbox.qualys import Fault, QualysSimulator, SimConnector

ROOT = Path(__file__).resolve().parents[2]
ABSENT = "999999999999"
ROLE_ERROR = "Unable to assume role arn:aws:iam::{account}:role/qualys: AccessDenied"


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    def statuses(self) -> dict[int, str]:
        return {c["id"]: c["status"] for c in self.json()["connectors"]}


@dataclass
class Org:
    """moto's organisation: the management account, named accounts and nested OUs."""

    client: Any
    management: str
    ids: dict[str, str] = field(default_factory=dict)
    ous: dict[str, str] = field(default_factory=dict)
    """OU id by the path CfCT writes (``Workloads:Prod``)."""


@pytest.fixture
def org(aws: None) -> Org:
    """Root ─ Workloads ─ Prod ─ Web, and Root ─ Sandbox; one account closed."""
    client = boto3.client("organizations", region_name=REGION)
    client.create_organization(FeatureSet="ALL")
    (management,) = client.list_accounts()["Accounts"]
    made = Org(client, management["Id"])
    root = client.list_roots()["Roots"][0]["Id"]
    for path in ("Workloads", "Workloads:Prod", "Workloads:Prod:Web", "Sandbox"):
        parent = made.ous[path.rsplit(":", 1)[0]] if ":" in path else root
        unit = client.create_organizational_unit(ParentId=parent, Name=path.split(":")[-1])
        made.ous[path] = unit["OrganizationalUnit"]["Id"]
    for name, ou in (
        ("web", "Workloads:Prod:Web"),
        ("api", "Workloads:Prod"),
        ("dev", "Workloads"),
        ("play", "Sandbox"),
        ("closed", "Workloads:Prod"),
    ):
        created = client.create_account(AccountName=name, Email=f"{name}@example.com")
        account_id = created["CreateAccountStatus"]["AccountId"]
        made.ids[name] = account_id
        client.move_account(
            AccountId=account_id, SourceParentId=root, DestinationParentId=made.ous[ou]
        )
    client.close_account(AccountId=made.ids["closed"])
    return made


@pytest.fixture
def environ(qualys: QualysSimulator, secrets: dict[str, str]) -> dict[str, str]:
    return {
        "QUALYS_API_URL": qualys.base_url,
        "QUALYS_CREDENTIALS_SECRET_ID": secrets["credentials"],
    }


def ours(qualys: QualysSimulator, account_id: str, **fields: Any) -> SimConnector:
    stack = f"arn:aws:cloudformation:{REGION}:{account_id}:stack/qualys-connector/{len(fields)}"
    values: dict[str, Any] = {
        "name": f"aws-{account_id}",
        "description": f"{marker(stack, 'QualysConnector')} made by the stack",
        "arn": f"arn:aws:iam::{account_id}:role/qualys-connector",
        **fields,
    }
    return qualys.seed(**values)


def audit(environ: dict[str, str], *argv: str, organizations: Any = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(
        list(argv),
        environ=environ,
        stdout=out,
        stderr=err,
        secrets=SecretStore(),
        organizations=organizations,
    )
    run = Run(status, out.getvalue(), err.getvalue())
    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, token):
        assert secret not in run.out + run.err, "the command printed a secret"
    return run


def operations(qualys: QualysSimulator) -> list[str | None]:
    return [r.operation for r in qualys.requests]


def everyone_covered(qualys: QualysSimulator, org: Org) -> dict[str, int]:
    """One healthy connector of ours for every ACTIVE account."""
    active = [org.management, *(org.ids[n] for n in ("web", "api", "dev", "play"))]
    return {account: ours(qualys, account).id for account in active}


def one_of_each(qualys: QualysSimulator, org: Org) -> dict[str, int]:
    """Every class: ok, orphaned (closed and absent accounts), duplicate, unhealthy,
    foreign; ``play`` is left missing."""
    ids = org.ids
    return {
        "ok": ours(qualys, ids["web"]).id,
        "management": ours(qualys, org.management).id,
        "closed": ours(qualys, ids["closed"]).id,
        "absent": ours(qualys, ABSENT).id,
        "api": ours(qualys, ids["api"]).id,
        "duplicate": ours(qualys, ids["api"], external_id="second").id,
        "unhealthy": ours(
            qualys,
            ids["dev"],
            connector_state="ERROR",
            last_error=ROLE_ERROR.format(account=ids["dev"]),
        ).id,
        "foreign": qualys.seed(
            name="made by hand", description="the security team's", aws_account_id=ids["closed"]
        ).id,
    }


# --- classes and exit statuses ----------------------------------------------------------


def test_everything_ok_exits_0_with_a_summary(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    everyone_covered(qualys, org)

    run = audit(environ)

    assert run.status == 0, run.err
    assert run.out.strip().endswith(
        "All ok: 5 ok, 0 missing, 0 orphaned, 0 duplicate, 0 unhealthy, 0 foreign"
        " (6 accounts, 5 connectors)"
    )
    assert "5 ok connectors not listed" in run.out


def test_every_class_against_active_suspended_and_absent_accounts(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    made = one_of_each(qualys, org)

    run = audit(environ, "--json")

    assert run.status == 1
    assert run.json()["summary"] == {
        "ok": 3,
        "missing": 1,
        "orphaned": 2,
        "duplicate": 1,
        "unhealthy": 1,
        "foreign": 1,
    }
    statuses = run.statuses()
    assert {role: statuses[i] for role, i in made.items()} == {
        "ok": "ok",
        "management": "ok",
        "closed": "orphaned",
        "absent": "orphaned",
        "api": "ok",
        "duplicate": "duplicate",
        "unhealthy": "unhealthy",
        "foreign": "foreign",
    }
    assert run.json()["missing"] == [{"account": org.ids["play"], "name": "play"}]
    unhealthy = next(c for c in run.json()["connectors"] if c["id"] == made["unhealthy"])
    assert unhealthy == {
        "id": made["unhealthy"],
        "name": f"aws-{org.ids['dev']}",
        "account": org.ids["dev"],
        "state": "ERROR",
        "status": "unhealthy",
        "detail": ROLE_ERROR.format(account=org.ids["dev"]),
    }


def test_json_prints_only_the_document_on_stdout(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    one_of_each(qualys, org)

    run = audit(environ, "--json", "--delete-orphans")

    assert run.out.startswith("{")
    assert run.out.endswith("}\n")
    assert set(run.json()) == {"summary", "connectors", "missing"}
    assert "Dry run: would delete 2" in run.err
    assert "Read 8 connectors from Qualys" in run.err


def test_the_table_groups_by_class_with_names_states_and_lasterror(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    made = one_of_each(qualys, org)

    run = audit(environ, "--show-ok")

    lines = run.out.splitlines()
    assert lines[0].split() == [
        "Class",
        "Account",
        "Account",
        "name",
        "Connector",
        "Connector",
        "name",
        "State",
        "Reason",
    ]
    classes = [line.split()[0] for line in lines[2:] if line and not line.startswith(" ")]
    assert classes[:6] == ["missing", "orphaned", "duplicate", "unhealthy", "foreign", "ok"]
    unhealthy = next(line for line in lines if line.startswith("unhealthy"))
    assert unhealthy.split()[1:6] == [
        org.ids["dev"],
        "dev",
        str(made["unhealthy"]),
        f"aws-{org.ids['dev']}",
        "ERROR",
    ]
    assert "Unable to assume role" in unhealthy
    assert any(line.startswith("missing") and "play" in line for line in lines)
    assert lines[-1].startswith("Not ok: 3 ok, 1 missing, 2 orphaned")
    assert max(len(line) for line in lines) <= cli.PIPE_WIDTH


def test_names_print_as_they_are_not_as_markup(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    qualys.seed(name="[bold red]x[/] & <y>", description="hand-made")

    run = audit(environ)

    assert "[bold red]x[/] & <y>" in run.out


# --- --ou: nested OUs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ous", "missing"),
    [
        (["Workloads"], ["web", "api", "dev"]),
        (["Workloads:Prod"], ["web", "api"]),
        (["@Workloads:Prod"], ["web", "api"]),
        (["Sandbox", "Workloads:Prod:Web"], ["web", "play"]),
        (["Root"], ["web", "api", "dev", "play", "management"]),
    ],
    ids=[
        "an OU and its children at any depth",
        "a nested OU by its path",
        "a nested OU by its id",
        "several OUs",
        "the root: every account",
    ],
)
def test_ou_narrows_which_accounts_can_be_missing(
    qualys: QualysSimulator,
    org: Org,
    environ: dict[str, str],
    ous: list[str],
    missing: list[str],
) -> None:
    orphan = ours(qualys, org.ids["closed"]).id
    argv = []
    for ou in ous:
        argv += ["--ou", org.ous[ou[1:]] if ou.startswith("@") else ou]

    run = audit(environ, "--json", *argv)

    names = {org.management: "management"} | {v: k for k, v in org.ids.items()}
    assert sorted(names[m["account"]] for m in run.json()["missing"]) == sorted(missing)
    # Connectors are judged against the whole organisation, whatever the scope.
    assert run.statuses() == {orphan: "orphaned"}


@pytest.mark.parametrize(
    ("ou", "message"),
    [
        ("Workloads:Nope", "there is no OU 'Nope' under Workloads"),
        ("ou-abcd-12345678", "OU ou-abcd-12345678 is not in the organisation"),
        ("r-abcd", "r-abcd is not the root of the organisation"),
        ("Workloads::Prod", "has an empty level"),
    ],
    ids=["an unknown name", "an unknown id", "another root", "an empty level"],
)
def test_an_ou_that_names_nothing_exits_2(
    qualys: QualysSimulator, org: Org, environ: dict[str, str], ou: str, message: str
) -> None:
    ours(qualys, org.ids["closed"])

    run = audit(environ, "--ou", ou, "--delete-orphans", "--yes")

    assert run.status == 2
    assert message in run.err
    assert "delete" not in operations(qualys)


# --- paging ------------------------------------------------------------------------------


def test_paging_past_1000_connectors_takes_one_search_a_page(
    qualys: QualysSimulator, environ: dict[str, str], tmp_path: Path
) -> None:
    accounts = [f"{n:012d}" for n in range(1, 2346)]
    for account in accounts:  # straight into the store: no HTTP create per connector
        ours(qualys, account, connector_state="FINISHED_SUCCESS")
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([{"Id": a, "Name": a, "Status": "ACTIVE"} for a in accounts]))

    run = audit(environ, "--accounts", str(path), "--json")

    assert run.status == 0, run.err
    assert run.json()["summary"]["ok"] == 2345
    searches = [r for r in qualys.requests if r.operation == "search"]
    assert operations(qualys) == ["search"] * 3
    assert all("<limitResults>1000</limitResults>" in r.text for r in searches)
    for page in (1, 2, 3):
        assert f"page {page} (up to 1,000 each)" in run.err


# --- the audit could not run: exit 2 ------------------------------------------------------


def test_wrong_credentials_exit_2_without_the_password(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    ours(qualys, org.ids["closed"])
    wrong = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="qualys/wrong",
        SecretString=json.dumps({"username": USERNAME, "password": PASSWORD + "-not"}),
    )["ARN"]

    run = audit({**environ, "QUALYS_CREDENTIALS_SECRET_ID": wrong}, "--delete-orphans", "--yes")

    assert run.status == 2
    assert run.err.strip().splitlines()[-1].startswith("Audit could not run: ")
    assert "credentials" in run.err.lower()
    assert operations(qualys) == ["search"]
    assert len(qualys.connectors()) == 1


def test_an_empty_account_list_exits_2_and_deletes_nothing(
    qualys: QualysSimulator, environ: dict[str, str], tmp_path: Path
) -> None:
    ours(qualys, "111111111111")
    path = tmp_path / "accounts.json"
    path.write_text("[]")

    run = audit(environ, "--accounts", str(path), "--delete-orphans", "--yes")

    assert run.status == 2
    assert "The account list is empty" in run.err
    assert operations(qualys) == []
    assert len(qualys.connectors()) == 1


def test_an_unreadable_account_list_exits_2_and_deletes_nothing(
    qualys: QualysSimulator, environ: dict[str, str], tmp_path: Path
) -> None:
    ours(qualys, "111111111111")
    path = tmp_path / "accounts.json"
    path.write_text('[{"Id": "111111111111", "Status": "Active"}]')

    run = audit(environ, "--accounts", str(path), "--delete-orphans", "--yes")

    assert run.status == 2
    assert "Status must be one of" in run.err
    assert operations(qualys) == []


def test_no_organisation_means_no_accounts_exits_2_and_deletes_nothing(
    qualys: QualysSimulator, aws: None, environ: dict[str, str]
) -> None:
    ours(qualys, "111111111111")  # moto without an organisation lists no account

    run = audit(environ, "--delete-orphans", "--yes")

    assert run.status == 2
    assert "The account list is empty" in run.err
    assert "delete" not in operations(qualys)
    assert len(qualys.connectors()) == 1


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "AWSOrganizationsNotInUseException"], ids=str
)
def test_organizations_not_readable_exits_2_and_deletes_nothing(
    qualys: QualysSimulator, aws: None, environ: dict[str, str], code: str
) -> None:
    ours(qualys, "111111111111")
    client = boto3.client("organizations", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("list_accounts", service_error_code=code)

    with stubber:
        run = audit(environ, "--delete-orphans", "--yes", organizations=client)

    assert run.status == 2
    assert f"AWS Organizations could not be read (ListAccounts: {code})" in run.err
    assert "or give the accounts as a file" in run.err
    assert operations(qualys) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"QUALYS_API_URL": "http://qualys.example.com"}, "https"),
        ({"QUALYS_CREDENTIALS_SECRET_ID": ""}, "QUALYS_CREDENTIALS_SECRET_ID is not set"),
        ({"QUALYS_CREDENTIALS_SECRET_ID": "qualys/absent"}, "does not exist"),
    ],
    ids=["a plain-http Qualys", "no credentials secret", "an absent secret"],
)
def test_a_bad_configuration_exits_2(
    org: Org, environ: dict[str, str], change: dict[str, str], message: str
) -> None:
    run = audit({**environ, **change})

    assert run.status == 2
    assert message in run.err


def test_yes_without_delete_orphans_is_refused(environ: dict[str, str]) -> None:
    assert audit(environ, "--yes").status == 2


# --- deleting orphans -------------------------------------------------------------------


def test_delete_orphans_without_yes_is_a_dry_run(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    made = one_of_each(qualys, org)
    before = qualys.connectors()

    run = audit(environ, "--delete-orphans")

    assert run.status == 1
    assert "Dry run: would delete 2 orphaned connector(s)" in run.out
    for role in ("closed", "absent"):
        assert f"  {made[role]}  aws-" in run.out
    assert qualys.connectors() == before
    assert "delete" not in operations(qualys)


def test_yes_deletes_exactly_the_orphans_each_logged_and_reported(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    made = one_of_each(qualys, org)
    unknown = ours(qualys, "", name="custom name", arn=None, aws_account_id=None).id
    before = qualys.connectors()

    run = audit(environ, "--delete-orphans", "--yes")

    assert run.status == 1
    gone = {c.id for c in before} - {c.id for c in qualys.connectors()}
    assert gone == {made["closed"], made["absent"]}
    assert [r.connector_id for r in qualys.requests if r.operation == "delete"] == sorted(gone)
    for connector_id in gone:
        assert f"Connector {connector_id} (aws-" in run.out
        assert f"Deleted orphaned connector {connector_id}" in run.err
    assert "Deleted 2 of 2 orphaned connector(s)." in run.out
    assert f"Not deleting connector {unknown} (custom name): its account is unknown" in run.out
    # The foreign connector of the closed account, the duplicate, the unhealthy one: kept.
    assert qualys.connectors() == [c for c in before if c.id not in gone]


def fleet_audit(qualys: QualysSimulator, environ: dict[str, str], org: Org) -> Any:
    client = qualys_client(Settings.from_env(environ), SecretStore())
    accounts = Organizations(org.client).accounts()
    deadline = Deadline.after(60)
    return client, run_audit(client, accounts, scope=None, deadline=deadline), deadline


def test_a_connector_changed_since_the_search_is_not_deleted(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    marked_away = ours(qualys, org.ids["closed"]).id
    moved = ours(qualys, ABSENT).id
    client, found, deadline = fleet_audit(qualys, environ, org)
    qualys.modify(marked_away, description="edited in the UI")
    qualys.modify(moved, arn=f"arn:aws:iam::{org.ids['web']}:role/qualys")

    deletions = delete_orphans(client, found, deadline=deadline)

    assert [(d.finding.connector.id, d.deleted, d.outcome) for d in deletions] == [
        (marked_away, False, "not deleted: changed since the search"),
        (moved, False, "not deleted: changed since the search"),
    ]
    assert len(qualys.connectors()) == 2


def test_a_delete_whose_answer_is_lost_is_looked_up_not_sent_again(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    orphan = ours(qualys, org.ids["closed"]).id
    client, found, deadline = fleet_audit(qualys, environ, org)
    qualys.inject("delete", Fault.drop(process=True))

    (deletion,) = delete_orphans(client, found, deadline=deadline)

    assert (deletion.deleted, deletion.outcome) == (True, "deleted")
    assert qualys.connector(orphan) is None
    assert operations(qualys) == ["search", "get", "delete", "get"]


def test_a_delete_answered_not_found_for_a_connector_still_there_is_not_counted(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    orphan = ours(qualys, org.ids["closed"]).id
    client, found, deadline = fleet_audit(qualys, environ, org)
    qualys.inject("delete", Fault.response_code("OBJECT_NOT_FOUND", "Object not found"))

    (deletion,) = delete_orphans(client, found, deadline=deadline)

    assert deletion.deleted is False
    assert deletion.outcome.startswith("not deleted: ")
    assert qualys.connector(orphan) is not None


# --- the command itself -----------------------------------------------------------------


def run_module(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provider.audit", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_python_m_provider_audit_runs_the_command_line() -> None:
    helped = run_module("--help")
    unconfigured = run_module("--accounts", "/nonexistent.json")

    assert helped.returncode == 0
    assert "--delete-orphans" in helped.stdout
    assert "exit status:" in helped.stdout
    assert unconfigured.returncode == 2
    assert unconfigured.stdout == ""
    assert "Audit could not run: Environment variable QUALYS_API_URL" in unconfigured.stderr


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as an interactive stderr does."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_progress_is_a_spinner_that_ends_with_the_audit(
    qualys: QualysSimulator, org: Org, environ: dict[str, str]
) -> None:
    everyone_covered(qualys, org)
    out, err = Terminal(), Terminal()

    status = cli.main([], environ=environ, stdout=out, stderr=err, secrets=SecretStore())

    assert status == 0
    assert "Read 5 connectors from Qualys" in err.getvalue()
    assert "All ok: 5 ok" in out.getvalue()
