"""The scheduled audit (``provider.audit.lambda_handler``) against the Qualys simulator, moto
(Organizations, S3, Secrets Manager) and the Slack receiver: one digest when anything is
off, within Block Kit's limits, never a secret; nothing when all is ok, unless asked."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

import provider.audit
from conftest import PASSWORD, REGION, USERNAME, LambdaContext
from provider.audit import function
from provider.audit.function import AuditFunction
from provider.markers import marker
from sandbox.qualys import QualysSimulator, SimConnector
from sandbox.slack import SlackReceiver

BUCKET = "qualys-audit-accounts"
MAX_BLOCKS = 50


@pytest.fixture
def environ(
    qualys: QualysSimulator, secrets: dict[str, str], caplog: pytest.LogCaptureFixture
) -> dict[str, str]:
    # The provider's own lines and the HTTP libraries' (which see the webhook URL), at DEBUG;
    # botocore's DEBUG lines echo whole responses, secrets included, and stay off as in Lambda.
    for name in ("provider", "urllib3", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    return {
        "QUALYS_API_URL": qualys.base_url,
        "QUALYS_CREDENTIALS_SECRET_ID": secrets["credentials"],
        "SLACK_WEBHOOK_SECRET_ID": secrets["slack"],
        "LOG_LEVEL": "DEBUG",
    }


@pytest.fixture(autouse=True)
def no_secret_anywhere(slack: SlackReceiver, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """After each test: no password, Basic token or webhook URL in a message or a log line."""
    yield
    # caplog.text holds the current phase's records only (teardown, here): read the test's.
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(r) for r in caplog.get_records("call"))
    assert logged, "the audit logged nothing: the check below would prove nothing"
    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    posted = json.dumps(slack.messages)
    for secret in (PASSWORD, token, slack.webhook_url, slack.path):
        assert secret not in logged, f"a log line holds a secret ({secret[:8]}…)"
        assert secret not in posted, f"a Slack message holds a secret ({secret[:8]}…)"
    assert slack.rejected == [], "Slack would have refused a message"


@pytest.fixture
def org(aws: None) -> dict[str, str]:
    """moto's organisation: the management account, one ACTIVE account and one closed."""
    client = boto3.client("organizations", region_name=REGION)
    client.create_organization(FeatureSet="ALL")
    ids = {"management": client.list_accounts()["Accounts"][0]["Id"]}
    for name in ("prod", "closed"):
        created = client.create_account(AccountName=name, Email=f"{name}@example.com")
        ids[name] = created["CreateAccountStatus"]["AccountId"]
    client.close_account(AccountId=ids["closed"])
    return ids


def ours(qualys: QualysSimulator, account_id: str, **fields: Any) -> SimConnector:
    stack = f"arn:aws:cloudformation:{REGION}:{account_id}:stack/qualys-connector/x"
    return qualys.seed(
        name=f"aws-{account_id}",
        description=marker(stack, "QualysConnector"),
        arn=f"arn:aws:iam::{account_id}:role/qualys-connector",
        **fields,
    )


def run(environ: dict[str, str], **options: Any) -> dict[str, Any]:
    return AuditFunction(environ, **options)({"source": "aws.events"}, LambdaContext())


def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = message["attachments"][0]["blocks"]
    return found


def test_one_digest_is_posted_when_anything_is_off(
    qualys: QualysSimulator, slack: SlackReceiver, org: dict[str, str], environ: dict[str, str]
) -> None:
    ours(qualys, org["management"])
    ours(qualys, org["prod"], connector_state="ERROR", last_error="Unable to assume role")
    orphan = ours(qualys, org["closed"])

    answer = run(environ)

    assert answer["status"] == "not ok"
    assert answer["posted"] is True
    assert answer["summary"]["orphaned"] == 1
    (message,) = slack.messages
    text = json.dumps(message)
    assert "Qualys connector audit: 2 to look at" in text
    assert f"{orphan.id} aws-{org['closed']}" in text
    assert "Unable to assume role" in text
    assert qualys.connector(orphan.id) is not None, "the scheduled audit never deletes"


def test_nothing_is_posted_when_everything_is_ok(
    qualys: QualysSimulator, slack: SlackReceiver, org: dict[str, str], environ: dict[str, str]
) -> None:
    ours(qualys, org["management"])
    ours(qualys, org["prod"])

    answer = run(environ)

    assert answer == {
        "status": "ok",
        "summary": {
            "ok": 2,
            "missing": 0,
            "orphaned": 0,
            "duplicate": 0,
            "unhealthy": 0,
            "foreign": 0,
        },
        "posted": False,
    }
    assert slack.messages == []


def test_a_daily_all_clear_is_posted_when_asked(
    qualys: QualysSimulator, slack: SlackReceiver, org: dict[str, str], environ: dict[str, str]
) -> None:
    ours(qualys, org["management"])
    ours(qualys, org["prod"])

    answer = run({**environ, "AUDIT_ALL_CLEAR": "true"})

    assert answer["posted"] is True
    (message,) = slack.messages
    assert "all clear" in blocks(message)[0]["text"]["text"]


def s3_accounts(accounts: list[dict[str, str]]) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=BUCKET, Key="org/accounts.json", Body=json.dumps(accounts).encode())
    return f"s3://{BUCKET}/org/accounts.json"


def test_the_accounts_come_from_s3_where_organizations_is_not_readable(
    qualys: QualysSimulator, slack: SlackReceiver, aws: None, environ: dict[str, str]
) -> None:
    uri = s3_accounts(
        [
            {"Id": "111111111111", "Name": "prod", "Status": "ACTIVE"},
            {"Id": "222222222222", "Name": "new", "Status": "ACTIVE"},
        ]
    )
    ours(qualys, "111111111111")

    answer = run({**environ, "AUDIT_ACCOUNTS_S3_URI": uri})

    assert answer["summary"]["missing"] == 1
    (message,) = slack.messages
    assert "222222222222 (new)" in json.dumps(message)


def test_an_unreadable_account_list_posts_that_the_audit_could_not_run(
    qualys: QualysSimulator, slack: SlackReceiver, aws: None, environ: dict[str, str]
) -> None:
    s3_accounts([])
    ours(qualys, "111111111111")

    answer = run({**environ, "AUDIT_ACCOUNTS_S3_URI": f"s3://{BUCKET}/absent.json"})

    assert answer["status"] == "failed"
    assert answer["reason"] == f"S3 object s3://{BUCKET}/absent.json could not be read (NoSuchKey)"
    (message,) = slack.messages
    assert "could not run" in message["text"]
    assert [r.operation for r in qualys.requests] == []


def test_an_empty_account_list_posts_that_the_audit_could_not_run(
    qualys: QualysSimulator, slack: SlackReceiver, aws: None, environ: dict[str, str]
) -> None:
    uri = s3_accounts([])

    answer = run({**environ, "AUDIT_ACCOUNTS_S3_URI": uri})

    assert answer["status"] == "failed"
    assert "The account list is empty" in answer["reason"]
    assert len(slack.messages) == 1


def test_wrong_qualys_credentials_post_a_failure_without_the_password(
    qualys: QualysSimulator, slack: SlackReceiver, org: dict[str, str], environ: dict[str, str]
) -> None:
    qualys.set_password(USERNAME, "rotated-" + PASSWORD[::-1])

    answer = run(environ)

    assert answer["status"] == "failed"
    assert "credentials" in answer["reason"].lower()
    assert len(slack.messages) == 1


def test_a_digest_of_many_findings_stays_within_block_kit_limits(
    qualys: QualysSimulator, slack: SlackReceiver, aws: None, environ: dict[str, str]
) -> None:
    accounts = [
        {"Id": f"{n:012d}", "Name": f"<@here> acct {n}", "Status": "ACTIVE"} for n in range(1, 600)
    ]
    for n in range(1, 300):
        ours(qualys, f"{n:012d}", connector_state="ERROR", last_error="x" * 900)
    for n in range(700, 1000):
        ours(qualys, f"{n:012d}")  # absent from the account list: orphaned

    answer = run({**environ, "AUDIT_ACCOUNTS_S3_URI": s3_accounts(accounts)})

    assert answer["summary"] == {
        "ok": 0,
        "missing": 300,
        "orphaned": 300,
        "duplicate": 0,
        "unhealthy": 299,
        "foreign": 0,
    }
    (message,) = slack.messages  # the receiver refuses what Slack would refuse
    assert len(blocks(message)) <= MAX_BLOCKS
    sections = [b["text"]["text"] for b in blocks(message) if "text" in b]
    assert all(len(text) <= 3000 for text in sections)
    assert any(text.endswith("more_") for text in sections)
    assert "<@here>" not in json.dumps(message)


def test_without_a_slack_secret_nothing_is_posted_and_the_log_says_so(
    qualys: QualysSimulator,
    slack: SlackReceiver,
    org: dict[str, str],
    environ: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ours(qualys, org["closed"])
    del environ["SLACK_WEBHOOK_SECRET_ID"]

    answer = run(environ)

    assert answer["posted"] is False
    assert "SLACK_WEBHOOK_SECRET_ID is not set" in caplog.text
    assert slack.messages == []


def test_an_unexpected_failure_is_reported_not_raised(
    qualys: QualysSimulator, slack: SlackReceiver, aws: None, environ: dict[str, str]
) -> None:
    def broken_s3() -> Any:
        raise RuntimeError("no S3 here")

    answer = run({**environ, "AUDIT_ACCOUNTS_S3_URI": "s3://b/k.json"}, s3_client_factory=broken_s3)

    assert answer == {"status": "failed", "reason": "unexpected RuntimeError", "posted": True}
    assert len(slack.messages) == 1


def test_lambda_handler_reads_the_functions_environment(
    qualys: QualysSimulator,
    slack: SlackReceiver,
    org: dict[str, str],
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    ours(qualys, org["closed"])
    function._function.cache_clear()

    try:
        answer = provider.audit.lambda_handler({}, LambdaContext())
    finally:
        function._function.cache_clear()

    assert answer["status"] == "not ok"
    assert len(slack.messages) == 1
