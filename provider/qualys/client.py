"""The only code that speaks HTTP to Qualys: one session, bounded waits, mapped errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from provider.deadline import Deadline
from provider.qualys import codec
from provider.qualys.auth import Credentials
from provider.qualys.errors import (
    QualysAuthenticationError,
    QualysError,
    QualysForbiddenError,
    QualysInvalidRequestError,
    QualysNotFoundError,
    QualysResponseError,
    QualysThrottledError,
    QualysTimeoutError,
    QualysUnavailableError,
)
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges, Criterion, Operator
from provider.text import shorten
from provider.transport import never_sent
from provider.urls import check_url

logger = logging.getLogger(__name__)

_RESOURCE = "am/awsassetdataconnector"
_THROTTLE_STATUSES = frozenset({409, 429})
_MESSAGE_CHARS = 120
"""How much of Qualys's own errorMessage goes into an error (reasons stay short)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How the client waits: backoff for transient failures, limits for throttling."""

    attempts: int = 4
    """Tries of an idempotent call (get, search) that meets a transient failure."""
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_throttle_wait: float = 60.0
    """The longest single wait for a rate limit; a longer ToWait fails at once."""
    throttle_waits: int = 20
    """How many throttled answers one call waits out before giving up."""
    min_call_time: float = 2.0
    """Time a call needs at least; a wait never leaves less than this before the deadline."""

    def backoff(self, attempt: int) -> float:
        """Seconds before try ``attempt + 1``: exponential with equal jitter."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


def _header_seconds(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds)


def _excerpt(message: str | None) -> str:
    text = shorten(message, _MESSAGE_CHARS)
    return f": {text}" if text else ""


class QualysClient:
    """Create, read, search, update, delete and run AWS connectors.

    Every call takes a ``Deadline``: no HTTP timeout and no wait reaches past it. Reads are
    retried on transient failures; writes are sent again only when they certainly did not
    reach Qualys (refused connection, throttled answer). A write whose outcome is unknown
    raises ``QualysTimeoutError`` or ``QualysUnavailableError``: look the connector up.
    """

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Credentials,
        api_version: ApiVersion = ApiVersion.V3,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base_url = check_url(base_url, what="QUALYS_API_URL")
        self.api_version = api_version
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._credentials = credentials
        self._session = session or requests.Session()
        # Retries are this class's business: urllib3 must not resend a write on its own.
        self._session.mount("https://", HTTPAdapter(max_retries=0))
        self._session.mount("http://", HTTPAdapter(max_retries=0))
        self._session.verify = True
        self._session.headers.update(
            {
                "X-Requested-With": "qualys-connector-provider",
                "Content-Type": "text/xml",
                "Accept": "application/xml",
            }
        )

    def __repr__(self) -> str:
        return f"QualysClient(base_url={self._base_url!r}, api_version={self.api_version.value})"

    def close(self) -> None:
        """Release the connection pool."""
        self._session.close()

    # --- operations -------------------------------------------------------------------

    def create(self, changes: ConnectorChanges, *, deadline: Deadline) -> Connector:
        """Create a connector; returns it as Qualys reports it (with its id)."""
        body = codec.create_request(changes, self.api_version)
        response = self._call("create", "POST", None, body, deadline=deadline, idempotent=False)
        return self._single(response, "create")

    def get(self, connector_id: int, *, deadline: Deadline) -> Connector:
        """Read one connector; ``QualysNotFoundError`` when it does not exist."""
        response = self._call("get", "GET", connector_id, None, deadline=deadline, idempotent=True)
        connector = self._single(response, "get")
        if connector.id != connector_id:
            # Acting on another connector's answer would delete, or spare, the wrong one.
            raise QualysResponseError(
                f"Qualys answered get of connector {connector_id} with connector {connector.id}"
            )
        return connector

    def search(
        self, criteria: Sequence[Criterion], *, deadline: Deadline, page_size: int = 100
    ) -> list[Connector]:
        """Every connector matching all ``criteria``, following pages until the last."""
        found: list[Connector] = []
        page_criteria = list(criteria)
        while True:
            body = codec.search_request(page_criteria, limit=page_size)
            response = self._call("search", "POST", None, body, deadline=deadline, idempotent=True)
            found.extend(response.connectors)
            if not response.has_more_records:
                return found
            last_id = response.last_id or (found[-1].id if found else None)
            if last_id is None:
                raise QualysResponseError("Qualys said more records follow but gave no lastId")
            page_criteria = [*criteria, Criterion("id", Operator.GREATER, str(last_id))]

    def update(self, connector_id: int, changes: ConnectorChanges, *, deadline: Deadline) -> None:
        """Change the given fields of one connector (Qualys echoes only its id)."""
        body = codec.update_request(changes, self.api_version)
        self._call("update", "POST", connector_id, body, deadline=deadline, idempotent=True)

    def delete(self, connector_id: int, *, deadline: Deadline) -> None:
        """Delete one connector; ``QualysNotFoundError`` when it is already gone."""
        self._call("delete", "POST", connector_id, None, deadline=deadline, idempotent=False)

    def run(self, connector_id: int, *, deadline: Deadline) -> None:
        """Start a scan by the connector now (it must be enabled)."""
        self._call("run", "POST", connector_id, None, deadline=deadline, idempotent=False)

    # --- transport --------------------------------------------------------------------

    def _url(self, operation: str, connector_id: int | None) -> str:
        url = f"{self._base_url}/qps/rest/{self.api_version.value}/{operation}/{_RESOURCE}"
        return url if connector_id is None else f"{url}/{connector_id}"

    @staticmethod
    def _single(response: codec.ServiceResponse, operation: str) -> Connector:
        if not response.connectors:
            raise QualysResponseError(f"Qualys answered {operation} without a connector")
        return response.connectors[0]

    def _call(
        self,
        operation: str,
        method: str,
        connector_id: int | None,
        body: bytes | None,
        *,
        deadline: Deadline,
        idempotent: bool,
    ) -> codec.ServiceResponse:
        url = self._url(operation, connector_id)
        failures = 0
        throttled = 0
        while True:
            remaining = deadline.remaining()
            if remaining < 1.0:
                raise QualysTimeoutError(f"No time left to call Qualys {operation}")
            timeout = (min(self._connect_timeout, remaining), min(self._read_timeout, remaining))
            started = time.monotonic()
            try:
                http = self._session.request(
                    method,
                    url,
                    data=body,
                    timeout=timeout,
                    allow_redirects=False,
                    auth=self._credentials.auth(deadline),
                )
            except requests.RequestException as error:
                failures += 1
                retry = idempotent or never_sent(error)
                self._log_failure(operation, type(error).__name__, failures, retry=retry)
                if retry and self._may_retry(failures, deadline):
                    continue
                raise self._transport_error(operation, error) from None
            logger.debug(
                "Qualys %s %s -> HTTP %s in %.2fs",
                operation,
                connector_id or "",
                http.status_code,
                time.monotonic() - started,
            )

            try:
                return self._check(operation, http)
            except QualysThrottledError:
                throttled += 1
                wait = self._throttle_wait(http.headers, throttled)
                if throttled <= self._retry.throttle_waits and self._can_wait(wait, deadline):
                    logger.info("Qualys %s throttled; waiting %.1fs", operation, wait)
                    self._sleep(wait)
                    continue
                raise
            except (QualysUnavailableError, QualysResponseError) as error:
                failures += 1
                self._log_failure(operation, type(error).__name__, failures, retry=idempotent)
                if idempotent and self._may_retry(failures, deadline):
                    continue
                raise

    def _may_retry(self, failures: int, deadline: Deadline) -> bool:
        if failures >= self._retry.attempts:
            return False
        wait = self._retry.backoff(failures)
        if not self._can_wait(wait, deadline):
            return False
        self._sleep(wait)
        return True

    def _can_wait(self, wait: float, deadline: Deadline) -> bool:
        return wait <= self._retry.max_throttle_wait and deadline.allows(
            wait + self._retry.min_call_time
        )

    def _throttle_wait(self, headers: Mapping[str, str], throttled: int) -> float:
        # Qualys sends ToWait on every answer (often 0); a gateway may add Retry-After.
        hints = [
            seconds
            for name in ("X-RateLimit-ToWait-Sec", "Retry-After")
            if (seconds := _header_seconds(headers, name)) is not None
        ]
        # No hint (a concurrency block, or the first blocked answer): back off.
        wait = max(hints) if hints else self._retry.backoff(throttled)
        return max(wait, 0.1)

    @staticmethod
    def _log_failure(operation: str, kind: str, failures: int, *, retry: bool) -> None:
        logger.warning(
            "Qualys %s failed (%s, attempt %d)%s",
            operation,
            kind,
            failures,
            "; retrying" if retry else "",
        )

    @staticmethod
    def _transport_error(operation: str, error: requests.RequestException) -> QualysError:
        if isinstance(error, requests.Timeout) and not isinstance(error, requests.ConnectTimeout):
            return QualysTimeoutError(f"Qualys did not answer {operation} in time")
        return QualysUnavailableError(f"Qualys could not be reached for {operation}")

    @staticmethod
    def _check(operation: str, http: requests.Response) -> codec.ServiceResponse:
        status = http.status_code
        if status in _THROTTLE_STATUSES:
            raise QualysThrottledError(
                f"Qualys API limit reached on {operation}; try again later", status=status
            )
        if status == 401:
            raise QualysAuthenticationError(
                "Qualys rejected the credentials (HTTP 401): check the credentials secret",
                status=status,
            )
        if status == 403:
            raise QualysForbiddenError(
                "Qualys refused access (HTTP 403): check the user's API and module access",
                status=status,
            )
        if status >= 500:
            raise QualysUnavailableError(
                f"Qualys failed on {operation} (HTTP {status}); try again later", status=status
            )
        if status == 404:
            raise QualysError(
                f"Qualys has no {operation} endpoint here (HTTP 404): check QUALYS_API_URL",
                status=status,
            )
        if status != 200:
            raise QualysInvalidRequestError(
                f"Qualys refused {operation} (HTTP {status})", status=status
            )
        response = codec.parse_response(http.content)
        if response.ok:
            return response
        raise _error_for_code(operation, response)


_CODE_ERRORS: dict[str, tuple[type[QualysError], str]] = {
    "OBJECT_NOT_FOUND": (QualysNotFoundError, "Qualys has no such connector"),
    "INVALID_REQUEST": (QualysInvalidRequestError, "Qualys refused the {op} request"),
    "AUTH_CREDENTIALS_NEEDED": (
        QualysAuthenticationError,
        "Qualys asked for credentials: check the credentials secret",
    ),
    "UNAUTHORIZED": (
        QualysForbiddenError,
        "Qualys user lacks API or connector access: grant it in Qualys",
    ),
    "INSUFFICIENT_PERMISSION": (
        QualysForbiddenError,
        "Qualys user lacks permission for {op}: grant it in Qualys",
    ),
    "LIMIT_EXCEEDED": (QualysThrottledError, "Qualys API limit exceeded on {op}; try later"),
    "OTHER_ERROR": (QualysUnavailableError, "Qualys had an internal error on {op}; try later"),
}


def _error_for_code(operation: str, response: codec.ServiceResponse) -> QualysError:
    """The error for a non-SUCCESS ``responseCode`` (HTTP 200)."""
    code = response.response_code
    kind, text = _CODE_ERRORS.get(code, (QualysError, f"Qualys answered {code} to {{op}}"))
    return kind(
        text.format(op=operation) + _excerpt(response.error_message),
        status=200,
        response_code=code,
        error_message=response.error_message,
    )
