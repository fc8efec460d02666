"""A Slack incoming-webhook receiver on loopback that records, validates and answers like Slack.

It answers ``200 ok`` to a valid JSON message posted to its webhook path, ``404 no_service``
to any other path, ``400 invalid_payload`` to a body that is not a message and
``400 invalid_blocks`` to Block Kit blocks Slack would refuse, so tests prove that the
provider's messages are valid. Faults (error answers, slow answers) can be switched on for
the next requests.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final

from sandbox.loopback import LoopbackServer

logger = logging.getLogger(__name__)

DEFAULT_PATH: Final = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"

# The Block Kit rules checked here: the ones the provider's messages come close to.
BLOCK_TYPES: Final = frozenset({"section", "header", "context", "divider"})
MAX_BLOCKS: Final = 50
SECTION_TEXT_LIMIT: Final = 3000
SECTION_FIELDS_LIMIT: Final = 10
FIELD_TEXT_LIMIT: Final = 2000
HEADER_TEXT_LIMIT: Final = 150
CONTEXT_ELEMENTS_LIMIT: Final = 10
MAX_BODY_BYTES: Final = 1_000_000


@dataclass(frozen=True)
class Rejection:
    """A request the receiver answered with an error, and why."""

    path: str
    status: int
    error: str
    body: str


@dataclass(frozen=True)
class _Answer:
    status: int
    body: str


class InvalidPayloadError(ValueError):
    """A body is not a message Slack would post (Slack answers ``invalid_payload``)."""


class InvalidBlocksError(InvalidPayloadError):
    """A message's blocks break a Block Kit rule (Slack answers ``invalid_blocks``)."""


_ANY_TEXT: Final = frozenset({"plain_text", "mrkdwn"})
_PLAIN_TEXT: Final = frozenset({"plain_text"})


def _check_text(obj: Any, where: str, limit: int, *, kinds: frozenset[str]) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        raise InvalidBlocksError(f"{where} must be a text object of type {sorted(kinds)}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        raise InvalidBlocksError(f"{where}.text must be a non-empty string")
    if len(text) > limit:
        raise InvalidBlocksError(f"{where}.text is {len(text)} characters, more than {limit}")


def _check_list(items: Any, where: str, limit: int) -> list[Any]:
    if not isinstance(items, list) or not items:
        raise InvalidBlocksError(f"{where} must be a non-empty list")
    if len(items) > limit:
        raise InvalidBlocksError(f"{where} has {len(items)} items, more than {limit}")
    return items


def _check_section(block: dict[str, Any], where: str) -> None:
    if "text" not in block and "fields" not in block:
        raise InvalidBlocksError(f"{where} needs text or fields")
    if "text" in block:
        _check_text(block["text"], f"{where}.text", SECTION_TEXT_LIMIT, kinds=_ANY_TEXT)
    if "fields" in block:
        fields = _check_list(block["fields"], f"{where}.fields", SECTION_FIELDS_LIMIT)
        for index, field in enumerate(fields):
            _check_text(field, f"{where}.fields[{index}]", FIELD_TEXT_LIMIT, kinds=_ANY_TEXT)


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise InvalidBlocksError(f"{where} must be an object")
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        raise InvalidBlocksError(f"{where}.type {kind!r} is not one of {sorted(BLOCK_TYPES)}")
    if kind == "header":
        _check_text(block.get("text"), f"{where}.text", HEADER_TEXT_LIMIT, kinds=_PLAIN_TEXT)
    elif kind == "section":
        _check_section(block, where)
    elif kind == "context":
        elements = _check_list(block.get("elements"), f"{where}.elements", CONTEXT_ELEMENTS_LIMIT)
        for index, element in enumerate(elements):
            _check_text(element, f"{where}.elements[{index}]", SECTION_TEXT_LIMIT, kinds=_ANY_TEXT)


def _check_blocks(blocks: Any, where: str) -> None:
    for index, block in enumerate(_check_list(blocks, where, MAX_BLOCKS)):
        _check_block(block, f"{where}[{index}]")


def check_message(payload: Any) -> None:
    """Raise InvalidPayloadError (InvalidBlocksError for blocks) unless Slack would accept it."""
    if not isinstance(payload, dict):
        raise InvalidPayloadError("the payload must be a JSON object")
    if not any(payload.get(key) for key in ("text", "blocks", "attachments")):
        raise InvalidPayloadError("the payload needs text, blocks or attachments")
    if "blocks" in payload:
        _check_blocks(payload["blocks"], "blocks")
    attachments = payload.get("attachments", [])
    if not isinstance(attachments, list):
        raise InvalidPayloadError("attachments must be a list")
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            raise InvalidPayloadError(f"attachments[{index}] must be an object")
        if "blocks" in attachment:
            _check_blocks(attachment["blocks"], f"attachments[{index}].blocks")


class _Server(ThreadingHTTPServer):
    # Request threads are joined on close (they are short, and a delayed answer is released
    # by stop() before it closes the server), so no thread outlives the receiver.
    daemon_threads = False
    block_on_close = True
    request_queue_size = 1024  # as the simulator's: a burst of containers posts at once


class SlackReceiver(LoopbackServer):
    """A loopback HTTP server that plays a Slack incoming webhook.

    Use it as a context manager (or ``start()``/``stop()``) and post to ``webhook_url``.
    """

    _name: ClassVar[str] = "the Slack receiver"
    _thread_name: ClassVar[str] = "slack-receiver"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, path: str = DEFAULT_PATH) -> None:
        try:
            loopback = ipaddress.IPv4Address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the Slack receiver listens on IPv4 loopback only, not {host!r}")
        if not path.startswith("/"):
            raise ValueError("the webhook path must start with '/'")
        super().__init__(host=host, port=port)
        self._path = path
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[dict[str, Any]] = []
        self._rejected: list[Rejection] = []
        self._faults: deque[_Answer] = deque()
        self._hangs: deque[float] = deque()
        self._delaying = 0

    def _make_server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        return _Server(address, _handler_for(self))

    # What tests read

    @property
    def webhook_url(self) -> str:
        """``http://127.0.0.1:<port><path>``; the receiver must be running."""
        port = self._running().server_address[1]
        return f"http://{self._host}:{port}{self._path}"

    @property
    def path(self) -> str:
        """The webhook path the receiver accepts."""
        return self._path

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Copies of the accepted JSON payloads, in arrival order."""
        with self._lock:
            return copy.deepcopy(self._messages)

    @property
    def rejected(self) -> list[Rejection]:
        """The requests answered with an error (invalid, wrong path or a switched-on fault)."""
        with self._lock:
            return list(self._rejected)

    @property
    def delaying(self) -> int:
        """How many answers are being delayed right now (see ``hang_next``)."""
        with self._lock:
            return self._delaying

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` messages arrived; raises TimeoutError after ``timeout``."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} Slack message(s) within {timeout}s,"
                    f" got {len(self._messages)}"
                )
            return copy.deepcopy(self._messages)

    # Faults

    def fail_next(self, status: int = 500, *, times: int = 1, body: str = "internal_error") -> None:
        """Answer the next ``times`` webhook posts with ``status`` and ``body``, as Slack does."""
        with self._lock:
            self._faults.extend(_Answer(status, body) for _ in range(times))

    def hang_next(self, seconds: float, *, times: int = 1) -> None:
        """Delay the answer to the next ``times`` posts by ``seconds`` (cut short by ``stop()``)."""
        with self._lock:
            self._hangs.extend(seconds for _ in range(times))

    def reset(self) -> None:
        """Forget messages, rejections and pending faults."""
        with self._lock:
            self._messages.clear()
            self._rejected.clear()
            self._faults.clear()
            self._hangs.clear()

    # Called by the request handler

    def _answer(self, path: str, raw: bytes) -> _Answer | None:
        """The answer to one POST, recording it; None when the receiver stopped meanwhile."""
        with self._lock:
            delay = self._hangs.popleft() if self._hangs else 0.0
            self._delaying += 1 if delay else 0
        if delay:
            stopped = self._stopping.wait(delay)
            with self._lock:
                self._delaying -= 1
            if stopped:
                return None
        answer = self._judge(path, raw)
        with self._arrived:
            if answer.status == 200:
                self._messages.append(json.loads(raw))
                self._arrived.notify_all()
            else:
                text = raw.decode("utf-8", errors="replace")
                self._rejected.append(Rejection(path, answer.status, answer.body, text))
        return answer

    def _judge(self, path: str, raw: bytes) -> _Answer:
        if path != self._path:
            return _Answer(404, "no_service")
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            return fault
        try:
            payload = json.loads(raw)
        except ValueError:
            return _Answer(400, "invalid_payload")
        try:
            check_message(payload)
        except InvalidBlocksError as error:
            logger.debug("Slack receiver refused blocks: %s", error)
            return _Answer(400, "invalid_blocks")
        except InvalidPayloadError as error:
            logger.debug("Slack receiver refused payload: %s", error)
            return _Answer(400, "invalid_payload")
        return _Answer(200, "ok")


def _handler_for(receiver: SlackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "SlackReceiver/1.0"
        disable_nagle_algorithm = True  # as the simulator's: no delayed-ACK wait per post
        timeout = 10  # a client that stops sending cannot pin a thread for ever

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._send(_Answer(400, "invalid_payload"))
                return
            if int(length) > MAX_BODY_BYTES:
                self._send(_Answer(413, "request_too_large"))
                return
            raw = self.rfile.read(int(length))
            answer = receiver._answer(self.path, raw)  # the handler is the receiver's own part
            if answer is None:
                self.close_connection = True
                return
            self._send(answer)

        def do_GET(self) -> None:
            self._send(_Answer(405, "invalid_method"))

        do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815 - http.server's naming

        def _send(self, answer: _Answer) -> None:
            body = answer.body.encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        # Any path posted to may be someone's webhook secret: the receiver never logs one.
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:  # noqa: ARG002
            logger.debug("Slack receiver answered %s with %s", self.command, code)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            message = format % args
            for secret in (getattr(self, "requestline", ""), getattr(self, "path", "")):
                if secret:
                    message = message.replace(secret, "<redacted>")
            logger.debug("Slack receiver: %s", message)

    return Handler
