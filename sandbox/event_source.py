"""A stand-in for Lambda's SQS event source mapping, polling a (moto) queue.

What the real mapping does and this one does too: it receives up to ``batch_size`` messages
at a time with every attribute, calls the function with them as a Lambda SQS event, runs at
most ``maximum_concurrency`` invocations at once (``ScalingConfig.MaximumConcurrency``),
deletes the messages of a batch that succeeded except those the function names in
``batchItemFailures`` (``ReportBatchItemFailures``), and leaves a whole batch to come back
after its visibility timeout when the function raises. The function may change a message's
visibility itself (the provider does, to wait out Qualys's throttling).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

#: ``invoke(worker, event)``: one Lambda invocation by worker ``worker`` (0 to the maximum
#: concurrency less one; a worker is a warm container), returning the function's result.
Invoke = Callable[[int, dict[str, Any]], Any]

_POLL_SECONDS: Final = 1


class EventSourceMapping:
    """Polls ``queue_url`` through ``sqs`` (a boto3 SQS client) and invokes the function."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        invoke: Invoke,
        *,
        batch_size: int = 1,
        maximum_concurrency: int = 2,
        region: str = "eu-west-1",
    ) -> None:
        if not 2 <= maximum_concurrency <= 1000:
            raise ValueError("MaximumConcurrency must be 2 to 1000, as in AWS")
        self._sqs = sqs
        self._queue_url = queue_url
        self._invoke = invoke
        self._batch_size = batch_size
        self._maximum_concurrency = maximum_concurrency
        self._region = region
        self._lock = threading.Lock()
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.invocations = 0
        self.errors = 0
        self._busy = 0
        self.peak_concurrency = 0

    def run_until(self, done: Callable[[], bool], *, timeout: float) -> bool:
        """Poll with ``maximum_concurrency`` workers until ``done()`` or ``timeout`` seconds
        pass; True when ``done()`` held."""
        ends = time.monotonic() + timeout
        stop = threading.Event()

        def work(worker: int) -> None:
            while not stop.is_set() and time.monotonic() < ends:
                if done():
                    stop.set()
                    return
                self._poll_once(worker)

        workers = [
            threading.Thread(target=work, args=(i,), name=f"esm-{i}", daemon=True)
            for i in range(self._maximum_concurrency)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return done()

    def _poll_once(self, worker: int) -> None:
        with self._lock:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch_size,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        if not messages:
            time.sleep(_POLL_SECONDS / 20)
            return
        event = {"Records": [self._record(message) for message in messages]}
        with self._lock:
            self.invocations += 1
            self._busy += 1
            self.peak_concurrency = max(self.peak_concurrency, self._busy)
        try:
            result = self._invoke(worker, event)
        except Exception:  # noqa: BLE001 - Lambda reports a function error; the batch returns
            with self._lock:
                self.errors += 1
            return
        finally:
            with self._lock:
                self._busy -= 1
        failed = _failed_ids(result)
        for message in messages:
            if message["MessageId"] not in failed:
                with self._lock:
                    self._sqs.delete_message(
                        QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """A received message in the shape Lambda gives the function."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": dict(message.get("MessageAttributes", {})),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }


def _failed_ids(result: object) -> set[str]:
    """The message ids a ``ReportBatchItemFailures`` result names; none when it names none."""
    if result is None:
        return set()
    failures = result.get("batchItemFailures") if isinstance(result, Mapping) else None
    if not isinstance(failures, list):
        return set()
    return {str(item.get("itemIdentifier")) for item in failures if isinstance(item, Mapping)}
