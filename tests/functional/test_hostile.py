"""Races, short budgets and hostile input end in one definite answer, one connector and
no leaked secret."""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from conftest import (
    CREDENTIALS_SECRET,
    PASSWORD,
    REGION,
    LambdaContext,
    Provider,
    load_event,
)
from provider.handler import Container
from sandbox.qualys import Fault, QualysSimulator
from sandbox.slack import SlackReceiver


def create_event(**properties: Any) -> dict[str, Any]:
    event = load_event("connector_create")
    event["ResourceProperties"].update(properties)
    return event


def test_the_same_create_in_two_containers_at_once_leaves_one_connector(
    provider: Provider, qualys: QualysSimulator
) -> None:
    event = create_event()
    containers = [Container(os.environ, **provider.options) for _ in range(2)]
    start = threading.Barrier(len(containers), timeout=10)
    # Both look-ups would come before either create if the provider looked first.
    qualys.inject("create", Fault.delay(0.3), times=2)

    def deliver(container: Container) -> None:
        start.wait()
        container(copy.deepcopy(event), LambdaContext())

    threads = [threading.Thread(target=deliver, args=(c,)) for c in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    answers = provider.collector.responses
    assert len(answers) == 2, "one answer per delivery"
    assert {a.status for a in answers} == {"SUCCESS"}, [a.reason for a in answers]
    assert answers[0].physical_resource_id == answers[1].physical_resource_id
    assert answers[0].data == answers[1].data
    (connector,) = qualys.connectors()
    assert str(connector.id) == answers[0].physical_resource_id
    assert sum(r.operation == "create" for r in qualys.requests) == 2, "both created"


def test_a_create_with_twenty_seconds_left_succeeds_against_a_fast_qualys(
    provider: Provider, qualys: QualysSimulator
) -> None:
    provider.new_container(safety_margin=10.0)  # the production margin

    answer = provider.send(create_event(), remaining_ms=20_000)

    assert answer.status == "SUCCESS", answer.reason
    assert len(qualys.connectors()) == 1


@pytest.mark.parametrize(
    "request_type", [pytest.param("Remove", id="unknown"), pytest.param("create", id="lower-case")]
)
def test_an_unknown_request_type_answers_failed_with_a_reason_and_a_real_id(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver, request_type: str
) -> None:
    event = create_event()
    event["RequestType"] = request_type
    event["PhysicalResourceId"] = "1234567"

    answer = provider.send(event)

    assert answer.status == "FAILED"
    assert "Unsupported RequestType" in answer.reason
    assert answer.physical_resource_id == "1234567"
    assert qualys.requests == []
    assert slack.wait_for(1)[-1]["text"].startswith("Qualys connector failed")


@pytest.mark.parametrize(
    "properties", [pytest.param("ConnectorName=x", id="string"), pytest.param(["x"], id="list")]
)
def test_resource_properties_that_are_not_an_object_fail_naming_them_and_reach_slack(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver, properties: object
) -> None:
    event = create_event()
    event["ResourceProperties"] = properties

    answer = provider.send(event)

    assert answer.status == "FAILED"
    assert answer.reason == "Property ResourceProperties must be an object of properties"
    assert qualys.requests == []
    assert slack.wait_for(1)[-1]["text"].startswith("Qualys connector failed")


def test_a_password_that_qualys_echoes_reaches_no_reason_log_or_slack(
    provider: Provider, qualys: QualysSimulator
) -> None:
    qualys.inject("create", Fault.response_code("OTHER_ERROR", f"bad login for {PASSWORD}"))

    answer = provider.send(create_event())

    # The provider fixture also checks every log line and Slack message for the password.
    assert answer.status == "FAILED"
    assert PASSWORD not in answer.reason
    assert "<redacted>" in answer.reason


@pytest.fixture
def fresh_library_loggers() -> Iterator[None]:
    """The library loggers as a new Lambda container has them (levels unset), restored after."""
    names = ("botocore", "boto3", "crhelper")
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("fresh_library_loggers")
def test_reading_the_secret_logs_no_secret_when_the_root_logger_is_at_debug(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    # Lambda's ApplicationLogLevel DEBUG puts the root logger at DEBUG (the provider fixture
    # does too), where botocore would log GetSecretValue's whole response body; crhelper's
    # boto_level (ERROR, set on every request) is what keeps it quiet.
    answer = provider.send(create_event())

    assert answer.status == "SUCCESS"
    logged = "\n".join(record.getMessage() for record in caplog.get_records("call"))
    assert "Response body" not in logged
    assert PASSWORD not in logged


def test_a_missing_credentials_secret_is_named_in_the_reason(
    provider: Provider, qualys: QualysSimulator
) -> None:
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=CREDENTIALS_SECRET, ForceDeleteWithoutRecovery=True
    )

    answer = provider.send(create_event())

    assert answer.status == "FAILED"
    assert "qualys/credentials" in answer.reason
    assert "does not exist" in answer.reason


def test_an_answer_that_trickles_in_is_cut_off_by_the_deadline_not_crhelpers_timer(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created = provider.send(create_event())
    activation = load_event("activation_create")
    activation["ResourceProperties"]["ConnectorId"] = created.physical_resource_id
    qualys.inject("update", Fault.trickle(pause=1.0))
    started = time.monotonic()

    answer = provider.send(activation, remaining_ms=8_000)

    assert answer.status == "FAILED"
    assert answer.reason != "Execution timed out"
    assert answer.physical_resource_id == f"{created.physical_resource_id}/activation"
    assert time.monotonic() - started < 8.0, "answered before the Lambda deadline"


def test_an_enormous_answer_is_refused_without_reading_it_all(
    provider: Provider, qualys: QualysSimulator
) -> None:
    qualys.inject("search", Fault.oversized(64 * 1024 * 1024), times=10)

    answer = provider.send(create_event())

    # The create happened; the look-up after it cannot be read, so the new one is used.
    assert answer.status == "SUCCESS", answer.reason
    assert len(qualys.connectors()) == 1


def test_a_get_answered_with_another_connector_never_deletes_or_spares_the_wrong_one(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created = provider.send(create_event())
    other = qualys.seed(name="someone else's", description="no marker")
    answer_about_other = (
        "<ServiceResponse><responseCode>SUCCESS</responseCode><count>1</count><data>"
        f"<AwsAssetDataConnector><id>{other.id}</id><name>x</name></AwsAssetDataConnector>"
        "</data></ServiceResponse>"
    )
    qualys.inject("get", Fault.http(200, body=answer_about_other), times=10)
    delete = load_event("connector_delete")
    delete["PhysicalResourceId"] = created.physical_resource_id

    answer = provider.send(delete)

    assert answer.status == "FAILED", "a mismatched answer is a protocol error, not a SUCCESS"
    assert "answered get of connector" in answer.reason
    assert {c.id for c in qualys.connectors()} == {int(created.physical_resource_id), other.id}
