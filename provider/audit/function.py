"""The scheduled audit (``provider.audit.lambda_handler``): the same audit as the CLI, and
one Slack digest when anything is off.

Accounts come from AWS Organizations, or, where it is not readable from the function's
account, from the JSON object that ``AUDIT_ACCOUNTS_S3_URI`` names (``s3://bucket/key``,
the CLI's ``--accounts`` format). Nothing is posted when everything is ok, unless
``AUDIT_ALL_CLEAR`` is ``true``. When the audit cannot run, a short digest says so and the
function returns the reason (it does not raise: an asynchronous retry would post twice).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from provider import logs
from provider.audit import report
from provider.audit.accounts import Organizations, read_s3_accounts
from provider.audit.classify import Account
from provider.audit.fleet import qualys_client, run_audit
from provider.config import SLACK_WEBHOOK_SECRET_ID, Settings
from provider.credentials import SecretStore, read_slack_webhook_url
from provider.deadline import Deadline
from provider.errors import ProviderError
from provider.qualys.client import RetryPolicy
from provider.slack.notifier import SlackNotifier, SlackResult

logger = logging.getLogger(__name__)

AUDIT_ACCOUNTS_S3_URI: Final = "AUDIT_ACCOUNTS_S3_URI"
AUDIT_ALL_CLEAR: Final = "AUDIT_ALL_CLEAR"
SAFETY_MARGIN: Final = 10.0
"""Seconds kept back from the Lambda deadline to post the digest."""
SLACK_TIMEOUT: Final = 5.0


def _default_s3_client() -> Any:
    import boto3  # noqa: PLC0415 - built on first use, never at import time

    return boto3.client("s3")


class DigestNotifier(SlackNotifier):
    """The project's Slack notifier, posting a ready-made payload (the digest) instead of
    a connector outcome: the same URL checks, timeout, retry and redaction."""

    def post(self, payload: dict[str, Any]) -> SlackResult:
        """Post ``payload``; never raises."""
        try:
            result = self._post(payload)
        except Exception as error:  # noqa: BLE001 - Slack is best effort
            result = SlackResult(ok=False, status=None, error=f"error ({type(error).__name__})")
        if result.ok:
            logger.info("Slack audit digest sent")
        else:
            logger.warning("Slack audit digest failed: %s", result.error)
        return result


class AuditFunction:
    """One Lambda container's audit: settings and clients built on first use."""

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        secrets: SecretStore | None = None,
        organizations: Any = None,
        s3_client_factory: Callable[[], Any] = _default_s3_client,
        retry: RetryPolicy | None = None,
        safety_margin: float = SAFETY_MARGIN,
        slack_timeout: float = SLACK_TIMEOUT,
    ) -> None:
        self._environ = environ
        self._secrets = secrets or SecretStore()
        self._organizations = organizations
        self._s3_client_factory = s3_client_factory
        self._retry = retry
        self._safety_margin = safety_margin
        self._slack_timeout = slack_timeout

    def __call__(
        self,
        event: Mapping[str, Any],  # noqa: ARG002 - a schedule's event holds nothing to read
        context: Any,
    ) -> dict[str, Any]:
        """Run the audit and post the digest; the answer says what was found and posted."""
        seconds = context.get_remaining_time_in_millis() / 1000.0 - self._safety_margin
        deadline = Deadline.after(max(seconds, 0.0))
        try:
            settings = Settings.from_env(self._environ)
            logs.configure(settings.log_level)
            accounts = self._accounts()
            client = qualys_client(settings, self._secrets, retry=self._retry)
            try:
                audit = run_audit(client, accounts, scope=None, deadline=deadline)
            finally:
                client.close()
        except ProviderError as error:
            return self._failed(str(error), deadline)
        except Exception as error:
            # Raising would make Lambda run the schedule's event again (and post again).
            logger.exception("Audit failed unexpectedly")
            return self._failed(f"unexpected {type(error).__name__}", deadline)

        line = report.summary_line(audit)
        logger.info("%s", line)
        all_clear = self._environ.get(AUDIT_ALL_CLEAR, "").strip().lower() == "true"
        posted = False
        if not audit.all_ok or all_clear:
            posted = self._post(report.digest(audit), deadline)
        return {
            "status": "ok" if audit.all_ok else "not ok",
            "summary": audit.summary(),
            "posted": posted,
        }

    def _failed(self, reason: str, deadline: Deadline) -> dict[str, Any]:
        logger.error("Audit could not run: %s", reason)
        posted = self._post(report.failure_digest(reason), deadline)
        return {"status": "failed", "reason": reason, "posted": posted}

    def _accounts(self) -> list[Account]:
        uri = self._environ.get(AUDIT_ACCOUNTS_S3_URI, "").strip()
        if uri:
            return read_s3_accounts(uri, self._s3_client_factory())
        return Organizations(self._organizations).accounts()

    def _post(self, payload: dict[str, Any], deadline: Deadline) -> bool:
        secret_id = self._environ.get(SLACK_WEBHOOK_SECRET_ID, "").strip()
        if not secret_id:
            logger.warning("%s is not set: the audit digest is not posted", SLACK_WEBHOOK_SECRET_ID)
            return False
        try:
            url = read_slack_webhook_url(self._secrets, secret_id, deadline=deadline)
            notifier = DigestNotifier(url, timeout=self._slack_timeout)
        except (ProviderError, ValueError) as error:
            logger.warning("The audit digest is not posted: %s", error)
            return False
        return notifier.post(payload).ok


@functools.cache
def _function() -> AuditFunction:
    return AuditFunction(os.environ)


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled audit's entry point (an EventBridge schedule's event is not read)."""
    return _function()(event, context)
