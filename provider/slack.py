"""Slack notifications of connector outcomes: the message builder and a best-effort webhook client.

Building the message is pure (``build_message``); ``SlackNotifier.notify`` is the only code
that does I/O, and it never raises: a notification is best effort and must never change the
CloudFormation outcome. The webhook URL is a secret (whoever holds it can post to the
channel), so it never appears in a log record, an error, a ``repr`` or an exception message.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import requests

from provider.transport import never_sent
from provider.urls import check_url

logger = logging.getLogger(__name__)

# Slack's Block Kit limits (characters); a payload beyond them is rejected as a whole.
HEADER_TEXT_LIMIT: Final = 150
SECTION_TEXT_LIMIT: Final = 3000
FIELD_TEXT_LIMIT: Final = 2000
# Tighter than Slack's limits, for readability: a field is a narrow column and the fallback
# text is the one line a phone notification shows.
_FIELD_VALUE_LIMIT: Final = 300
_FALLBACK_VALUE_LIMIT: Final = 200
_CONTEXT_VALUE_LIMIT: Final = 1000

_ELLIPSIS: Final = "…"
_MISSING: Final = "—"  # Slack rejects empty text, so an absent value is shown as a dash
UNKNOWN: Final = "unknown"

# Slack's mrkdwn treats these three as control characters (links, mentions, entities).
_MRKDWN_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MRKDWN_TABLE: Final = str.maketrans(_MRKDWN_ESCAPES)


class Outcome(enum.Enum):
    """What happened to a connector; the value is the word the message uses."""

    CREATED = "created"
    ACTIVATED = "activated"
    UPDATED = "updated"
    DEACTIVATED = "deactivated"
    DELETED = "deleted"
    FAILED = "failed"


# Attachment bar colours: greens for success, blue for a change, amber and grey for a
# connector going away, red for a failure. All different, so a channel reads at a glance.
OUTCOME_COLOURS: Final[dict[Outcome, str]] = {
    Outcome.CREATED: "#2EB67D",
    Outcome.ACTIVATED: "#007A5A",
    Outcome.UPDATED: "#1D9BD1",
    Outcome.DEACTIVATED: "#ECB22E",
    Outcome.DELETED: "#868686",
    Outcome.FAILED: "#E01E5A",
}

_OUTCOME_EMOJI: Final[dict[Outcome, str]] = {
    Outcome.CREATED: ":white_check_mark:",
    Outcome.ACTIVATED: ":large_green_circle:",
    Outcome.UPDATED: ":arrows_counterclockwise:",
    Outcome.DEACTIVATED: ":double_vertical_bar:",
    Outcome.DELETED: ":wastebasket:",
    Outcome.FAILED: ":x:",
}


@dataclass(frozen=True)
class Notification:
    """One outcome of one custom resource request, as the message reports it."""

    outcome: Outcome
    stack_id: str
    request_type: str
    logical_resource_id: str
    connector_name: str | None = None
    connector_id: str | None = None
    state: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StackRef:
    """The parts of a CloudFormation StackId that a reader needs to find the stack."""

    partition: str
    region: str
    account_id: str
    stack_name: str

    @classmethod
    def parse(cls, stack_id: str) -> StackRef:
        """Parse ``arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<guid>``.

        Tolerant on purpose (the StackId only decorates a message): anything that is not a
        CloudFormation stack ARN yields ``unknown`` parts, and an empty part is ``unknown``.
        """
        parts = str(stack_id).split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "cloudformation":
            return cls(partition=UNKNOWN, region=UNKNOWN, account_id=UNKNOWN, stack_name=UNKNOWN)
        _, partition, _, region, account_id, resource = parts
        kind, _, rest = resource.partition("/")
        stack_name = rest.split("/", 1)[0] if kind == "stack" else ""
        return cls(
            partition=partition or UNKNOWN,
            region=region or UNKNOWN,
            account_id=account_id or UNKNOWN,
            stack_name=stack_name or UNKNOWN,
        )


def escape_mrkdwn(value: str) -> str:
    """Escape Slack's mrkdwn control characters, so user text can never form a link or mention."""
    return value.translate(_MRKDWN_TABLE)


def fit_mrkdwn(value: str, limit: int) -> str:
    """Escape ``value`` and cut it to at most ``limit`` characters, never inside an entity."""
    escaped = escape_mrkdwn(value)
    if len(escaped) <= limit:
        return escaped
    budget = limit - len(_ELLIPSIS)
    pieces: list[str] = []
    size = 0
    for char in value:
        piece = _MRKDWN_ESCAPES.get(char, char)
        if size + len(piece) > budget:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces) + _ELLIPSIS


def _present(value: str | None) -> str | None:
    """The value, or None when it is absent or blank (Slack rejects empty text)."""
    if value is None or not value.strip():
        return None
    return value


def _field(label: str, value: str | None) -> dict[str, str]:
    shown = _present(value)
    text = _MISSING if shown is None else fit_mrkdwn(shown, _FIELD_VALUE_LIMIT)
    return {"type": "mrkdwn", "text": f"*{label}*\n{text}"}


def _one_line(value: str | None, limit: int = _FALLBACK_VALUE_LIMIT) -> str:
    shown = _present(value)
    if shown is None:
        return _MISSING
    return fit_mrkdwn(" ".join(shown.split()), limit)


def build_message(notification: Notification) -> dict[str, Any]:
    """The Slack incoming-webhook payload for one notification.

    An attachment carries the outcome's colour and Block Kit blocks: a header, the facts as
    fields (account, region, stack, connector, id, state, request), the reason when there is
    one (always on failure) and a context line with the StackId. Every value is escaped and
    shortened, so the payload stays within Slack's limits whatever the input.
    """
    outcome = notification.outcome
    stack = StackRef.parse(notification.stack_id)
    title = f"Qualys connector {outcome.value}"
    request = f"{notification.request_type} {notification.logical_resource_id}"

    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"{_OUTCOME_EMOJI[outcome]} {title}"[:HEADER_TEXT_LIMIT],
                "emoji": True,
            },
        },
        {
            "type": "section",
            "fields": [
                _field("Account", stack.account_id),
                _field("Region", stack.region),
                _field("Stack", stack.stack_name),
                _field("Connector", notification.connector_name),
                _field("Connector ID", notification.connector_id),
                _field("State", notification.state),
                _field("Request", request),
            ],
        },
    ]

    reason = _present(notification.reason)
    if reason is None and outcome is Outcome.FAILED:
        reason = "No reason was given; see the provider function's log."
    if reason is not None:
        label = "*Reason*\n"
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": label + fit_mrkdwn(reason, SECTION_TEXT_LIMIT - len(label)),
                },
            }
        )

    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Qualys connector provider · Stack ID "
                    + _one_line(notification.stack_id, _CONTEXT_VALUE_LIMIT),
                }
            ],
        }
    )

    fallback = (
        f"{title}: {_one_line(notification.connector_name)}"
        f" ({_one_line(notification.connector_id)})"
        f" in account {_one_line(stack.account_id)}, {_one_line(stack.region)},"
        f" stack {_one_line(stack.stack_name)}"
    )
    if reason is not None:
        fallback += f": {_one_line(reason)}"

    return {
        "text": fallback,
        "attachments": [
            {"color": OUTCOME_COLOURS[outcome], "fallback": fallback, "blocks": blocks}
        ],
    }


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


_REDACTED: Final = "<redacted webhook path>"
# urllib3 logs each request's path at DEBUG (and retries at WARNING); the webhook path is
# the secret part of the URL, so records from these loggers are redacted before any handler
# sees them.
_HTTP_LOGGERS: Final = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "requests",
)


class _RedactingFilter(logging.Filter):
    """Replaces registered secrets in log records with a placeholder."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, secret: str) -> None:
        with self._lock:
            if secret and secret not in self._secrets:
                # Longest first, so a URL is replaced before its own path is.
                self._secrets = tuple(sorted({*self._secrets, secret}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is the logging module's to report
            return True
        redacted = message
        for secret in secrets:
            redacted = redacted.replace(secret, _REDACTED)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_REDACTOR: Final = _RedactingFilter()
_redactor_installed = False
_redactor_lock = threading.Lock()


def _protect_from_http_logs(*secrets: str) -> None:
    global _redactor_installed  # noqa: PLW0603 - installed once per process, on first use
    for secret in secrets:
        if len(secret) > 1:  # a bare "/" path is no secret, and redacting it would garble logs
            _REDACTOR.add(secret)
    with _redactor_lock:
        if not _redactor_installed:
            for name in _HTTP_LOGGERS:
                logging.getLogger(name).addFilter(_REDACTOR)
            _redactor_installed = True


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
        _protect_from_http_logs(
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
            detail = detail.replace(secret, _REDACTED)
        return SlackResult(
            ok=False, status=status, error=f"HTTP {status}" + (f": {detail}" if detail else "")
        )
