"""Faults end in a definite SUCCESS or FAILED: Qualys down, slow, throttled or garbled,
credentials wrong, secrets missing, Slack down; never a duplicate or an orphan."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from conftest import (
    CREDENTIALS_SECRET,
    PASSWORD,
    QUALYS_ACCOUNT,
    REGION,
    SLACK_SECRET,
    USERNAME,
    Provider,
    load_event,
)
from provider.qualys.client import RetryPolicy
from provider.qualys.models import ApiVersion
from sandbox.qualys import Fault, QualysSimulator
from sandbox.slack import SlackReceiver


@pytest.fixture
def provider_options() -> dict[str, Any]:
    """Client backoff in hundredths of a second; the logic is the same."""
    return {"retry": RetryPolicy(backoff_base=0.01, backoff_cap=0.05)}


def create_event(**properties: Any) -> dict[str, Any]:
    event = load_event("connector_create")
    event["ResourceProperties"].update(properties)
    return event


def delete_event(physical_id: str) -> dict[str, Any]:
    event = load_event("connector_delete")
    event["PhysicalResourceId"] = physical_id
    return event


def test_wrong_password_fails_with_what_to_fix_and_rereads_the_secret(
    provider: Provider, qualys: QualysSimulator
) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.put_secret_value(
        SecretId=CREDENTIALS_SECRET,
        SecretString=json.dumps({"username": USERNAME, "password": "wrong"}),
    )

    failed = provider.send(create_event())
    secrets.put_secret_value(
        SecretId=CREDENTIALS_SECRET,
        SecretString=json.dumps({"username": USERNAME, "password": PASSWORD}),
    )
    fixed = provider.send(create_event())  # same warm container

    assert failed.status == "FAILED"
    assert "rejected the credentials" in failed.reason
    assert fixed.status == "SUCCESS", fixed.reason
    assert len(qualys.connectors()) == 1


@pytest.mark.parametrize(
    ("case", "secret_string", "words"),
    [
        ("not json", "username=me", "not JSON"),
        ("no password", json.dumps({"username": "me"}), '"password"'),
        ("list", json.dumps(["me", "pw"]), "not a JSON object"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "",
)
def test_malformed_credentials_secret_names_the_format(
    provider: Provider, qualys: QualysSimulator, case: str, secret_string: str, words: str
) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=CREDENTIALS_SECRET, SecretString=secret_string
    )

    answer = provider.send(create_event())

    assert answer.status == "FAILED", case
    assert words in answer.reason, answer.reason
    assert qualys.requests == []


def test_missing_credentials_secret_fails_create_but_not_rollback_delete(
    provider: Provider, monkeypatch: pytest.MonkeyPatch, qualys: QualysSimulator
) -> None:
    monkeypatch.setenv("QUALYS_CREDENTIALS_SECRET_ID", "no/such/secret")

    failed = provider.send(create_event())
    rollback = provider.send(delete_event(failed.physical_resource_id))

    assert failed.status == "FAILED"
    assert "secret does not exist" in failed.reason
    assert rollback.status == "SUCCESS"


def test_missing_environment_variable_is_named(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUALYS_API_URL")

    answer = provider.send(create_event())

    assert answer.status == "FAILED"
    assert "QUALYS_API_URL" in answer.reason


@pytest.mark.parametrize(
    ("case", "fault", "words"),
    [
        ("5xx", Fault.http(503), "HTTP 503"),
        ("html page", Fault.html(502), "HTTP 502"),
        ("other error", Fault.response_code("OTHER_ERROR", "boom"), "internal error"),
        ("malformed", Fault.malformed(), "cannot be read"),
        ("truncated", Fault.truncated(), "cannot be read"),
        ("dropped", Fault.drop(), "could not be reached"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_create_that_did_not_happen_fails_without_leaving_anything(
    provider: Provider, qualys: QualysSimulator, case: str, fault: Fault, words: str
) -> None:
    qualys.inject("create", fault)

    answer = provider.send(create_event())

    assert answer.status == "FAILED", case
    assert words in answer.reason, answer.reason
    assert qualys.connectors() == []
    assert sum(r.operation == "create" for r in qualys.requests) == 1, "never resent blindly"


@pytest.mark.parametrize(
    ("case", "fault"),
    [("answer lost", Fault.drop(process=True)), ("answer late", Fault.delay(4.0))],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_create_whose_answer_was_lost_is_found_not_repeated(
    provider: Provider,
    qualys: QualysSimulator,
    case: str,
    fault: Fault,
) -> None:
    provider.new_container(lookup_reserve=5.0)
    qualys.inject("create", fault)

    # 2 s safety margin + 5 s look-up reserve leave the create 3 s: shorter than the delay.
    answer = provider.send(create_event(), remaining_ms=10_000)

    assert answer.status == "SUCCESS", answer.reason
    (connector,) = qualys.connectors()
    assert answer.physical_resource_id == str(connector.id), case
    assert sum(r.operation == "create" for r in qualys.requests) == 1


def test_throttled_calls_are_waited_out(provider: Provider) -> None:
    with (
        QualysSimulator(users={USERNAME: PASSWORD}, rate_limit=1, rate_window=1.0) as limited,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("QUALYS_API_URL", limited.base_url)
        provider.new_container()
        started = time.monotonic()
        answer = provider.send(create_event())  # a search, then a create: over the limit
        elapsed = time.monotonic() - started
        connectors = limited.connectors()

    assert answer.status == "SUCCESS", answer.reason
    assert len(connectors) == 1
    assert elapsed >= 0.5, "the rate window must have been waited out"


def test_throttling_longer_than_the_time_left_fails_in_time(
    provider: Provider, qualys: QualysSimulator
) -> None:
    qualys.inject("create", Fault.http(409, headers={"X-RateLimit-ToWait-Sec": "120"}))
    started = time.monotonic()

    answer = provider.send(create_event(), remaining_ms=30_000)

    assert answer.status == "FAILED"
    assert "Qualys asked to wait 120s (API limit)" in answer.reason
    assert time.monotonic() - started < 10
    assert qualys.connectors() == []


def test_qualys_slower_than_the_time_left_fails_with_a_real_reason_before_lambda_ends(
    provider: Provider,
) -> None:
    provider.new_container(lookup_reserve=1.0)
    with (
        QualysSimulator(users={USERNAME: PASSWORD}, latency=6.0) as slow,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("QUALYS_API_URL", slow.base_url)
        provider.new_container()
        started = time.monotonic()
        answer = provider.send(create_event(), remaining_ms=5_000)
        elapsed = time.monotonic() - started

    assert answer.status == "FAILED"
    assert answer.reason != "Execution timed out"
    assert "in time" in answer.reason or "No time left" in answer.reason, answer.reason
    assert elapsed < 4.5, "the provider must answer before crhelper's timer (0.5 s before the end)"


def test_update_slower_than_the_time_left_keeps_the_real_id(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created = provider.send(create_event())
    qualys.inject("get", Fault.delay(10.0), times=5)
    event = load_event("connector_update")
    event["PhysicalResourceId"] = created.physical_resource_id

    answer = provider.send(event, remaining_ms=5_000)

    assert answer.status == "FAILED"
    assert answer.physical_resource_id == created.physical_resource_id


def test_delete_when_qualys_is_down_fails_so_the_connector_is_not_orphaned(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created = provider.send(create_event())
    qualys.inject("*", Fault.http(503), times=20)

    answer = provider.send(delete_event(created.physical_resource_id))

    assert answer.status == "FAILED"
    assert "try again later" in answer.reason
    assert len(qualys.connectors()) == 1


def test_delete_whose_answer_was_lost_is_checked_not_repeated_blindly(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created = provider.send(create_event())
    qualys.inject("delete", Fault.drop(process=True))

    answer = provider.send(delete_event(created.physical_resource_id))

    assert answer.status == "SUCCESS", answer.reason
    assert qualys.connectors() == []
    assert sum(r.operation == "delete" for r in qualys.requests) == 1


@pytest.mark.parametrize("failure", ["500", "hang", "down"])
def test_slack_failure_never_changes_the_outcome(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver, failure: str
) -> None:
    if failure == "500":
        slack.fail_next(500, times=5)
    elif failure == "hang":
        slack.hang_next(10.0, times=5)
    else:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        boto3.client("secretsmanager", region_name=REGION).put_secret_value(
            SecretId=SLACK_SECRET,
            SecretString=json.dumps({"webhook_url": f"http://127.0.0.1:{port}{slack.path}"}),
        )

    answer = provider.send(create_event())

    assert answer.status == "SUCCESS", answer.reason
    assert len(qualys.connectors()) == 1


@pytest.fixture
def silent_qualys(monkeypatch: pytest.MonkeyPatch) -> Iterator[QualysSimulator]:
    """A simulator whose connectors leave out qualysAwsAccountId (an OPEN fact)."""
    with QualysSimulator(users={USERNAME: PASSWORD}, report_qualys_account_id=False) as sim:
        monkeypatch.setenv("QUALYS_API_URL", sim.base_url)
        yield sim


def test_unreported_qualys_account_falls_back_to_the_setting(
    provider: Provider, silent_qualys: QualysSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUALYS_AWS_ACCOUNT_ID", "111122223333")
    provider.new_container()

    answer = provider.send(create_event())

    assert answer.status == "SUCCESS", answer.reason
    assert answer.data["QualysAwsAccountId"] == "111122223333"


def test_unreported_qualys_account_without_setting_fails_with_the_real_id(
    provider: Provider, silent_qualys: QualysSimulator
) -> None:
    provider.new_container()

    failed = provider.send(create_event())
    rollback = provider.send(delete_event(failed.physical_resource_id))

    assert failed.status == "FAILED"
    assert "set QUALYS_AWS_ACCOUNT_ID" in failed.reason
    assert failed.physical_resource_id.isdigit(), "the rollback Delete needs the real id"
    assert rollback.status == "SUCCESS"
    assert silent_qualys.connectors() == []


def test_reported_qualys_account_wins_over_the_setting(
    provider: Provider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("QUALYS_AWS_ACCOUNT_ID", "111122223333")
    provider.new_container()

    answer = provider.send(create_event())

    assert answer.data["QualysAwsAccountId"] == QUALYS_ACCOUNT
    assert "not QUALYS_AWS_ACCOUNT_ID" in caplog.text


def test_api_2_0_runs_the_lifecycle_and_ignores_run_frequency(
    provider: Provider,
    qualys: QualysSimulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("QUALYS_API_VERSION", "2.0")
    provider.new_container()

    created = provider.send(create_event(RunFrequencyMinutes="360"))
    deleted = provider.send(delete_event(created.physical_resource_id))

    assert created.status == deleted.status == "SUCCESS"
    assert "RunFrequencyMinutes is ignored on Qualys API 2.0" in caplog.text
    assert {r.api_version for r in qualys.requests} == {"2.0"}
    assert qualys.connectors() == []


def test_broken_slack_secret_never_changes_the_outcome(
    provider: Provider, qualys: QualysSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=SLACK_SECRET, SecretString=json.dumps({"url": "wrong key"})
    )

    answer = provider.send(create_event())

    assert answer.status == "SUCCESS", answer.reason
    assert "Slack notifications are off" in caplog.text


def test_without_slack_configured_nothing_is_posted(
    provider: Provider, slack: SlackReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET_ID")
    provider.new_container()

    answer = provider.send(create_event())

    assert answer.status == "SUCCESS", answer.reason
    assert slack.messages == []


class BrokenApi:
    """A Qualys API with a bug in it: every call raises what no code expects."""

    api_version = ApiVersion.V3

    def __getattr__(self, name: str) -> Any:
        def broken(*_args: object, **_kwargs: object) -> None:
            raise KeyError("surprise")

        return broken


def test_a_bug_answers_failed_with_a_pointer_to_the_log(
    provider: Provider, slack: SlackReceiver
) -> None:
    provider.new_container(api=BrokenApi())
    event = create_event()

    answer = provider.send(event)

    assert answer.status == "FAILED"
    assert answer.reason == (
        f"Internal error in the provider: see its log for request {event['RequestId']}"
    )
    assert slack.messages[-1]["text"].startswith("Qualys connector failed")


def rotate_password(qualys: QualysSimulator, new: str) -> None:
    """Qualys's password changes, and the secret is updated to match."""
    qualys.set_password(USERNAME, new)
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=CREDENTIALS_SECRET,
        SecretString=json.dumps({"username": USERNAME, "password": new}),
    )


@pytest.mark.parametrize("resource", ["connector", "activation"])
def test_after_a_password_rotation_the_second_request_reads_the_new_secret(
    provider: Provider, qualys: QualysSimulator, resource: str
) -> None:
    created = provider.send(create_event())  # the warm container now holds the old password
    assert created.status == "SUCCESS", created.reason
    if resource == "connector":
        event = load_event("connector_update")
        event["PhysicalResourceId"] = created.physical_resource_id
    else:
        event = load_event("activation_create")
        event["ResourceProperties"]["ConnectorId"] = created.physical_resource_id
    rotate_password(qualys, "Rotated-" + PASSWORD)

    first = provider.send(event)
    second = provider.send({**event, "RequestId": f"{event['RequestId']}-again"})

    assert first.status == "FAILED", resource
    assert "HTTP 401" in first.reason, resource
    assert second.status == "SUCCESS", f"{resource}: {second.reason}"
