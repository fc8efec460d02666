"""Shortening text for reasons, log lines and messages: one rule, front kept."""

from __future__ import annotations

from typing import Final

ELLIPSIS: Final = "…"


def shorten(text: str | None, limit: int, *, empty: str = "") -> str:
    """``text`` on one line, at most ``limit`` characters, cut at the end with an ellipsis.

    Whitespace runs (newlines too) become single spaces, so a multi-line message from
    Qualys reads as one line; ``empty`` stands in for text that is absent or blank.
    """
    one_line = " ".join((text or "").split())
    if not one_line:
        return empty
    if len(one_line) <= limit:
        return one_line
    return one_line[: limit - len(ELLIPSIS)] + ELLIPSIS
