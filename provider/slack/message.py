"""Slack messages of connector outcomes, built as pure data (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from provider.lifecycle.model import Outcome, StackRef
from provider.text import ELLIPSIS

__all__ = [
    "FIELD_TEXT_LIMIT",
    "HEADER_TEXT_LIMIT",
    "OUTCOME_COLOURS",
    "SECTION_TEXT_LIMIT",
    "Notification",
    "Outcome",
    "StackRef",
    "build_message",
    "escape_mrkdwn",
    "fit_mrkdwn",
]

# Slack's Block Kit limits (characters); a payload beyond them is rejected as a whole.
HEADER_TEXT_LIMIT: Final = 150
SECTION_TEXT_LIMIT: Final = 3000
FIELD_TEXT_LIMIT: Final = 2000
# Tighter than Slack's limits, for readability: a field is a narrow column and the fallback
# text is the one line a phone notification shows.
_FIELD_VALUE_LIMIT: Final = 300
_FALLBACK_VALUE_LIMIT: Final = 200
_CONTEXT_VALUE_LIMIT: Final = 1000

_MISSING: Final = "—"  # Slack rejects empty text, so an absent value is shown as a dash

# Slack's mrkdwn treats these three as control characters (links, mentions, entities).
_MRKDWN_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MRKDWN_TABLE: Final = str.maketrans(_MRKDWN_ESCAPES)


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
    warning: str | None = None


def escape_mrkdwn(value: str) -> str:
    """Escape Slack's mrkdwn control characters, so user text can never form a link or mention."""
    return value.translate(_MRKDWN_TABLE)


def fit_mrkdwn(value: str, limit: int) -> str:
    """Escape ``value`` and cut it to at most ``limit`` characters, never inside an entity."""
    escaped = escape_mrkdwn(value)
    if len(escaped) <= limit:
        return escaped
    budget = limit - len(ELLIPSIS)
    pieces: list[str] = []
    size = 0
    for char in value:
        piece = _MRKDWN_ESCAPES.get(char, char)
        if size + len(piece) > budget:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces) + ELLIPSIS


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


def _text_section(label: str, text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": label + fit_mrkdwn(text, SECTION_TEXT_LIMIT - len(label)),
        },
    }


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

    warning = _present(notification.warning)
    if warning is not None:
        blocks.append(_text_section(":warning: *Warning*\n", warning))
    reason = _present(notification.reason)
    if reason is None and outcome is Outcome.FAILED:
        reason = "No reason was given; see the provider function's log."
    if reason is not None:
        blocks.append(_text_section("*Reason*\n", reason))

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
    if warning is not None:
        fallback += f" (warning: {_one_line(warning)})"
    if reason is not None:
        fallback += f": {_one_line(reason)}"

    return {
        "text": fallback,
        "attachments": [
            {"color": OUTCOME_COLOURS[outcome], "fallback": fallback, "blocks": blocks}
        ],
    }
