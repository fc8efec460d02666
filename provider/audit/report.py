"""What an audit reports: table rows, the summary line, the JSON document and the Slack
digest, all pure data (the CLI renders the rows with rich; the function posts the digest)."""

from __future__ import annotations

from typing import Any, Final

from provider.audit.classify import Account, Audit, Finding, Status
from provider.slack.message import HEADER_TEXT_LIMIT, SECTION_TEXT_LIMIT, fit_mrkdwn
from provider.text import shorten

COLUMNS: Final = ("Account", "Account name", "Connector", "Connector name", "State", "Reason")
TABLE_ORDER: Final = (
    Status.MISSING,
    Status.ORPHANED,
    Status.DUPLICATE,
    Status.UNHEALTHY,
    Status.FOREIGN,
    Status.OK,
)
"""Classes in the order the table groups them: what needs action first."""
_NONE: Final = "—"
_MISSING_REASON: Final = "no connector of this project"

DIGEST_ITEMS: Final = 10
"""Items a digest lists for each class before it counts the rest."""
_DIGEST_LINE_CHARS: Final = 240
_MAX_BLOCKS: Final = 50
"""Slack's limit of blocks in one message (a digest uses at most 8)."""
_COLOURS: Final = {"action": "#E01E5A", "foreign": "#ECB22E", "clear": "#2EB67D"}
_TITLES: Final = {
    Status.ORPHANED: "Orphaned: the account is gone or not ACTIVE",
    Status.MISSING: "Missing: ACTIVE accounts without a connector",
    Status.DUPLICATE: "Duplicate: more than one connector for an account",
    Status.UNHEALTHY: "Unhealthy: ERROR, or never activated (disabled)",
    Status.FOREIGN: "Foreign: no ownership marker (never touched)",
}
_DIGEST_ORDER: Final = (
    Status.ORPHANED,
    Status.MISSING,
    Status.DUPLICATE,
    Status.UNHEALTHY,
    Status.FOREIGN,
)


def _text(value: str | None) -> str:
    return value if value else _NONE


def rows(audit: Audit, status: Status) -> list[tuple[str, ...]]:
    """The table rows of one class, one per connector (per account for ``missing``)."""
    if status is Status.MISSING:
        return [
            (account.id, _text(account.name), _NONE, _NONE, _NONE, _MISSING_REASON)
            for account in audit.missing
        ]
    return [
        (
            _text(f.account),
            _text(audit.account_name(f.account)),
            str(f.connector.id),
            _text(f.connector.name),
            _text(f.connector.state),
            f.detail,
        )
        for f in audit.of(status)
    ]


def summary_line(audit: Audit) -> str:
    """One line: the count of every class, then what was compared."""
    counts = ", ".join(f"{count} {name}" for name, count in audit.summary().items())
    return (
        f"{'All ok' if audit.all_ok else 'Not ok'}: {counts}"
        f" ({len(audit.accounts)} accounts, {len(audit.findings)} connectors)"
    )


def as_json(audit: Audit) -> dict[str, Any]:
    """The design's document: summary, every connector (ok ones too), missing accounts."""
    return {
        "summary": audit.summary(),
        "connectors": [
            {
                "id": f.connector.id,
                "name": f.connector.name,
                "account": f.account,
                "state": f.connector.state,
                "status": f.status.value,
                "detail": f.detail,
            }
            for f in audit.findings
        ],
        "missing": [{"account": a.id, "name": a.name} for a in audit.missing],
    }


# --- Slack -------------------------------------------------------------------------------


def _digest_line(audit: Audit, item: Finding | Account) -> str:
    if isinstance(item, Finding):
        name = audit.account_name(item.account)
        account = f"{item.account} ({name})" if name else (item.account or "unknown account")
        text = f"{item.connector.id} {_text(item.connector.name)} · {account}: {item.detail}"
    else:
        text = f"{item.id} ({_text(item.name)})"
    return "• " + fit_mrkdwn(shorten(text, _DIGEST_LINE_CHARS), _DIGEST_LINE_CHARS)


def _class_section(audit: Audit, status: Status, first: int) -> dict[str, Any] | None:
    items: list[Finding] | list[Account] = (
        list(audit.missing) if status is Status.MISSING else audit.of(status)
    )
    if not items:
        return None
    title = f"*{_TITLES[status]}* ({len(items)})"
    lines = [title]
    size = len(title)
    shown = 0
    for item in items[:first]:
        line = _digest_line(audit, item)
        # Room is kept for the "and N more" line.
        if size + 1 + len(line) > SECTION_TEXT_LIMIT - 40:
            break
        lines.append(line)
        size += 1 + len(line)
        shown += 1
    if shown < len(items):
        lines.append(f"_…and {len(items) - shown} more_")
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}


def digest(audit: Audit, *, first: int = DIGEST_ITEMS) -> dict[str, Any]:
    """The Slack message of one audit: the summary, then the first ``first`` items of each
    class that is not ok, counting the rest; within Block Kit's limits whatever the input."""
    issues = sum(audit.count(status) for status in _DIGEST_ORDER)
    if audit.all_ok:
        title, colour = ":white_check_mark: Qualys connector audit: all clear", _COLOURS["clear"]
    else:
        title = f":mag: Qualys connector audit: {issues} to look at"
        only_foreign = issues == audit.count(Status.FOREIGN)
        colour = _COLOURS["foreign" if only_foreign else "action"]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": title[:HEADER_TEXT_LIMIT], "emoji": True},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{count}"}
                for name, count in audit.summary().items()
            ],
        },
    ]
    for status in _DIGEST_ORDER:
        section = _class_section(audit, status, first)
        if section is not None:
            blocks.append(section)
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Qualys connector provider · fleet audit of {len(audit.accounts)}"
                    f" accounts and {len(audit.findings)} connectors",
                }
            ],
        }
    )
    fallback = summary_line(audit)
    return {
        "text": fallback,
        "attachments": [{"color": colour, "fallback": fallback, "blocks": blocks[:_MAX_BLOCKS]}],
    }


def failure_digest(reason: str) -> dict[str, Any]:
    """The Slack message when the audit could not run."""
    text = f"Qualys connector audit could not run: {shorten(reason, 500)}"
    return {
        "text": text,
        "attachments": [
            {
                "color": _COLOURS["action"],
                "fallback": text,
                "blocks": [
                    {
                        "type": "header",
                        "text": {
                            "type": "plain_text",
                            "text": ":x: Qualys connector audit could not run",
                            "emoji": True,
                        },
                    },
                    {
                        "type": "section",
                        "text": {"type": "mrkdwn", "text": fit_mrkdwn(reason, SECTION_TEXT_LIMIT)},
                    },
                ],
            }
        ],
    }
