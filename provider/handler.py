"""The Lambda entry point: wires crhelper to the two resource types.

crhelper owns the CloudFormation protocol (it sends exactly one response per event); this
module only builds the per-container dependencies, lazily, in one ``Container``, and turns
each request into a call to the lifecycle. Importing it creates no boto3 client and reads no
secret.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from crhelper import CfnResource

from provider import logs
from provider.config import Settings
from provider.credentials import SecretCredentials, SecretStore, read_slack_webhook_url
from provider.deadline import Deadline
from provider.errors import ProviderError
from provider.lifecycle import LOOKUP_RESERVE, ActivationPolicy, Lifecycle, Request
from provider.lifecycle.model import REASON_LIMIT, ConnectorApi, Outcome
from provider.qualys.client import QualysClient, RetryPolicy
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


class _CfnResource(CfnResource):  # type: ignore[misc,unused-ignore]  # crhelper is untyped
    """crhelper, passing every RequestType to one function of the provider.

    crhelper looks up a function by RequestType, and answers one it does not know FAILED
    itself, with an empty PhysicalResourceId that CloudFormation rejects. Here the
    provider's routing table refuses it with a reason, and crhelper answers with the
    event's id. The provider never polls (crhelper's poll_* functions).
    """

    def __init__(self, run: Callable[[Mapping[str, Any], Any], str], **options: Any) -> None:
        super().__init__(**options)
        self._run = run

    def _get_func(self) -> Callable[[Mapping[str, Any], Any], str]:
        return self._run

    def _poll_enabled(self) -> bool:
        return False


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
        self._notifier: Notifier | None = None

    def __call__(self, event: Mapping[str, Any], context: Any) -> None:
        """Handle one Lambda invocation, as ``lambda_handler`` does."""
        self.helper(event, context)

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
        return Lifecycle(
            self.api,
            fallback_qualys_account_id=self.settings.qualys_aws_account_id,
            activation=self._activation,
            lookup_reserve=self._lookup_reserve,
        )

    @functools.cached_property
    def helper(self) -> CfnResource:
        """crhelper, built on the first event (its constructor builds boto3 clients)."""
        # INFO, never DEBUG: at DEBUG crhelper logs whole events and the presigned ResponseURL.

        def run(event: Mapping[str, Any], context: Any) -> str:
            return self.answer(helper, event, context)

        helper = _CfnResource(
            run,
            json_logging=False,
            log_level="INFO",
            boto_level="ERROR",
            sleep_on_delete=self._sleep_on_delete,
        )
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

    def answer(self, helper: CfnResource, event: Mapping[str, Any], context: Any) -> str:
        """One request: run it, tell Slack, and hand crhelper the id (or the failure)."""
        request = Request.from_event(event)
        logger.info(
            "%s %s %s (request %s)",
            request.request_type,
            request.resource_type,
            request.logical_resource_id,
            request.request_id,
        )
        seconds = context.get_remaining_time_in_millis() / 1000.0 - self._safety_margin
        deadline = Deadline.after(max(seconds, 0.0))

        def failed(reason: str, physical_id: str | None, name: str | None) -> Notification:
            return Notification(
                outcome=Outcome.FAILED,
                stack_id=request.stack_id,
                request_type=request.request_type,
                logical_resource_id=request.logical_resource_id,
                connector_name=name or request.connector_name,
                connector_id=physical_id,
                reason=reason,
            )

        try:
            result = self.lifecycle.handle(request, deadline)
        except ProviderError as error:
            reason = shorten(str(error), REASON_LIMIT)
            logger.error("%s failed: %s", request.request_type, reason)  # noqa: TRY400 - expected
            physical_id = error.physical_resource_id
            self._notify(
                failed(reason, physical_id or request.physical_resource_id, error.connector_name),
                deadline,
            )
            if physical_id is not None:
                # Failed after the resource came to exist: answer with its real id, so the
                # rollback Delete finds it (raising would make crhelper invent one).
                helper.Status, helper.Reason = "FAILED", reason
                return physical_id
            raise ProviderError(reason) from None
        except Exception:
            logger.exception("Unexpected error in %s", request.request_type)
            reason = shorten(
                f"Internal error in the provider: see its log for request {request.request_id}",
                REASON_LIMIT,
            )
            self._notify(failed(reason, request.physical_resource_id, None), deadline)
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

    def _notify(self, notification: Notification, deadline: Deadline) -> None:
        try:
            self.notifier(deadline).notify(notification)
        except Exception:  # noqa: BLE001 - Slack must never change the outcome
            logger.warning("Slack notification failed unexpectedly", exc_info=False)


@functools.cache
def _container() -> Container:
    return Container(os.environ)


def lambda_handler(event: Mapping[str, Any], context: Any) -> None:
    """CloudFormation's custom resource events for both resource types arrive here."""
    _container()(event, context)


def new_container() -> None:
    """Forget everything built so far, as a fresh Lambda container would (sandbox, bench)."""
    _container.cache_clear()
