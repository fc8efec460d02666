"""The event source mapping stand-in, and the provider behind it with Standard limits."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest

from bench.central import central
from conftest import REGION
from sandbox.event_source import EventSourceMapping


@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs", region_name=REGION)


def test_it_deletes_what_succeeded_and_keeps_what_the_function_names(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for body in ("keep", "done", "done"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    seen: list[str] = []

    def invoke(_worker: int, event: dict[str, Any]) -> dict[str, Any]:
        (record,) = event["Records"]
        seen.append(record["body"])
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].endswith(":q")
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        failed = [{"itemIdentifier": record["messageId"]}] if record["body"] == "keep" else []
        return {"batchItemFailures": failed}

    mapping = EventSourceMapping(sqs, url, invoke, maximum_concurrency=2)
    assert mapping.run_until(lambda: len(seen) == 3, timeout=30)

    assert sorted(seen) == ["done", "done", "keep"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1", "the named one stays"


def test_it_never_runs_more_invocations_than_its_maximum_concurrency(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for i in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    running, peak, handled = [0], [0], []
    lock = threading.Lock()
    release = threading.Event()

    def invoke(_worker: int, event: dict[str, Any]) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(0.05)
        with lock:
            running[0] -= 1
            handled.append(event["Records"][0]["body"])

    mapping = EventSourceMapping(sqs, url, invoke, maximum_concurrency=2)
    assert mapping.run_until(lambda: len(handled) == 12, timeout=60)
    assert peak[0] == 2
    assert mapping.peak_concurrency == 2


def test_the_maximum_concurrency_has_aws_range(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    with pytest.raises(ValueError, match="2 to 1000"):
        EventSourceMapping(sqs, url, lambda _w, _e: None, maximum_concurrency=1)


def test_accounts_through_the_queue_all_succeed_with_no_rejected_call() -> None:
    """Standard limits (2 slots, a latency) and MaximumConcurrency 2: the provider never
    causes a rejection, and every account's connector and activation answer SUCCESS."""
    result = central(accounts=6, latency=0.05)

    assert result["succeeded"] == 6
    assert result["answers"] == {"connector SUCCESS": 6, "activation SUCCESS": 6}
    assert result["rejected"] == 0
    assert result["peak"] == 2
    assert json.dumps(result["calls"])  # counted by operation
