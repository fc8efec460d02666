"""Errors of the Qualys client, rooted in the provider's error root."""

from __future__ import annotations

from provider.errors import ProviderError


class QualysError(ProviderError):
    """Root of every failure talking to Qualys.

    Carries what Qualys said (``response_code``, ``error_message``) and the HTTP status, so
    that a caller can decide and a reason can name the cause. Never carries credentials.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        response_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.response_code = response_code
        self.error_message = error_message


class QualysAuthenticationError(QualysError):
    """Qualys rejected the credentials (HTTP 401, or AUTH_CREDENTIALS_NEEDED)."""


class QualysForbiddenError(QualysError):
    """The user may not use this API (HTTP 403, UNAUTHORIZED, INSUFFICIENT_PERMISSION)."""


class QualysNotFoundError(QualysError):
    """The connector does not exist or is outside the user's scope (OBJECT_NOT_FOUND)."""


class QualysInvalidRequestError(QualysError):
    """Qualys refused the request's content (INVALID_REQUEST, HTTP 400)."""


class QualysThrottledError(QualysError):
    """Qualys's rate or concurrency limit held, and waiting it out would pass the deadline.

    ``retry_after`` is the wait Qualys asked for, when it named one (seconds).
    """

    retry_after: float | None = None


class QualysUnavailableError(QualysError):
    """Qualys could not be reached or failed on its side (5xx, OTHER_ERROR, connection)."""


class QualysTimeoutError(QualysUnavailableError):
    """Qualys did not answer in time: the outcome of a write is unknown."""


class QualysResponseError(QualysError):
    """Qualys answered something that is not a readable ServiceResponse."""
