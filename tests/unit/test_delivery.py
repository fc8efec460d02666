"""provider.delivery: every envelope a request can come in, and records that hold none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provider.delivery import Source, requeue_backoff, unwrap

REQUEST: dict[str, Any] = {
    "RequestType": "Create",
    "ResponseURL": "https://example.invalid/response",
    "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1",
    "RequestId": "r-1",
    "LogicalResourceId": "QualysConnector",
    "ResourceType": "Custom::QualysConnector",
    "ResourceProperties": {"ServiceTimeout": "600"},
}
QUEUE = "arn:aws:sqs:eu-west-1:222222222222:qualys-provider"


def sqs_record(body: str, **changes: Any) -> dict[str, Any]:
    record = {
        "messageId": "m-1",
        "receiptHandle": "handle-1",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"},
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE,
        "awsRegion": "eu-west-1",
    }
    record.update(changes)
    return record


def sns_record(message: str) -> dict[str, Any]:
    return {"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": message}}


def test_a_direct_request_is_one_delivery() -> None:
    invocation = unwrap(REQUEST)
    assert invocation.source is Source.DIRECT
    (delivery,) = invocation.deliveries
    assert delivery.event == REQUEST
    assert delivery.queue is None
    assert delivery.window_ends is None


def test_an_sns_record_carries_the_request_as_its_message() -> None:
    invocation = unwrap({"Records": [sns_record(json.dumps(REQUEST))]})
    assert invocation.source is Source.SNS
    assert invocation.deliveries[0].event == REQUEST


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps(REQUEST), id="raw delivery"),
        pytest.param(
            json.dumps({"Type": "Notification", "Message": json.dumps(REQUEST)}),
            id="SNS envelope in the body",
        ),
    ],
)
def test_an_sqs_record_carries_the_request_and_its_place_in_the_queue(body: str) -> None:
    invocation = unwrap({"Records": [sqs_record(body)]})
    assert invocation.source is Source.SQS
    (delivery,) = invocation.deliveries
    assert delivery.event == REQUEST
    assert delivery.queue is not None
    assert delivery.queue.message_id == "m-1"
    assert delivery.queue.receive_count == 3
    assert delivery.queue.queue_name == "qualys-provider"
    assert delivery.queue.queue_owner == "222222222222"
    assert delivery.service_timeout == 600
    assert delivery.window_ends == 1_700_000_000 + 600


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [("600", 600), (None, 3600), ("0", 3600), ("9999", 3600), ("١٢", 3600), ("abc", 3600)],
)
def test_the_window_is_the_service_timeout_or_cloudformations_default(
    timeout: str | None, expected: int
) -> None:
    request = {
        **REQUEST,
        "ResourceProperties": {} if timeout is None else {"ServiceTimeout": timeout},
    }
    delivery = unwrap({"Records": [sqs_record(json.dumps(request))]}).deliveries[0]
    assert delivery.service_timeout == expected


@pytest.mark.parametrize(
    ("record", "problem", "answerable"),
    [
        pytest.param(sqs_record("not json"), "is not JSON", False, id="body not JSON"),
        pytest.param(sqs_record("[1, 2]"), "not a JSON object", False, id="body a list"),
        pytest.param(
            sqs_record(json.dumps({k: v for k, v in REQUEST.items() if k != "RequestType"})),
            "lacks RequestType",
            True,
            id="no RequestType: answered FAILED",
        ),
        pytest.param(
            sqs_record(json.dumps({k: v for k, v in REQUEST.items() if k != "ResponseURL"})),
            "lacks ResponseURL",
            False,
            id="no ResponseURL: cannot be answered",
        ),
        pytest.param(
            sqs_record(json.dumps(REQUEST), receiptHandle=None),
            "lacks receiptHandle",
            False,
            id="no receipt handle",
        ),
        pytest.param({"eventSource": "aws:s3"}, "neither an SNS nor an SQS", False, id="S3 record"),
        pytest.param("text", "neither an SNS nor an SQS", False, id="record a string"),
        pytest.param(sns_record("{"), "is not JSON", False, id="SNS message not JSON"),
    ],
)
def test_a_malformed_record_says_why(record: object, problem: str, answerable: bool) -> None:
    (delivery,) = unwrap({"Records": [record]}).deliveries
    assert delivery.event is None
    assert delivery.problem is not None
    assert problem in delivery.problem
    assert (delivery.answerable is not None) is answerable


def test_a_malformed_record_does_not_hide_the_good_one_beside_it() -> None:
    invocation = unwrap({"Records": [sqs_record("nope"), sqs_record(json.dumps(REQUEST))]})
    assert [d.event is not None for d in invocation.deliveries] == [False, True]


@pytest.mark.parametrize("event", [None, "text", [], {"Records": "x"}, {}])
def test_an_event_of_no_known_shape_is_one_malformed_delivery(event: object) -> None:
    (delivery,) = unwrap(event).deliveries
    assert delivery.event is None
    assert delivery.problem


def test_the_requeue_backoff_doubles_to_a_minute_and_outlasts_the_window() -> None:
    waits = [requeue_backoff(n) for n in range(1, 101)]
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(waits) == 60.0
    assert requeue_backoff(10_000) == 60.0
    # The provider waits at least this (jitter only adds), so the queue's 100 receives
    # outlast CloudFormation's 3,600 s window before the dead-letter queue takes a message.
    assert sum(waits) > 3600
