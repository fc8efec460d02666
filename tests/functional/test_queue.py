"""The central provider's queue paths (design section 9): requests through moto's SQS, to the
handler as the event source mapping delivers them, against the Qualys simulator."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pytest

from conftest import REGION, LambdaContext, Provider, load_event
from sandbox.qualys import QualysSimulator
from sandbox.qualys.faults import Fault


@pytest.fixture
def provider_options() -> dict[str, Any]:
    """A queued call gives up on throttling at once: Qualys's waits here are seconds."""
    return {"queue_patience": 1.0}


@pytest.fixture
def queue(aws: None) -> str:
    """An SQS queue in moto, its URL."""
    return str(boto3.client("sqs", region_name=REGION).create_queue(QueueName="qualys")["QueueUrl"])


def enqueue(queue_url: str, request: dict[str, Any]) -> None:
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(request)
    )


def received(queue_url: str, *, wait: int = 0) -> dict[str, Any] | None:
    """The next visible message as a Lambda SQS event, or None."""
    sqs = boto3.client("sqs", region_name=REGION)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    messages = sqs.receive_message(
        QueueUrl=queue_url, AttributeNames=["All"], WaitTimeSeconds=wait, MaxNumberOfMessages=10
    ).get("Messages", [])
    if not messages:
        return None
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def deliver(provider: Provider, event: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Invoke the handler with ``event``: the ids it hands back, and the answers it sent."""
    before = len(provider.collector.responses)
    result = provider.container(event, LambdaContext())
    assert isinstance(result, dict)
    failures = [item["itemIdentifier"] for item in result["batchItemFailures"]]
    return failures, provider.collector.responses[before:]


def test_a_queued_create_is_answered_once_and_removed(
    provider: Provider, qualys: QualysSimulator, queue: str
) -> None:
    request = load_event("connector_create")
    enqueue(queue, request)

    failures, answers = deliver(provider, received(queue) or {})

    assert failures == []
    assert [a.status for a in answers] == ["SUCCESS"]
    assert answers[0].request_id == request["RequestId"]
    assert len(qualys.connectors()) == 1


def test_a_redelivered_request_gives_the_same_answer_and_one_connector(
    provider: Provider, qualys: QualysSimulator, queue: str
) -> None:
    enqueue(queue, load_event("connector_create"))
    event = received(queue) or {}

    _, first = deliver(provider, event)
    provider.new_container()
    _, second = deliver(provider, event)

    assert first[0].status == second[0].status == "SUCCESS"
    assert first[0].physical_resource_id == second[0].physical_resource_id
    assert first[0].data == second[0].data
    assert len(qualys.connectors()) == 1


def test_a_throttled_request_goes_back_to_the_queue_and_succeeds_later(
    provider: Provider, qualys: QualysSimulator, queue: str
) -> None:
    request = load_event("connector_create")
    enqueue(queue, request)
    qualys.inject("create", Fault.http(409, headers={"X-RateLimit-ToWait-Sec": "2"}))

    failures, answers = deliver(provider, received(queue) or {})

    assert answers == [], "a requeued request must not be answered"
    assert len(failures) == 1
    assert received(queue) is None, "the message stays invisible for the wait Qualys asked"
    assert qualys.connectors() == []

    later = received(queue, wait=10)
    assert later is not None, "the message came back after the wait"
    assert later["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    failures, answers = deliver(provider, later)
    assert failures == []
    assert [a.status for a in answers] == ["SUCCESS"]
    assert answers[0].request_id == request["RequestId"]
    assert len(qualys.connectors()) == 1


def test_qualys_too_busy_for_the_window_is_failed_before_cloudformation_gives_up(
    provider: Provider, qualys: QualysSimulator, queue: str
) -> None:
    request = load_event("connector_create")
    request["ResourceProperties"]["ServiceTimeout"] = "120"
    enqueue(queue, request)
    qualys.inject("create", Fault.http(409, headers={"X-RateLimit-ToWait-Sec": "1800"}))

    failures, answers = deliver(provider, received(queue) or {})

    assert failures == []
    assert [a.status for a in answers] == ["FAILED"]
    assert "too busy" in answers[0].reason
    assert "120s" in answers[0].reason
    assert qualys.connectors() == []


def test_a_malformed_record_beside_a_good_one(
    provider: Provider, qualys: QualysSimulator, queue: str
) -> None:
    good = load_event("connector_create")
    unanswerable = "this is not a request"
    answerable = load_event("connector_create")
    del answerable["RequestType"]
    for body in (unanswerable, json.dumps(answerable)):
        boto3.client("sqs", region_name=REGION).send_message(QueueUrl=queue, MessageBody=body)
    enqueue(queue, good)
    event = received(queue) or {}
    assert len(event["Records"]) == 3

    failures, answers = deliver(provider, event)

    assert failures == [], "the provider stops a malformed record itself, it never redelivers"
    by_request = {a.request_id: a for a in answers}
    assert by_request[good["RequestId"]].status == "SUCCESS"
    refused = by_request[answerable["RequestId"]]
    assert refused.status == "FAILED"
    assert "lacks RequestType" in refused.reason
    assert len(answers) == 2
    assert len(qualys.connectors()) == 1


def test_an_sns_delivered_request_is_answered(provider: Provider, qualys: QualysSimulator) -> None:
    request = load_event("connector_create")
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(request)}}]}
    before = len(provider.collector.responses)

    assert provider.container(event, LambdaContext()) is None

    answers = provider.collector.responses[before:]
    assert [a.status for a in answers] == ["SUCCESS"]
    assert len(qualys.connectors()) == 1
    assert os.environ["QUALYS_API_URL"] == qualys.base_url
