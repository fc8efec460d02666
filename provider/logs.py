"""Where the provider's logging is configured: levels, and secrets redacted from HTTP logs."""

from __future__ import annotations

import logging
import threading
from typing import Final

REDACTED: Final = "<redacted webhook path>"
# urllib3 logs each request's path at DEBUG (and retries at WARNING); a webhook path is the
# secret part of its URL, so records from these loggers are redacted before any handler
# sees them.
_HTTP_LOGGERS: Final = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "requests",
)


def configure(level: int) -> None:
    """The provider logs at ``level``; crhelper at INFO at most, never DEBUG (at DEBUG it logs
    whole events and the presigned ResponseURL)."""
    logging.getLogger("provider").setLevel(level)
    logging.getLogger("crhelper").setLevel(max(level, logging.INFO))


class _RedactingFilter(logging.Filter):
    """Replaces registered secrets in log records with a placeholder."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._installed = False

    def add(self, secret: str) -> None:
        with self._lock:
            if secret and secret not in self._secrets:
                # Longest first, so a URL is replaced before its own path is.
                self._secrets = tuple(sorted({*self._secrets, secret}, key=len, reverse=True))
            if not self._installed:
                for name in _HTTP_LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._installed = True

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
            redacted = redacted.replace(secret, REDACTED)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_REDACTOR: Final = _RedactingFilter()


def protect_from_http_logs(*secrets: str) -> None:
    """Redact each of ``secrets`` from every record the HTTP libraries log, from now on."""
    for secret in secrets:
        if len(secret) > 1:  # a bare "/" path is no secret, and redacting it would garble logs
            _REDACTOR.add(secret)
