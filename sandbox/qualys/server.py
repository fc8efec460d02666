"""The Qualys simulator: a loopback HTTP server speaking the Connector API (QPS REST 2.0/3.0)."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
import re
import socket
import struct
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

from lxml import etree

from sandbox.loopback import LoopbackServer
from sandbox.qualys.errors import InvalidRequestError, ServiceError
from sandbox.qualys.faults import Fault, FaultKind
from sandbox.qualys.limits import Admission, Limiter
from sandbox.qualys.models import (
    OPERATIONS,
    HeaderMap,
    RecordedRequest,
    RoleChecker,
    SimConnector,
    SyncOutcome,
)
from sandbox.qualys.store import ConnectorStore, Scope, SyncTiming
from sandbox.qualys.wire.parse import parse_connector_request, parse_document, parse_search_request
from sandbox.qualys.wire.render import (
    error_response,
    oversized_response,
    success_response,
    truncated_response,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""Request bodies above this size get HTTP 413 and are not read."""

DEFAULT_USERS: Mapping[str, str] = {"qualys-user": "qualys-password"}
DEFAULT_QUALYS_ACCOUNT_ID = "805950163170"

_ROUTE = re.compile(
    r"/qps/rest/(?P<version>2\.0|3\.0)/(?P<operation>create|get|search|count|update|delete|run)"
    r"/am/awsassetdataconnector"
    r"(?:/(?P<id>\d{1,18}))?/?"
)
# Which operations take an id in the path: True required, False forbidden, None either.
_ID_IN_PATH: dict[str, bool | None] = {
    "create": False,
    "get": True,
    "search": False,
    "count": False,
    "update": None,
    "delete": None,
    "run": True,
}
_METHODS = {"get": ("GET",), "update": ("POST", "PUT")}

UNAUTHORIZED_MESSAGE = "You are not authorized to access the application through the API."
UNAUTHORIZED_RESOLUTION = "If you think this is an error, please contact your account manager."
CREDENTIALS_NEEDED_MESSAGE = "Authentication credentials are needed to access the API."

_NOT_XML = b"Service temporarily unavailable {responseCode: SUCCESS"
_HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class _Incoming:
    """A request as the HTTP handler read it (body None: larger than MAX_BODY_BYTES)."""

    method: str
    target: str
    headers: HeaderMap
    body: bytes | None


@dataclass(frozen=True)
class _Outcome:
    """How to answer: an HTTP response, possibly held back or slow, or no answer at all."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    close: bool = False
    delay: float = 0.0
    drop: bool = False
    """Close the connection without an answer."""
    reset: bool = False
    """With drop: end the connection with a TCP reset instead of a normal close."""
    trickle: float = 0.0
    """Seconds between the body's bytes (0: the body at once)."""
    stream: Iterator[bytes] | None = None
    """A body too large to hold, of `length` bytes, sent instead of `body`."""
    length: int = 0


@dataclass
class _PendingFault:
    """An injected fault and how many more calls it applies to."""

    operation: str
    fault: Fault
    remaining: int


@dataclass(frozen=True)
class _Route:
    version: str
    operation: str
    connector_id: int | None


class QualysSimulator(LoopbackServer):
    """A local Qualys Connector API for tests and the demo; a context manager, thread-safe.

    Where the real behaviour is OPEN, an option chooses it; the defaults follow the
    recordings and the reference. ``limit_headers`` puts the six FO limit headers on every
    answer (the connector API sent none in every recording). ``latency`` holds every call
    (or, as a mapping of operation or "*" to seconds, each operation) while it counts as
    running. ``qualys_account_id`` and its GovCloud and China counterparts are what a
    connector of that account type reports as ``qualysAwsAccountId`` (None: nothing).
    A sync, started by ``run`` (or by enabling with ``sync_on_enable``), shows QUEUED for
    ``sync_queue_seconds``, PROCESSING for ``sync_seconds``, then its result: the
    ``role_checker``'s verdict or a `script_sync` outcome. ``description_limit`` cuts longer
    descriptions. ``scope`` (and `hide`) put connectors out of the API user's sight.
    """

    _name: ClassVar[str] = "the simulator"
    _thread_name: ClassVar[str] = "qualys-simulator-{port}"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        unauthorized_users: Collection[str] = (),
        qualys_account_id: str = DEFAULT_QUALYS_ACCOUNT_ID,
        gov_cloud_qualys_account_id: str | None = None,
        china_qualys_account_id: str | None = None,
        report_qualys_account_id: bool = True,
        rate_limit: int | None = None,
        rate_window: float = 3600.0,
        concurrency_limit: int | None = None,
        throttle_status: int = 409,
        limit_headers: bool = False,
        retry_after: bool = True,
        omit_first_to_wait: bool = False,
        latency: float | Mapping[str, float] = 0.0,
        role_checker: RoleChecker | None = None,
        sync_queue_seconds: float = 0.0,
        sync_seconds: float = 0.2,
        sync_on_enable: bool = False,
        description_limit: int | None = None,
        scope: Scope | None = None,
    ) -> None:
        self._users = dict(DEFAULT_USERS if users is None else users)
        self._unauthorized = frozenset(unauthorized_users)
        unknown = sorted(self._unauthorized - set(self._users))
        if unknown:
            raise ValueError(f"unauthorized_users must also be in users: {', '.join(unknown)}")
        if throttle_status not in (409, 429):
            raise ValueError("throttle_status must be 409 or 429")
        self._latency = _latencies(latency)
        super().__init__(host=host, port=port)
        self._throttle_status = throttle_status
        self._retry_after = retry_after
        # The store's lock is held while a role checker runs; the request log and the faults
        # have their own, so that a slow checker never holds up other answers.
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._limiter = Limiter(
            rate_limit=rate_limit,
            rate_window=rate_window,
            concurrency_limit=concurrency_limit,
            send_headers=limit_headers,
            omit_first_to_wait=omit_first_to_wait,
        )
        accounts = {
            "GLOBAL": qualys_account_id,
            "GOVCLOUD": gov_cloud_qualys_account_id,
            "CHINA": china_qualys_account_id,
        }
        self._store = ConnectorStore(
            lock=self._lock,
            qualys_account_ids={
                kind: account if report_qualys_account_id else None
                for kind, account in accounts.items()
            },
            role_checker=role_checker,
            scope=scope,
            description_limit=description_limit,
            sync_timing=SyncTiming(queue_seconds=sync_queue_seconds, run_seconds=sync_seconds),
            sync_on_enable=sync_on_enable,
        )
        self._faults: list[_PendingFault] = []  # FIFO
        self._requests: list[RecordedRequest] = []

    # --- lifecycle ----------------------------------------------------------------------------

    def _check_startable(self) -> None:
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("a QualysSimulator starts once")

    def _make_server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        server = _Server(address, _Handler)
        server.simulator = self
        return server

    @property
    def base_url(self) -> str:
        """Where the simulator serves, e.g. http://127.0.0.1:8080 (after start)."""
        host, port = self._running().server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else host
        if ":" in host_text:
            host_text = f"[{host_text}]"
        return f"http://{host_text}:{port}"

    # --- test controls ------------------------------------------------------------------------

    @property
    def role_checker(self) -> RoleChecker | None:
        """Asked when a sync ends whether Qualys could use the role (None: it always can)."""
        return self._store.role_checker

    @role_checker.setter
    def role_checker(self, checker: RoleChecker | None) -> None:
        with self._lock:
            self._store.role_checker = checker

    @property
    def scope(self) -> Scope | None:
        """Whether a connector is in the API user's scope (None: every connector is)."""
        return self._store.scope

    @scope.setter
    def scope(self, scope: Scope | None) -> None:
        with self._lock:
            self._store.scope = scope

    def connectors(self) -> list[SimConnector]:
        """Every connector, out of scope ones too, sorted by id, syncs brought up to date."""
        return self._store.all()

    def connector(self, connector_id: int) -> SimConnector | None:
        """One connector (in scope or not), or None, with its sync brought up to date."""
        return self._store.find(connector_id)

    def visible(self, connector_id: int) -> bool:
        """Whether the API user sees this connector (KeyError when unknown)."""
        connector = self._store.find(connector_id)
        if connector is None:
            raise KeyError(connector_id)
        return self._store.visible(connector)

    def hide(self, connector_id: int) -> SimConnector:
        """Put a connector out of the API user's scope: it still exists, the API denies it."""
        return self.modify(connector_id, hidden=True)

    def reveal(self, connector_id: int) -> SimConnector:
        """Undo `hide`."""
        return self.modify(connector_id, hidden=False)

    def script_sync(self, outcome: SyncOutcome, *, times: int = 1) -> None:
        """The next `times` syncs to start end with `outcome`, not the role checker's verdict."""
        if times < 1:
            raise ValueError("times must be at least 1")
        self._store.script_syncs(outcome, times)

    def seed(self, **fields: Any) -> SimConnector:
        """Add a connector directly (SimConnector field names; id allocated unless given)."""
        return self._store.seed(dict(fields))

    def remove(self, connector_id: int) -> None:
        """Delete a connector outside the API (KeyError when unknown)."""
        self._store.remove(connector_id)

    def modify(self, connector_id: int, **fields: Any) -> SimConnector:
        """Change a connector's fields outside the API (KeyError when unknown)."""
        return self._store.modify(connector_id, dict(fields))

    def set_password(self, username: str, password: str) -> None:
        """Rotate a user's password: from now on only the new one is accepted."""
        with self._lock:
            if username not in self._users:
                raise ValueError(f"no user {username!r}")
            self._users[username] = password

    def inject(self, operation: str, fault: Fault, *, times: int = 1) -> None:
        """Give the next `times` calls of `operation` ("*": any) this fault, after earlier ones."""
        if operation != "*" and operation not in OPERATIONS:
            raise ValueError(f"operation must be '*' or one of {', '.join(OPERATIONS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._log_lock:
            self._faults.append(_PendingFault(operation, fault, times))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in the order their answers were decided."""
        with self._log_lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget connectors, scripted syncs, faults, requests and past calls of the rate limit."""
        self._store.clear()
        with self._log_lock:
            self._faults.clear()
            self._requests.clear()
        self._limiter.reset()

    # --- serving (called from handler threads) ------------------------------------------------

    def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; False when the simulator is stopping."""
        if seconds > 0:
            self._stopping.wait(seconds)
        return not self._stopping.is_set()

    def _serve(self, incoming: _Incoming) -> _Outcome:
        path = urlsplit(incoming.target).path
        match = _ROUTE.fullmatch(path)
        route: _Route | None = None
        if match is not None:
            connector_id = int(match["id"]) if match["id"] else None
            route = _Route(match["version"], match["operation"], connector_id)
        username, verdict = self._authenticate(incoming.headers.get("Authorization"))

        def record(outcome: _Outcome) -> _Outcome:
            self._record(incoming, route, outcome, username)
            return outcome

        latency = self._latency.get(route.operation if route else "*", self._latency["*"])

        def refuse(outcome: _Outcome) -> _Outcome:
            # Latency applies to every request; refused ones do not count as running.
            self._pause(latency)
            return record(outcome)

        if incoming.body is None:
            return refuse(self._plain(413, "Request body too large.", close=True))
        if route is None or not _id_fits(route):
            return refuse(self._plain(404, "Not Found"))
        allowed = _METHODS.get(route.operation, ("POST",))
        if incoming.method not in allowed:
            allow = (("Allow", ", ".join(allowed)),)
            return refuse(self._plain(405, "Method Not Allowed", extra=allow))
        if verdict is not None:
            return refuse(self._auth_failure(route.version, verdict))
        admission = self._limiter.admit()
        if not admission.admitted:
            return refuse(self._throttled(route.version, admission))
        try:
            self._pause(latency)
            outcome = self._answer(route, incoming.body, admission.headers)
        finally:
            # Released before any delay fault: the delay stands for the network, not Qualys.
            self._limiter.release()
        return record(outcome)

    def _answer(
        self, route: _Route, body: bytes, limit_headers: tuple[tuple[str, str], ...]
    ) -> _Outcome:
        fault = self._take_fault(route.operation)
        if fault is not None and not fault.carries_out:
            return self._faulty(route.version, fault, limit_headers)
        try:
            payload = self._process(route, body)
        except ServiceError as error:
            payload = error_response(
                version=route.version,
                code=error.code,
                message=error.message,
                resolution=error.resolution,
            )
        except Exception:
            logger.exception("simulator failed on %s %s", route.operation, route.connector_id)
            payload = error_response(
                version=route.version, code="OTHER_ERROR", message="Internal error."
            )
            return _Outcome(500, (*limit_headers, _XML), payload)
        outcome = _Outcome(200, (*limit_headers, _XML), payload)
        if fault is None:
            return outcome
        if fault.kind in (FaultKind.DROP, FaultKind.RESET):
            return _unanswered(fault)
        if fault.kind is FaultKind.TRICKLE:
            return replace(outcome, trickle=fault.seconds)
        return replace(outcome, delay=fault.seconds)

    def _process(self, route: _Route, body: bytes) -> bytes:
        """Carry out one operation; the success envelope, or ServiceError."""
        if route.connector_id is not None:
            by_id = {
                "get": self._get,
                "run": self._run,
                "delete": self._delete,
                "update": self._update,
            }
            return by_id[route.operation](route.version, route.connector_id, body)
        by_filter = {
            "create": self._create,
            "search": self._search,
            "count": self._count,
            "update": self._update_many,
            "delete": self._delete_many,
        }
        return by_filter[route.operation](route.version, parse_document(body))

    def _get(self, version: str, connector_id: int, _body: bytes) -> bytes:
        connector = self._store.get(connector_id)
        return success_response(version=version, count=1, connectors=[connector])

    def _run(self, version: str, connector_id: int, _body: bytes) -> bytes:
        self._store.run(connector_id)
        return success_response(version=version, count=1, ids=[connector_id])

    def _delete(self, version: str, connector_id: int, _body: bytes) -> bytes:
        self._store.delete(connector_id)
        return success_response(version=version, count=1, ids=[connector_id])

    def _update(self, version: str, connector_id: int, body: bytes) -> bytes:
        root = parse_document(body)
        changes, _ = parse_connector_request(root, version=version)
        self._store.update(connector_id, changes)
        return success_response(version=version, count=1, ids=[connector_id])

    def _create(self, version: str, root: etree._Element | None) -> bytes:
        changes, _ = parse_connector_request(root, version=version)
        connector = self._store.create(changes)
        return success_response(version=version, count=1, connectors=[connector])

    def _search(self, version: str, root: etree._Element | None) -> bytes:
        page, has_more = self._store.search(parse_search_request(root))
        return success_response(
            version=version,
            count=len(page),
            connectors=page,
            # Qualys leaves hasMoreRecords out of an answer that found nothing (CAPTURE).
            has_more=has_more if page else None,
            last_id=page[-1].id if has_more else None,
        )

    def _count(self, version: str, root: etree._Element | None) -> bytes:
        count = self._store.count(parse_search_request(root))
        return success_response(version=version, count=count)

    def _update_many(self, version: str, root: etree._Element | None) -> bytes:
        changes, search = parse_connector_request(
            root, version=version, allowed=("filters", "data")
        )
        if not search.has_filters:
            raise InvalidRequestError("Updating without an id in the path needs filters.")
        ids = self._store.update_many(search, changes)
        return success_response(version=version, count=len(ids), ids=ids)

    def _delete_many(self, version: str, root: etree._Element | None) -> bytes:
        search = parse_search_request(root, allowed=("filters",))
        if not search.has_filters:
            raise InvalidRequestError("Deleting without an id in the path needs filters.")
        ids = self._store.delete_many(search)
        return success_response(version=version, count=len(ids), ids=ids)

    def _take_fault(self, operation: str) -> Fault | None:
        with self._log_lock:
            for pending in self._faults:
                if pending.operation in ("*", operation):
                    pending.remaining -= 1
                    if pending.remaining == 0:
                        self._faults.remove(pending)
                    return pending.fault
        return None

    def _faulty(
        self, version: str, fault: Fault, limit_headers: tuple[tuple[str, str], ...]
    ) -> _Outcome:
        if fault.kind in (FaultKind.DROP, FaultKind.RESET):
            return _unanswered(fault)
        if fault.kind is FaultKind.OVERSIZED:
            stream = oversized_response(version, fault.size_bytes)
            return _Outcome(200, (*limit_headers, _XML), stream=stream, length=fault.size_bytes)
        if fault.kind is FaultKind.HTML:
            reason = _Handler.responses.get(fault.status, ("Error",))[0]
            page = _HTML_PAGE.format(status=fault.status, reason=reason)
            return _Outcome(fault.status, (("Content-Type", "text/html"),), page.encode())
        if fault.kind is FaultKind.HTTP:
            overridden = {name.lower() for name, _ in fault.headers}
            kept = [h for h in (*limit_headers, _TEXT) if h[0].lower() not in overridden]
            return _Outcome(fault.status, (*kept, *fault.headers), fault.body.encode())
        if fault.kind is FaultKind.RESPONSE_CODE:
            body = error_response(
                version=version, code=fault.code, message=fault.message, resolution=fault.resolution
            )
        elif fault.kind is FaultKind.MALFORMED:
            body = _NOT_XML
        else:
            body = truncated_response(version)
        return _Outcome(200, (*limit_headers, _XML), body)

    def _authenticate(self, authorization: str | None) -> tuple[str | None, str | None]:
        """The username sent, and None when authorized or else why not."""
        if authorization is None:
            return None, "missing"
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None, "invalid"
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, "invalid"
        username, _, password = decoded.partition(":")
        expected = self._users.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return username, "invalid"
        if username in self._unauthorized:
            return username, "unauthorized"
        return username, None

    def _auth_failure(self, version: str, verdict: str) -> _Outcome:
        headers = (*self._limiter.headers(), _XML)
        if verdict == "missing":
            body = error_response(
                version=version,
                code="AUTH_CREDENTIALS_NEEDED",
                message=CREDENTIALS_NEEDED_MESSAGE,
            )
            return _Outcome(200, headers, body)
        if verdict == "unauthorized":
            body = error_response(
                version=version,
                code="UNAUTHORIZED",
                message=UNAUTHORIZED_MESSAGE,
                resolution=UNAUTHORIZED_RESOLUTION,
            )
            return _Outcome(200, headers, body)
        return self._plain(
            401,
            "Invalid credentials.",
            extra=(("WWW-Authenticate", 'Basic realm="Qualys API"'),),
        )

    def _throttled(self, version: str, admission: Admission) -> _Outcome:
        limiter = self._limiter
        if admission.reason == "concurrency":
            message = (
                f"Concurrency limit exceeded: {limiter.concurrency_limit} calls are already "
                "running for this user."
            )
            resolution = "Retry when a running call has finished."
        else:
            message = (
                f"API rate limit exceeded: {limiter.rate_limit} calls per "
                f"{math.ceil(limiter.window)} seconds."
            )
            resolution = f"Retry after {admission.to_wait} seconds."
        headers = (*admission.headers, _XML)
        if self._throttle_status == 429 and self._retry_after:
            # A concurrency block has no known wait; one second is the least Retry-After says.
            headers = (*headers, ("Retry-After", str(max(1, admission.to_wait))))
        body = error_response(
            version=version, code="LIMIT_EXCEEDED", message=message, resolution=resolution
        )
        return _Outcome(self._throttle_status, headers, body)

    def _plain(
        self,
        status: int,
        text: str,
        *,
        extra: tuple[tuple[str, str], ...] = (),
        close: bool = False,
    ) -> _Outcome:
        headers = (*self._limiter.headers(), _TEXT, *extra)
        return _Outcome(status, headers, f"{text}\n".encode(), close=close)

    def _record(
        self,
        incoming: _Incoming,
        route: _Route | None,
        outcome: _Outcome,
        username: str | None,
    ) -> None:
        headers = HeaderMap(
            (name, "<redacted>" if name.lower() == "authorization" else value)
            for name, value in incoming.headers.items()
        )
        recorded = RecordedRequest(
            method=incoming.method,
            path=urlsplit(incoming.target).path,
            api_version=route.version if route else None,
            operation=route.operation if route else None,
            connector_id=route.connector_id if route else None,
            headers=headers,
            body=incoming.body or b"",
            status=outcome.status,
            username=username,
        )
        with self._log_lock:
            self._requests.append(recorded)


_XML = ("Content-Type", "application/xml")
_TEXT = ("Content-Type", "text/plain; charset=utf-8")


def _latencies(latency: float | Mapping[str, float]) -> dict[str, float]:
    """Seconds per operation, "*" for the rest (and for requests that name none)."""
    chosen = {"*": latency} if isinstance(latency, int | float) else {"*": 0.0, **latency}
    unknown = sorted(set(chosen) - {"*", *OPERATIONS})
    if unknown:
        raise ValueError(f"latency names unknown operations: {', '.join(unknown)}")
    if any(seconds < 0 for seconds in chosen.values()):
        raise ValueError("latency must not be negative")
    return {operation: float(seconds) for operation, seconds in chosen.items()}


def _unanswered(fault: Fault) -> _Outcome:
    return _Outcome(0, drop=True, reset=fault.kind is FaultKind.RESET)


def _id_fits(route: _Route) -> bool:
    rule = _ID_IN_PATH[route.operation]
    return rule is None or rule == (route.connector_id is not None)


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that can close its open keep-alive connections on stop."""

    daemon_threads = True
    block_on_close = False
    # A burst of cold containers connects at once: socketserver's backlog of 5 would drop
    # their SYNs into retries a second apart, which no real Qualys endpoint does.
    request_queue_size = 1024
    simulator: QualysSimulator

    def __init__(
        self, address: tuple[str, int], handler: Callable[..., BaseHTTPRequestHandler]
    ) -> None:
        self._open: set[socket.socket] = set()
        self._resetting: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def reset_on_close(self, request: socket.socket) -> None:
        """End this connection with a TCP reset (RST) instead of a normal close (FIN)."""
        # SO_LINGER on with a zero timeout makes close() send RST and drop unsent data.
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._open_lock:
            self._resetting.add(request)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
            resetting = request in self._resetting
            self._resetting.discard(request)
        if resetting:
            # No shutdown(SHUT_WR) first: it would send a FIN before the reset.
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def server_close(self) -> None:
        # Open keep-alive connections go too: their handlers would wait out their timeout.
        super().server_close()
        self.close_connections()

    def close_connections(self) -> None:
        with self._open_lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("connection already closed")

    def handle_error(self, _request: Any, client_address: Any) -> None:
        # Called inside socketserver's except block. A client that hangs up mid-answer is
        # normal in fault tests, so this stays at debug level instead of printing a traceback.
        logger.debug("connection from %s ended: %r", client_address, sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, lets the simulator decide, and writes (or withholds) the answer."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: with Nagle's algorithm on, the body
    # waits for the client's delayed ACK of the headers (about 40 ms on loopback), a
    # latency no real Qualys answer has and the configured one does not include.
    disable_nagle_algorithm = True
    server_version = "QualysSimulator/1.0"
    timeout = 60

    def do_GET(self) -> None:
        self._exchange()

    def do_POST(self) -> None:
        self._exchange()

    def do_PUT(self) -> None:
        self._exchange()

    def do_DELETE(self) -> None:
        self._exchange()

    def do_PATCH(self) -> None:
        self._exchange()

    def do_HEAD(self) -> None:
        self._exchange()

    def do_OPTIONS(self) -> None:
        self._exchange()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # stdlib's name
        logger.debug("%s %s", self.address_string(), format % args)

    def _exchange(self) -> None:
        server = cast(_Server, self.server)
        simulator = server.simulator
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "Bad request body framing")
            return
        incoming = _Incoming(self.command, self.path, HeaderMap(self.headers.items()), body)
        outcome = simulator._serve(incoming)
        if outcome.delay and not simulator._pause(outcome.delay):
            self.close_connection = True
            return
        if outcome.drop:
            if outcome.reset:
                server.reset_on_close(self.connection)
            self.close_connection = True
            return
        self.send_response(outcome.status)
        for name, value in outcome.headers:
            self.send_header(name, value)
        length = len(outcome.body) if outcome.stream is None else outcome.length
        self.send_header("Content-Length", str(length))
        if outcome.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        if not self._write_body(simulator, outcome):
            # Stopping mid-body: the client sees the connection end short of Content-Length.
            self.close_connection = True

    def _write_body(self, simulator: QualysSimulator, outcome: _Outcome) -> bool:
        """Send the body as the outcome says; False when the simulator stopped first."""
        if outcome.stream is not None:
            for chunk in outcome.stream:
                if not simulator._pause(0):
                    return False
                self.wfile.write(chunk)
            return True
        if not outcome.trickle:
            self.wfile.write(outcome.body)
            return True
        for index in range(len(outcome.body)):
            if index and not simulator._pause(outcome.trickle):
                return False
            self.wfile.write(outcome.body[index : index + 1])
        return True

    def _read_body(self) -> bytes | None:
        """The request body, or None (unread) when it exceeds MAX_BODY_BYTES."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk_size = int(self.rfile.readline(100).split(b";")[0].strip() or b"x", 16)
            if chunk_size == 0:
                while self.rfile.readline(1000).strip():  # trailers
                    pass
                return b"".join(chunks)
            size += chunk_size
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(self.rfile.read(chunk_size))
            self.rfile.readline(10)
