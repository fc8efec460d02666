"""The Slack notifier: the only code that posts to a webhook, best effort and never raising.

The webhook URL is a secret (whoever holds it can post to the channel), so it never appears
in a log record, an error, a ``repr`` or an exception message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import requests

from provider.logs import REDACTED, protect_from_http_logs
from provider.slack.message import Notification, build_message
from provider.transport import never_sent
from provider.urls import check_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackResult:
    """What became of one notification; ``error`` is short and never contains the webhook URL."""

    ok: bool
    status: int | None
    error: str | None


class Notifier(Protocol):
    """Anything that can report an outcome; lifecycle code depends on this, not on Slack."""

    def notify(self, notification: Notification) -> SlackResult:
        """Post the notification; never raises."""
        ...


class NullNotifier:
    """The notifier when no Slack webhook is configured (``SLACK_WEBHOOK_SECRET_ID`` unset).

    It sends nothing and answers ``SlackResult(ok=False, status=None, error="disabled")``:
    ``ok`` means "a message was posted", which did not happen. Callers need not treat it as
    a failure; it is logged at DEBUG only.
    """

    def notify(self, notification: Notification) -> SlackResult:
        """Do nothing; report that notifications are disabled."""
        logger.debug(
            "Slack notifications are disabled; not reporting %s", notification.outcome.value
        )
        return SlackResult(ok=False, status=None, error="disabled")

    def __repr__(self) -> str:
        return "NullNotifier()"


def _failure(error: str) -> SlackResult:
    return SlackResult(ok=False, status=None, error=error)


def _safe_to_repeat(error: requests.ConnectionError) -> bool:
    """A connection that could not be opened at all, and quickly: a connect timeout has
    already spent the notification's time budget."""
    return not isinstance(error, requests.Timeout) and never_sent(error)


class SlackNotifier:
    """Posts notifications to one Slack incoming webhook, best effort.

    One POST per notification with a short timeout; a connection that could not be opened
    at all is tried once more after a short pause (nothing was sent, so no duplicate is
    possible). Failures are logged as warnings naming the outcome, the HTTP status or the
    exception class, never the URL and never an exception's text (requests puts the URL
    in it).
    """

    _RETRY_PAUSE: Final = 0.2

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 3.0,
        session: requests.Session | None = None,
    ) -> None:
        check_url(webhook_url, what="Slack webhook URL")
        self._host = urlsplit(webhook_url).hostname or ""
        if not timeout > 0:
            raise ValueError("Slack timeout must be a positive number of seconds")
        self._url = webhook_url
        self._timeout = timeout
        self._session = session if session is not None else requests.Session()
        parts = urlsplit(webhook_url)
        protect_from_http_logs(
            webhook_url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path
        )

    def __repr__(self) -> str:
        return f"SlackNotifier(host={self._host!r}, timeout={self._timeout!r})"

    def notify(self, notification: Notification) -> SlackResult:
        """Post the notification's message; never raises, whatever happens."""
        outcome = notification.outcome.value
        try:
            result = self._post(build_message(notification))
        except Exception as error:  # noqa: BLE001 - a notification must never fail the resource
            result = _failure(f"error ({type(error).__name__})")
        if result.ok:
            logger.info("Slack notification sent (outcome %s)", outcome)
        else:
            logger.warning(
                "Slack notification (outcome %s) failed: %s; the resource outcome stands",
                outcome,
                result.error,
            )
        return result

    def _post(self, payload: dict[str, Any]) -> SlackResult:
        result, repeatable = self._attempt(payload)
        if repeatable:
            time.sleep(self._RETRY_PAUSE)
            result, _ = self._attempt(payload)
        return result

    def _attempt(self, payload: dict[str, Any]) -> tuple[SlackResult, bool]:
        """One POST: its result, and whether it failed before anything was sent."""
        try:
            response = self._session.post(
                self._url,
                json=payload,
                timeout=(self._timeout, self._timeout),
                # Slack never redirects a webhook; following one would send the message
                # somewhere else.
                allow_redirects=False,
            )
        except requests.Timeout as error:
            return _failure(f"timeout ({type(error).__name__})"), False
        except requests.ConnectionError as error:
            return _failure(f"connection failed ({type(error).__name__})"), _safe_to_repeat(error)
        except requests.RequestException as error:
            return _failure(f"request failed ({type(error).__name__})"), False
        return self._result(response), False

    def _result(self, response: requests.Response) -> SlackResult:
        with response:
            status = response.status_code
            body = response.text.strip() if response.content else ""
        if status == 200:
            return SlackResult(ok=True, status=status, error=None)
        # Slack answers errors with one word (invalid_payload, no_service, ...); anything
        # else is cut short and scrubbed, in case a proxy echoed the request line.
        detail = " ".join(body.split())[:100]
        for secret in (self._url, urlsplit(self._url).path):
            detail = detail.replace(secret, REDACTED)
        return SlackResult(
            ok=False, status=status, error=f"HTTP {status}" + (f": {detail}" if detail else "")
        )
