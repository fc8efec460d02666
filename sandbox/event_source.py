"""A stand-in for Lambda's SQS event source mapping, polling a (moto) queue.

What the real mapping does and this one does too: a poller apart from the function
polls the queue for up to ``batch_size`` messages with every attribute and hold them
until a worker is free; at most ``maximum_concurrency`` invocations run at once
(``ScalingConfig.MaximumConcurrency``), each with its batch as a Lambda SQS event; the
messages of a batch that succeeded are deleted, except those the function names in
``batchItemFailures`` (``ReportBatchItemFailures``), without holding up the next
invocation; a whole batch comes back after its visibility timeout when the function
raises. The function may change a message's visibility itself (the provider does, to wait
out Qualys's throttling).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

#: ``invoke(worker, event)``: one Lambda invocation by worker ``worker`` (0 to the maximum
#: concurrency less one; a worker is a warm container), returning the function's result.
Invoke = Callable[[int, dict[str, Any]], Any]

#: How long the poller waits after finding the queue empty, and how often a waiting worker
#: looks at ``done()``. (Lambda's pollers long-poll for 20 s; a short poll lets the stand-in
#: stop at once, with nothing received behind its back.)
_CHECK_SECONDS: Final = 0.05


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
        """Poll and invoke until ``done()`` or ``timeout`` seconds pass; True when ``done()``
        held. Messages received but not yet invoked when it stops stay in flight until
        their visibility timeout, as with the real mapping when it is disabled."""
        ends = time.monotonic() + timeout
        stop = threading.Event()
        # Received batches wait here for a worker: no more than one per worker.
        received: queue.Queue[list[dict[str, Any]]] = queue.Queue(self._maximum_concurrency)
        # Receipt handles of what succeeded, deleted by the poller's helper; None ends it.
        finished: queue.Queue[str | None] = queue.Queue()

        def running() -> bool:
            return not stop.is_set() and time.monotonic() < ends

        def poll() -> None:
            while running():
                messages = self._receive()
                if not messages:
                    stop.wait(_CHECK_SECONDS)
                while messages and running():
                    try:
                        received.put(messages, timeout=_CHECK_SECONDS)
                        messages = []
                    except queue.Full:
                        continue

        def work(worker: int) -> None:
            while running():
                if done():
                    stop.set()
                    return
                try:
                    messages = received.get(timeout=_CHECK_SECONDS)
                except queue.Empty:
                    continue
                self._invoke_batch(worker, messages, finished)

        def delete() -> None:
            while (handle := finished.get()) is not None:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=handle)

        poller = threading.Thread(target=poll, name="esm-poller", daemon=True)
        deleter = threading.Thread(target=delete, name="esm-deleter", daemon=True)
        workers = [
            threading.Thread(target=work, args=(i,), name=f"esm-{i}", daemon=True)
            for i in range(self._maximum_concurrency)
        ]
        for thread in (poller, deleter, *workers):
            thread.start()
        for worker in workers:
            worker.join()
        stop.set()
        poller.join()
        finished.put(None)
        deleter.join()
        return done()

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def _invoke_batch(
        self, worker: int, messages: list[dict[str, Any]], finished: queue.Queue[str | None]
    ) -> None:
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
                finished.put(message["ReceiptHandle"])

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
