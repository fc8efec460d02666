"""How a CloudFormation request reaches the provider: directly, through SNS, or through SQS.

The one place that knows the envelopes (design section 9). ``unwrap`` turns whatever Lambda
passed to the handler into a list of ``Delivery``: the CloudFormation request each record
carries, or why it carries none. The lifecycle never learns how a request came.

- Direct: the event is the request (``RequestType`` at the top).
- SNS: ``Records[].Sns.Message`` is the request as JSON.
- SQS: ``Records[].body`` is the request as JSON, or an SNS notification envelope (the
  subscription without raw delivery) whose ``Message`` is. The record's ``messageId``,
  ``receiptHandle``, ``eventSourceARN``, ``ApproximateReceiveCount`` and ``SentTimestamp``
  travel with it, so the handler can hand it back to its queue.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from provider.text import shorten

DEFAULT_SERVICE_TIMEOUT: Final = 3600
"""CloudFormation's wait for an answer when a resource sets no ``ServiceTimeout``."""
ANSWERABLE: Final = ("ResponseURL", "StackId", "RequestId", "LogicalResourceId")
"""What a FAILED answer needs: where to send it and which request it answers."""
REQUIRED: Final = (*ANSWERABLE, "RequestType")
_SHOWN: Final = 120


class Source(Enum):
    """How the invocation arrived."""

    DIRECT = "direct"
    SNS = "sns"
    SQS = "sqs"


@dataclass(frozen=True)
class QueueRecord:
    """Where an SQS-delivered request sits in its queue."""

    message_id: str
    receipt_handle: str
    queue_arn: str
    receive_count: int
    sent_at: float
    """When the message entered the queue, in seconds since the epoch."""

    @property
    def queue_name(self) -> str:
        """The queue's name, the last field of its ARN."""
        return self.queue_arn.rsplit(":", 1)[-1]

    @property
    def queue_owner(self) -> str:
        """The account that owns the queue."""
        parts = self.queue_arn.split(":")
        return parts[4] if len(parts) == 6 else ""


@dataclass(frozen=True)
class Delivery:
    """One record: the request it carries, or the problem that keeps it from being one.

    ``event`` is set when the record holds a whole request. Otherwise ``problem`` says why,
    and ``answerable`` holds the request's fields when there is enough to answer FAILED
    (``ANSWERABLE``); None when no answer can reach CloudFormation.
    """

    event: Mapping[str, Any] | None
    problem: str | None = None
    answerable: Mapping[str, Any] | None = None
    queue: QueueRecord | None = None

    @property
    def service_timeout(self) -> int:
        """Seconds CloudFormation waits for this request's answer (``ServiceTimeout``)."""
        properties = (self.event or {}).get("ResourceProperties")
        value = properties.get("ServiceTimeout") if isinstance(properties, Mapping) else None
        text = str(value).strip() if value is not None else ""
        if text.isascii() and text.isdigit() and 1 <= int(text) <= DEFAULT_SERVICE_TIMEOUT:
            return int(text)
        return DEFAULT_SERVICE_TIMEOUT

    @property
    def window_ends(self) -> float | None:
        """When CloudFormation stops waiting (epoch seconds), for a queued request."""
        if self.queue is None:
            return None
        return self.queue.sent_at + self.service_timeout


@dataclass(frozen=True)
class Invocation:
    """What one Lambda invocation brought."""

    source: Source
    deliveries: tuple[Delivery, ...]


def unwrap(event: object) -> Invocation:
    """The requests of one invocation, whatever envelope they came in; never raises."""
    if not isinstance(event, Mapping):
        return Invocation(Source.DIRECT, (_request(event, "The event"),))
    records = event.get("Records")
    if "RequestType" in event or not isinstance(records, Sequence) or isinstance(records, str):
        return Invocation(Source.DIRECT, (_request(event, "The event"),))
    sources = {_record_source(record) for record in records}
    source = Source.SQS if Source.SQS in sources else Source.SNS
    return Invocation(
        source,
        tuple(_from_record(record, index) for index, record in enumerate(records)),
    )


def _record_source(record: object) -> Source | None:
    if not isinstance(record, Mapping):
        return None
    if record.get("eventSource") == "aws:sqs":
        return Source.SQS
    if record.get("EventSource") == "aws:sns":
        return Source.SNS
    return None


def _from_record(record: object, index: int) -> Delivery:
    where = f"Record {index}"
    source = _record_source(record)
    if source is None or not isinstance(record, Mapping):
        return Delivery(None, f"{where} is neither an SNS nor an SQS record")
    if source is Source.SNS:
        sns = record.get("Sns")
        message = sns.get("Message") if isinstance(sns, Mapping) else None
        return _request(_json(message), f"{where} (SNS Message)")
    queue, problem = _queue_record(record, where)
    if queue is None:
        return Delivery(None, problem)
    body = _json(record.get("body"))
    if isinstance(body, Mapping) and body.get("Type") == "Notification" and "Message" in body:
        request = _request(_json(body.get("Message")), f"{where} (SNS Message in SQS body)")
    else:
        request = _request(body, f"{where} (SQS body)")
    return Delivery(request.event, request.problem, request.answerable, queue)


def _queue_record(record: Mapping[str, Any], where: str) -> tuple[QueueRecord | None, str]:
    attributes = record.get("attributes")
    attributes = attributes if isinstance(attributes, Mapping) else {}
    fields = {
        name: value if isinstance(value := record.get(name), str) else ""
        for name in ("messageId", "receiptHandle", "eventSourceARN")
    }
    missing = [name for name, value in fields.items() if not value]
    if missing:
        return None, f"{where} lacks {', '.join(missing)}: it cannot be handed back to its queue"
    return QueueRecord(
        message_id=fields["messageId"],
        receipt_handle=fields["receiptHandle"],
        queue_arn=fields["eventSourceARN"],
        receive_count=_whole(attributes.get("ApproximateReceiveCount"), default=1),
        sent_at=_whole(attributes.get("SentTimestamp"), default=0) / 1000.0,
    ), ""


def _whole(value: object, *, default: int) -> int:
    text = str(value) if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() else default


class _NotJson:
    """A body that is not JSON text: kept apart from any JSON value."""

    def __init__(self, text: object) -> None:
        self.text = text


def _json(text: object) -> object:
    if not isinstance(text, str):
        return _NotJson(text)
    try:
        return json.loads(text)
    except ValueError:
        return _NotJson(text)


def _request(value: object, what: str) -> Delivery:
    if isinstance(value, _NotJson):
        shown = shorten(repr(value.text), _SHOWN)
        return Delivery(None, f"{what} is not JSON: {shown}")
    if not isinstance(value, Mapping):
        return Delivery(None, f"{what} is not a JSON object of a CloudFormation request")
    missing = [name for name in REQUIRED if not _text(value.get(name))]
    if not missing:
        return Delivery(value)
    problem = f"{what} is not a CloudFormation request: it lacks {', '.join(missing)}"
    answerable = value if all(_text(value.get(name)) for name in ANSWERABLE) else None
    return Delivery(None, problem, answerable)


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def requeue_backoff(receive_count: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """The least wait before a throttled queued request is tried again: doubling with each
    receive, from ``base`` to ``cap`` seconds (so 100 receives outlast a 3,600 s window)."""
    exponent = max(0, receive_count - 1)
    return cap if exponent > math.log2(cap / base) else min(cap, base * 2**exponent)
