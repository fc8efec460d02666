"""The only code that speaks HTTP to Qualys: one session, bounded waits, mapped errors."""

from __future__ import annotations

import base64
import copy
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError, ReadTimeoutError

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
_CHUNK = 64 * 1024
_THROTTLE_STATUSES = frozenset({409, 429})
_MESSAGE_CHARS = 120
"""How much of Qualys's own errorMessage goes into an error (reasons stay short)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How the client waits: backoff for transient failures, patience for throttling.

    A blocked call (409, 429, LIMIT_EXCEEDED) is tried again until the deadline says stop,
    never after a fixed count: dozens of containers may share Qualys's two slots.
    """

    attempts: int = 4
    """Tries of an idempotent call (get, search) that meets a transient failure."""
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    throttle_base: float = 1.0
    """First wait of a blocked call that Qualys gave no positive hint (a concurrency block,
    ``ToWait: 0``, no header at all): near a second, doubling with jitter."""
    throttle_cap: float = 8.0
    min_call_time: float = 2.0
    """Time a call needs at least; a wait never leaves less than this before the deadline."""
    throttle_patience: float = math.inf
    """Seconds one call may spend waiting out throttling in all. Infinite for a provider of
    its own (the deadline stops it); short behind a queue, which holds the request instead."""

    def backoff(self, attempt: int) -> float:
        """Seconds before try ``attempt + 1``: exponential with equal jitter."""
        return _jittered(self.backoff_base, self.backoff_cap, attempt)

    def throttle_backoff(self, blocked: int) -> float:
        """Seconds before trying again after the ``blocked``-th block with no hint."""
        return _jittered(self.throttle_base, self.throttle_cap, blocked)


def _jittered(base: float, cap: float, attempt: int) -> float:
    ceiling = min(cap, base * 2 ** (attempt - 1))
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


def _limit_socket_wait(http: requests.Response, seconds: float) -> None:
    """Bound the next socket read by ``seconds`` (the time left), not the read timeout set
    when the call began."""
    connection = getattr(http.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _sent_secrets(request: requests.PreparedRequest) -> tuple[str, ...]:
    """What the request's Basic auth revealed: the token, ``user:password`` and the password."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return ()
    try:
        pair = base64.b64decode(token, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return (token,)
    password = pair.partition(":")[2]
    return tuple(s for s in (token, pair, password) if s)


def _scrub(text: str | None, secrets: Sequence[str]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    return text


def _scrubbed(response: codec.ServiceResponse, secrets: Sequence[str]) -> codec.ServiceResponse:
    """The answer without any credential that Qualys echoed back (in an error message, or a
    connector's lastError): such text goes into reasons, logs and Slack."""
    if not secrets:
        return response
    return dataclasses.replace(
        response,
        error_message=_scrub(response.error_message, secrets),
        error_resolution=_scrub(response.error_resolution, secrets),
        connectors=tuple(
            dataclasses.replace(c, last_error=_scrub(c.last_error, secrets))
            for c in response.connectors
        ),
    )


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
        read_timeout: float = 40.0,
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

    def with_retry(self, retry: RetryPolicy) -> QualysClient:
        """This client, with its session and credentials, waiting by another policy."""
        other = copy.copy(self)
        other._retry = retry
        return other

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
        response = self._call(
            "update", "POST", connector_id, body, deadline=deadline, idempotent=True
        )
        echoed = [c.id for c in response.connectors]
        if echoed and echoed != [connector_id]:
            raise QualysResponseError(
                f"Qualys answered update of connector {connector_id} with connector {echoed[0]}"
            )

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
        waited = 0.0
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
                    stream=True,
                )
                content = self._read_whole(http, operation, deadline)
            except requests.RequestException as error:
                failures += 1
                retry = idempotent or never_sent(error)
                self._log_failure(operation, type(error).__name__, failures, retry=retry)
                if retry and self._may_retry(failures, deadline):
                    continue
                raise self._transport_error(operation, error) from None
            except (QualysUnavailableError, QualysResponseError) as error:
                # The answer was cut off (too slow, too big, connection lost): the request
                # reached Qualys, so a write's outcome is unknown.
                failures += 1
                self._log_failure(operation, type(error).__name__, failures, retry=idempotent)
                if idempotent and self._may_retry(failures, deadline):
                    continue
                raise
            logger.debug(
                "Qualys %s %s -> HTTP %s in %.2fs",
                operation,
                connector_id or "",
                http.status_code,
                time.monotonic() - started,
            )

            try:
                return self._check(operation, http, content)
            except QualysThrottledError as blocked:
                throttled += 1
                wait = self._throttle_wait(blocked, http.headers, throttled, deadline, waited)
                logger.info("Qualys %s throttled; waiting %.1fs", operation, wait)
                self._sleep(wait)
                waited += wait
                continue
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
        if not deadline.allows(wait + self._retry.min_call_time):
            return False
        self._sleep(wait)
        return True

    def _throttle_wait(
        self,
        blocked: QualysThrottledError,
        headers: Mapping[str, str],
        throttled: int,
        deadline: Deadline,
        waited: float,
    ) -> float:
        """How long to wait before trying a blocked call again; raises when the time left
        (or the patience left) cannot hold the wait and one more call."""
        # A limited API may send ToWait on every answer, often 0: only a positive hint is
        # a rate-window wait. A concurrency block carries 0 or nothing at all.
        hint = max(
            (
                seconds
                for name in ("X-RateLimit-ToWait-Sec", "Retry-After")
                if (seconds := _header_seconds(headers, name)) is not None
            ),
            default=0.0,
        )
        room = min(
            deadline.remaining() - self._retry.min_call_time,
            self._retry.throttle_patience - waited,
        )
        if hint > 0:
            if hint <= room:
                return hint
            error = QualysThrottledError(
                f"Qualys asked to wait {hint:.0f}s (API limit), more than the time left;"
                " try again later",
                status=blocked.status,
                response_code=blocked.response_code,
            )
            error.retry_after = hint
            raise error from blocked
        if room <= 0:
            raise QualysThrottledError(
                "Qualys stayed at its API limit until the time ran out; try again later",
                status=blocked.status,
                response_code=blocked.response_code,
            ) from blocked
        return min(self._retry.throttle_backoff(throttled), room)

    def _read_whole(self, http: requests.Response, operation: str, deadline: Deadline) -> bytes:
        """The answer's body; the connection goes back to the pool only when it was read to
        its end (a half-read one cannot serve another request)."""
        try:
            content = self._read_body(http, operation, deadline)
        except BaseException:
            http.close()
            raise
        http.raw.release_conn()
        return content

    def _read_body(self, http: requests.Response, operation: str, deadline: Deadline) -> bytes:
        """The whole answer, within the deadline as a whole and within the size limit: an
        answer that trickles in or never ends is cut off, whatever each read takes."""
        declared = http.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > codec.MAX_RESPONSE_BYTES:
            raise QualysResponseError(f"Qualys answered {declared} bytes, more than any response")
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline.remaining()
            if left <= 0:
                raise QualysTimeoutError(
                    f"Qualys's answer to {operation} was still arriving when the time ran out"
                )
            _limit_socket_wait(http, min(self._read_timeout, left))
            try:
                chunk = http.raw.read1(_CHUNK, decode_content=True)
            except (ReadTimeoutError, TimeoutError):
                raise QualysTimeoutError(f"Qualys did not answer {operation} in time") from None
            except (ProtocolError, urllib3.exceptions.HTTPError, OSError):
                raise QualysUnavailableError(
                    f"Qualys's answer to {operation} was cut off; try again later"
                ) from None
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > codec.MAX_RESPONSE_BYTES:
                raise QualysResponseError(
                    f"Qualys answered more than {codec.MAX_RESPONSE_BYTES} bytes to {operation}"
                )
            chunks.append(chunk)

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
    def _check(operation: str, http: requests.Response, content: bytes) -> codec.ServiceResponse:
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
        response = _scrubbed(codec.parse_response(content), _sent_secrets(http.request))
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
