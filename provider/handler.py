"""The Lambda entry point: wires crhelper to the two resource types.

crhelper owns the CloudFormation protocol (it sends exactly one response per event); this
module only builds the per-container dependencies, lazily, and turns each request into a
call to ``resources``. Importing it creates no boto3 client and reads no secret.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from crhelper import CfnResource

from provider.config import Settings
from provider.credentials import SecretStore, read_qualys_credentials, read_slack_webhook_url
from provider.deadline import Deadline
from provider.errors import ProviderError, ResourceFailedError
from provider.qualys.client import QualysClient
from provider.qualys.errors import QualysAuthenticationError
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges, Criterion
from provider.resources import (
    ACTIVATION_TYPE,
    CONNECTOR_TYPE,
    ActivationResource,
    ConnectorResource,
    Request,
    Result,
)
from provider.slack import Notification, Notifier, NullNotifier, Outcome, SlackNotifier

logger = logging.getLogger(__name__)

SLEEP_ON_DELETE = 5
"""Seconds crhelper waits before answering a Delete, so its logs reach CloudWatch first."""
SAFETY_MARGIN = 10.0
"""Seconds kept back from the Lambda deadline to notify Slack and send the answer (crhelper
answers "Execution timed out" with an empty id 0.5 s before the deadline: never let it)."""
REASON_LIMIT = 199
SLACK_TIMEOUT = 3.0


class Container:
    """What one Lambda container builds once and keeps: settings, secrets, clients."""

    def __init__(self, environ: Mapping[str, str], secrets: SecretStore | None = None) -> None:
        self._environ = environ
        self._secrets = secrets or SecretStore()
        self._client: QualysClient | None = None
        self._notifier: Notifier | None = None

    @functools.cached_property
    def settings(self) -> Settings:
        """The environment, checked on first use (a bad one fails each request clearly)."""
        settings = Settings.from_env(self._environ)
        logging.getLogger("provider").setLevel(settings.log_level)
        return settings

    def client(self) -> QualysClient:
        """The Qualys client, built with the credentials on first use."""
        if self._client is None:
            settings = self.settings
            credentials = read_qualys_credentials(self._secrets, settings.credentials_secret_id)
            self._client = QualysClient(
                base_url=settings.qualys_api_url,
                username=credentials.username,
                password=credentials.password,
                api_version=settings.qualys_api_version,
            )
        return self._client

    def forget_credentials(self) -> None:
        """After Qualys refused them: read the secret again on the next request."""
        if self._client is not None:
            self._client.close()
        self._client = None
        self._secrets.forget(self.settings.credentials_secret_id)

    def notifier(self) -> Notifier:
        """Slack, when configured; a failure to set it up is logged and retried next time."""
        if self._notifier is not None:
            return self._notifier
        try:
            secret_id = self.settings.slack_secret_id
            if secret_id is None:
                self._notifier = NullNotifier()
                return self._notifier
            url = read_slack_webhook_url(self._secrets, secret_id)
            self._notifier = SlackNotifier(url, timeout=SLACK_TIMEOUT)
        except ProviderError as error:
            logger.warning("Slack notifications are off for this request: %s", error)
            return NullNotifier()
        return self._notifier


class _LazyApi:
    """The Qualys client, built only when a request gets as far as calling Qualys, so
    that bad properties fail without reading a secret or reaching Qualys."""

    def __init__(self, container: Container) -> None:
        self._container = container

    @property
    def api_version(self) -> ApiVersion:
        return self._container.settings.qualys_api_version

    def create(self, changes: ConnectorChanges, *, deadline: Deadline) -> Connector:
        return self._container.client().create(changes, deadline=deadline)

    def get(self, connector_id: int, *, deadline: Deadline) -> Connector:
        return self._container.client().get(connector_id, deadline=deadline)

    def search(
        self, criteria: Sequence[Criterion], *, deadline: Deadline, page_size: int = 100
    ) -> list[Connector]:
        return self._container.client().search(criteria, deadline=deadline, page_size=page_size)

    def update(self, connector_id: int, changes: ConnectorChanges, *, deadline: Deadline) -> None:
        self._container.client().update(connector_id, changes, deadline=deadline)

    def delete(self, connector_id: int, *, deadline: Deadline) -> None:
        self._container.client().delete(connector_id, deadline=deadline)


def _dispatch(container: Container, request: Request, deadline: Deadline) -> Result:
    api = _LazyApi(container)
    kind, action = request.resource_type, request.request_type
    if kind == CONNECTOR_TYPE:
        connector = ConnectorResource(
            api, fallback_qualys_account_id=container.settings.qualys_aws_account_id
        )
        handlers = {"Create": connector.create, "Update": connector.update}
        return handlers.get(action, connector.delete)(request, deadline)
    if kind == ACTIVATION_TYPE:
        activation = ActivationResource(api)
        return (activation.delete if action == "Delete" else activation.apply)(request, deadline)
    if action == "Delete":
        logger.warning("Delete of unsupported ResourceType %r: nothing to do", kind)
        return Result(request.physical_resource_id or "none", Outcome.DELETED)
    raise ProviderError(
        f"Unsupported ResourceType {kind[:60]!r}: use {CONNECTOR_TYPE} or {ACTIVATION_TYPE}"
    )


def _short(reason: str) -> str:
    """Reasons stay under 200 characters, front kept (crhelper would keep the tail)."""
    reason = " ".join(reason.split())
    return reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…"


def _notify(container: Container, notification: Notification) -> None:
    try:
        container.notifier().notify(notification)
    except Exception:  # noqa: BLE001 - Slack must never change the outcome
        logger.warning("Slack notification failed unexpectedly", exc_info=False)


def handle(
    helper: CfnResource, container: Container, event: Mapping[str, Any], context: Any
) -> str:
    """One request: run it, tell Slack, and hand crhelper the id (or the failure)."""
    request = Request.from_event(event)
    logger.info(
        "%s %s %s (request %s)",
        request.request_type,
        request.resource_type,
        request.logical_resource_id,
        request.request_id,
    )
    seconds = context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN
    deadline = Deadline.after(max(seconds, 0.0))

    def failed(reason: str, physical_id: str | None, name: str | None = None) -> Notification:
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
        result = _dispatch(container, request, deadline)
    except ProviderError as error:
        if isinstance(error, QualysAuthenticationError):
            container.forget_credentials()
        reason = _short(str(error))
        logger.error("%s failed: %s", request.request_type, reason)  # noqa: TRY400 - expected
        if isinstance(error, ResourceFailedError):
            _notify(container, failed(reason, error.physical_resource_id, error.connector_name))
            helper.Status, helper.Reason = "FAILED", reason
            return error.physical_resource_id
        _notify(container, failed(reason, request.physical_resource_id))
        raise ProviderError(reason) from None
    except Exception:
        logger.exception("Unexpected error in %s", request.request_type)
        reason = f"Internal error in the provider: see its log for request {request.request_id}"
        _notify(container, failed(_short(reason), request.physical_resource_id))
        raise ProviderError(_short(reason)) from None

    helper.Data.update(result.data)
    _notify(
        container,
        Notification(
            outcome=result.outcome,
            stack_id=request.stack_id,
            request_type=request.request_type,
            logical_resource_id=request.logical_resource_id,
            connector_name=result.connector_name or request.connector_name,
            connector_id=result.connector_id,
            state=result.state,
            reason=result.note,
        ),
    )
    return result.physical_resource_id


@functools.cache
def _container() -> Container:
    return Container(os.environ)


@functools.cache
def _helper() -> CfnResource:
    # crhelper builds boto3 clients in its constructor: build it on the first event only.
    # INFO, never DEBUG: at DEBUG crhelper logs whole events and the presigned ResponseURL.
    helper = CfnResource(
        json_logging=False, log_level="INFO", boto_level="ERROR", sleep_on_delete=SLEEP_ON_DELETE
    )
    logging.getLogger("crhelper").setLevel(logging.INFO)

    def run(event: Mapping[str, Any], context: Any) -> str:
        return handle(helper, _container(), event, context)

    helper.create(run)
    helper.update(run)
    helper.delete(run)
    return helper


def lambda_handler(event: Mapping[str, Any], context: Any) -> None:
    """CloudFormation's custom resource events for both resource types arrive here."""
    _helper()(event, context)


def new_container() -> None:
    """Forget everything built so far, as a fresh Lambda container would (tests, sandbox)."""
    _container.cache_clear()
    _helper.cache_clear()
