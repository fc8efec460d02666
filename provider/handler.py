"""The Lambda entry point: wires crhelper to the two resource types.

crhelper owns the CloudFormation protocol (it sends exactly one response per request); this
module only builds the per-container dependencies, lazily, in one ``Container``, and turns
each request into a call to the lifecycle. A request comes directly from CloudFormation, or
through SNS or SQS (the central provider, design section 9): ``provider.delivery`` unwraps
it. Importing this module creates no boto3 client and reads no secret.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from crhelper import CfnResource
from crhelper import log_helper as crhelper_log
from crhelper import utils as crhelper_utils

from provider import logs
from provider.config import Settings
from provider.credentials import SecretCredentials, SecretStore, read_slack_webhook_url
from provider.deadline import Deadline
from provider.delivery import Delivery, Source, requeue_backoff, unwrap
from provider.errors import ProviderError
from provider.lifecycle import LOOKUP_RESERVE, ActivationPolicy, Lifecycle, Request
from provider.lifecycle.model import REASON_LIMIT, ConnectorApi, Outcome
from provider.qualys.client import QualysClient, RetryPolicy
from provider.qualys.errors import QualysThrottledError
from provider.slack.message import Notification
from provider.slack.notifier import Notifier, NullNotifier, SlackNotifier
from provider.text import shorten

logger = logging.getLogger(__name__)

SLEEP_ON_DELETE = 5
"""Seconds crhelper waits before answering a Delete, so its logs reach CloudWatch first."""
SAFETY_MARGIN = 10.0
"""Seconds kept back from the Lambda deadline to notify Slack and send the answer (crhelper
answers "Execution timed out" with an empty id 0.5 s before the deadline: never let it)."""
SLACK_TIMEOUT = 3.0
QUEUE_PATIENCE = 20.0
"""Seconds one Qualys call of a queued request may spend waiting out throttling before the
request goes back to its queue (design section 9): the slot is another request's then."""
WINDOW_MARGIN = 30.0
"""Seconds kept back from the end of CloudFormation's window (SentTimestamp plus the
request's ServiceTimeout): the answer must arrive while CloudFormation still waits."""
REQUEUE_MIN_WORK = 60.0
"""Time a requeued request needs after its wait to be worth trying again; with less, the
provider answers FAILED (Qualys too busy) while CloudFormation still listens."""


class _CfnResource(CfnResource):  # type: ignore[misc,unused-ignore]  # crhelper is untyped
    """crhelper, passing every RequestType to one function of the provider.

    crhelper looks up a function by RequestType, and answers one it does not know FAILED
    itself, with an empty PhysicalResourceId that CloudFormation rejects. Here the
    provider's routing table refuses it with a reason, and crhelper answers with the
    event's id. The provider never polls (crhelper's poll_* functions).
    """

    def __init__(
        self, run: Callable[[Mapping[str, Any], Any], str], *, sleep_on_delete: int
    ) -> None:
        # crhelper's own constructor would also build three boto3 clients (Lambda, Events,
        # Logs) for its polling, which this provider never does: 0.13 s of CPU in every
        # cold container, about a second at 256 MB. This is the rest of it, with logging at
        # INFO (at DEBUG crhelper logs whole events and the presigned ResponseURL) and
        # botocore at ERROR; test_crhelper_contract compares the two.
        self._sleep_on_delete = sleep_on_delete
        self._create_func = self._update_func = self._delete_func = None
        self._poll_create_func = self._poll_update_func = self._poll_delete_func = None
        self._timer = None
        self._init_failed = None
        self._json_logging = False
        self._log_level = "INFO"
        self._boto_level = "ERROR"
        self._send_response = False
        self._polling_interval = 2
        self.Status = ""
        self.Reason = ""
        self.PhysicalResourceId = ""
        self.StackId = ""
        self.RequestId = ""
        self.LogicalResourceId = ""
        self.Data: dict[str, Any] = {}
        self.NoEcho = False
        self._event: Mapping[str, Any] = {}
        self._context = None
        self._response_url = ""
        self._sam_local = os.getenv("AWS_SAM_LOCAL")
        self._region = os.getenv("AWS_REGION")
        self._ssl_verify = None
        crhelper_log.setup(self._log_level, formatter_cls=None, boto_level=self._boto_level)
        self._run = run
        self.deferred: float | None = None
        """Set by the provider to hand a queued request back to its queue unanswered."""

    def _crhelper_init(self, event: Mapping[str, Any], context: Any) -> bool:
        self.deferred = None
        return bool(super()._crhelper_init(event, context))  # type: ignore[misc]

    def _get_func(self) -> Callable[[Mapping[str, Any], Any], str]:
        return self._run

    def _poll_enabled(self) -> bool:
        return False

    def _wait_for_cwlogs(self, *args: Any, **kwargs: Any) -> None:
        if self.deferred is None:
            super()._wait_for_cwlogs(*args, **kwargs)  # type: ignore[misc]

    def _cfn_response(self, event: Mapping[str, Any]) -> None:
        if self.deferred is None:
            super()._cfn_response(event)  # type: ignore[misc]

    def _send(self, status: str | None = None, reason: str = "", **options: Any) -> None:
        """Every answer crhelper sends, logged with the phrase the central template's
        metric filter counts (``Answered FAILED``)."""
        super()._send(status, reason, **options)  # type: ignore[misc]
        outcome = status or self.Status
        level = logging.INFO if outcome == "SUCCESS" else logging.WARNING
        logger.log(
            level, "Answered %s to %s (request %s)", outcome, self.LogicalResourceId, self.RequestId
        )


class Container:
    """What one Lambda container builds once and keeps: settings, secrets, clients, crhelper.

    Every policy is an argument with the production value as default; tests build a
    ``Container`` with their own (shorter waits, another Qualys API) and call it as Lambda
    would call ``lambda_handler``.
    """

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        secrets: SecretStore | None = None,
        api: ConnectorApi | None = None,
        retry: RetryPolicy | None = None,
        activation: ActivationPolicy | None = None,
        lookup_reserve: float = LOOKUP_RESERVE,
        safety_margin: float = SAFETY_MARGIN,
        sleep_on_delete: int = SLEEP_ON_DELETE,
        slack_timeout: float = SLACK_TIMEOUT,
        queue_patience: float = QUEUE_PATIENCE,
        window_margin: float = WINDOW_MARGIN,
        requeue_min_work: float = REQUEUE_MIN_WORK,
        queue_client: Callable[[str], Any] | None = None,
    ) -> None:
        self._environ = environ
        self._secrets = secrets or SecretStore()
        self._api = api
        self._retry = retry or RetryPolicy()
        self._activation = activation or ActivationPolicy()
        self._lookup_reserve = lookup_reserve
        self._safety_margin = safety_margin
        self._sleep_on_delete = sleep_on_delete
        self._slack_timeout = slack_timeout
        self._queue_patience = queue_patience
        self._window_margin = window_margin
        self._requeue_min_work = requeue_min_work
        self._queue_client = queue_client or _sqs_client
        self._notifier: Notifier | None = None
        self._queued: Delivery | None = None
        """The queued request being handled, while it is."""

    def __call__(self, event: Mapping[str, Any], context: Any) -> dict[str, Any] | None:
        """Handle one Lambda invocation, as ``lambda_handler`` does: every request it
        brings gets one answer, except a queued one handed back to its queue. For SQS the
        result names those (``batchItemFailures``), for the event source mapping."""
        invocation = unwrap(event)
        requeued: list[dict[str, str]] = []
        for delivery in invocation.deliveries:
            if delivery.event is None:
                self._refuse(delivery)
            elif delivery.queue is None:
                self.helper(delivery.event, context)
            elif self._handle_queued(delivery, context):
                requeued.append({"itemIdentifier": delivery.queue.message_id})
        if invocation.source is Source.SQS:
            return {"batchItemFailures": requeued}
        return None

    def _handle_queued(self, delivery: Delivery, context: Any) -> bool:
        """One queued request; True when it went back to its queue unanswered."""
        assert delivery.event is not None
        assert delivery.queue is not None
        self._queued = delivery
        try:
            self.helper(delivery.event, context)
        finally:
            self._queued = None
        wait = self.helper.deferred
        if wait is None:
            return False
        seconds = max(1, min(43_200, math.ceil(wait)))
        queue = delivery.queue
        try:
            client = self._queue_client(queue.queue_arn.split(":")[3])
            url = client.get_queue_url(
                QueueName=queue.queue_name, QueueOwnerAWSAccountId=queue.queue_owner
            )["QueueUrl"]
            client.change_message_visibility(
                QueueUrl=url, ReceiptHandle=queue.receipt_handle, VisibilityTimeout=seconds
            )
        except Exception as error:  # noqa: BLE001 - the queue's own timeout still returns it
            logger.warning(
                "Could not delay message %s (%s): it returns after the queue's visibility timeout",
                queue.message_id,
                type(error).__name__,
            )
        logger.info(
            "Request %s goes back to its queue for %ds (receive %d)",
            delivery.event.get("RequestId"),
            seconds,
            queue.receive_count,
        )
        return True

    def _refuse(self, delivery: Delivery) -> None:
        """A record that is not a request: logged, and answered FAILED when it can be."""
        logger.error("Malformed request: %s", delivery.problem)
        event = delivery.answerable
        if event is None:
            return
        reason = shorten(f"Malformed request: {delivery.problem}", REASON_LIMIT)
        physical_id = event.get("PhysicalResourceId")
        body = {
            "Status": "FAILED",
            "Reason": reason,
            "PhysicalResourceId": physical_id
            if isinstance(physical_id, str) and physical_id
            else f"malformed-{event['RequestId']}"[:200],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {},
            "NoEcho": False,
        }
        try:
            crhelper_utils._send_response(event["ResponseURL"], body)  # type: ignore[attr-defined]
        except Exception as error:  # noqa: BLE001 - nothing more can reach CloudFormation
            logger.error("Could not answer the malformed request: %s", type(error).__name__)  # noqa: TRY400
        else:
            logger.warning(
                "Answered FAILED to %s (request %s)", body["LogicalResourceId"], body["RequestId"]
            )

    @functools.cached_property
    def settings(self) -> Settings:
        """The environment, checked on first use (a bad one fails each request clearly)."""
        settings = Settings.from_env(self._environ)
        logs.configure(settings.log_level)
        return settings

    @functools.cached_property
    def api(self) -> ConnectorApi:
        """The Qualys client; building it reads no secret (the first call does)."""
        if self._api is not None:
            return self._api
        settings = self.settings
        return QualysClient(
            base_url=settings.qualys_api_url,
            credentials=SecretCredentials(self._secrets, settings.credentials_secret_id),
            api_version=settings.qualys_api_version,
            retry=self._retry,
        )

    @functools.cached_property
    def lifecycle(self) -> Lifecycle:
        """Both resource types over the Qualys client."""
        return self._lifecycle(self.api)

    @functools.cached_property
    def queued_lifecycle(self) -> Lifecycle:
        """The same, for queued requests: a throttled call waits at most ``queue_patience``,
        then the request goes back to its queue instead of holding a Qualys slot."""
        api = self.api
        if isinstance(api, QualysClient):
            api = api.with_retry(
                dataclasses.replace(self._retry, throttle_patience=self._queue_patience)
            )
        return self._lifecycle(api)

    def _lifecycle(self, api: ConnectorApi) -> Lifecycle:
        return Lifecycle(
            api,
            fallback_qualys_account_id=self.settings.qualys_aws_account_id,
            activation=self._activation,
            lookup_reserve=self._lookup_reserve,
        )

    @functools.cached_property
    def helper(self) -> _CfnResource:
        """crhelper, built on the first event."""

        def run(event: Mapping[str, Any], context: Any) -> str:
            return self.answer(helper, event, context)

        helper = _CfnResource(run, sleep_on_delete=self._sleep_on_delete)
        logs.configure(logging.INFO)
        return helper

    def notifier(self, deadline: Deadline) -> Notifier:
        """Slack, when configured; a failure to set it up is logged and retried next time."""
        if self._notifier is not None:
            return self._notifier
        try:
            secret_id = self.settings.slack_secret_id
            if secret_id is None:
                self._notifier = NullNotifier()
                return self._notifier
            url = read_slack_webhook_url(self._secrets, secret_id, deadline=deadline)
            self._notifier = SlackNotifier(url, timeout=self._slack_timeout)
        except ProviderError as error:
            logger.warning("Slack notifications are off for this request: %s", error)
            return NullNotifier()
        return self._notifier

    def answer(self, helper: _CfnResource, event: Mapping[str, Any], context: Any) -> str:
        """One request: run it, tell Slack, and hand crhelper the id (or the failure).

        A queued request that Qualys keeps throttling is handed back to its queue instead
        (``helper.deferred``, no answer), while CloudFormation's window leaves room for
        another try; after that it fails, saying Qualys was too busy.
        """
        request = Request.from_event(event)
        logger.info(
            "%s %s %s (request %s)",
            request.request_type,
            request.resource_type,
            request.logical_resource_id,
            request.request_id,
        )
        queued = self._queued
        seconds = context.get_remaining_time_in_millis() / 1000.0 - self._safety_margin
        window_ends = queued.window_ends if queued is not None else None
        if window_ends is not None:
            seconds = min(seconds, window_ends - self._window_margin - time.time())
        deadline = Deadline.after(max(seconds, 0.0))
        lifecycle = self.lifecycle if queued is None else self.queued_lifecycle

        try:
            result = lifecycle.handle(request, deadline)
        except QualysThrottledError as error:
            if queued is None:
                return self._fail(helper, request, error, deadline)
            wait = self._requeue_wait(error, queued)
            if wait is not None:
                helper.deferred = wait
                return request.physical_resource_id or "requeued"
            busy = QualysThrottledError(
                f"Qualys stayed too busy for this request within CloudFormation's"
                f" {queued.service_timeout}s window: {error}"
            ).concerning(
                physical_resource_id=error.physical_resource_id,
                connector_name=error.connector_name,
            )
            return self._fail(helper, request, busy, deadline)
        except ProviderError as error:
            return self._fail(helper, request, error, deadline)
        except Exception:
            logger.exception("Unexpected error in %s", request.request_type)
            reason = shorten(
                f"Internal error in the provider: see its log for request {request.request_id}",
                REASON_LIMIT,
            )
            self._notify(_failure(request, reason, request.physical_resource_id, None), deadline)
            raise ProviderError(reason) from None

        helper.Data.update(result.data)
        if result.quiet:
            return result.physical_resource_id
        self._notify(
            Notification(
                outcome=result.outcome,
                stack_id=request.stack_id,
                request_type=request.request_type,
                logical_resource_id=request.logical_resource_id,
                connector_name=result.connector_name or request.connector_name,
                connector_id=result.connector_id,
                state=result.state,
                reason=result.note,
                warning=result.warning,
            ),
            deadline,
        )
        return result.physical_resource_id

    def _fail(
        self, helper: _CfnResource, request: Request, error: ProviderError, deadline: Deadline
    ) -> str:
        """Answer FAILED with the error's reason, and with the resource's real id when the
        failure came after the resource came to exist."""
        reason = shorten(str(error), REASON_LIMIT)
        logger.error("%s failed: %s", request.request_type, reason)
        physical_id = error.physical_resource_id
        self._notify(
            _failure(
                request, reason, physical_id or request.physical_resource_id, error.connector_name
            ),
            deadline,
        )
        if physical_id is not None:
            # Failed after the resource came to exist: answer with its real id, so the
            # rollback Delete finds it (raising would make crhelper invent one).
            helper.Status, helper.Reason = "FAILED", reason
            return physical_id
        raise ProviderError(reason) from None

    def _requeue_wait(self, error: QualysThrottledError, queued: Delivery) -> float | None:
        """How long a throttled queued request stays in its queue: what Qualys asked for,
        and at least a jittered wait that doubles with each receive; None when the wait and
        another try no longer fit CloudFormation's window."""
        assert queued.queue is not None
        assert queued.window_ends is not None
        floor = requeue_backoff(queued.queue.receive_count)
        wait = max(error.retry_after or 0.0, random.uniform(floor, floor * 1.5))  # noqa: S311
        left = queued.window_ends - self._window_margin - time.time()
        if wait + self._requeue_min_work > left:
            return None
        return wait

    def _notify(self, notification: Notification, deadline: Deadline) -> None:
        try:
            self.notifier(deadline).notify(notification)
        except Exception:  # noqa: BLE001 - Slack must never change the outcome
            logger.warning("Slack notification failed unexpectedly", exc_info=False)


def _failure(
    request: Request, reason: str, physical_id: str | None, name: str | None
) -> Notification:
    return Notification(
        outcome=Outcome.FAILED,
        stack_id=request.stack_id,
        request_type=request.request_type,
        logical_resource_id=request.logical_resource_id,
        connector_name=name or request.connector_name,
        connector_id=physical_id,
        reason=reason,
    )


def _sqs_client(region: str) -> Any:
    """The SQS client of the queue's region, built when a request first goes back."""
    import boto3  # noqa: PLC0415 - only a queued request that is requeued needs it

    return boto3.client("sqs", region_name=region)


@functools.cache
def _container() -> Container:
    return Container(os.environ)


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any] | None:
    """CloudFormation's custom resource events for both resource types arrive here,
    directly or through SNS or SQS; for SQS the answer names the records to deliver again."""
    return _container()(event, context)


def new_container() -> None:
    """Forget everything built so far, as a fresh Lambda container would (sandbox, bench)."""
    _container.cache_clear()
