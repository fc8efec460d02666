"""The start/stop life shared by the sandbox's local HTTP stand-ins, each a ThreadingHTTPServer."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import ClassVar, Self


class LoopbackServer(ABC):
    """A ThreadingHTTPServer served from a daemon thread; a context manager.

    A subclass makes its server in ``_make_server``, and names itself in ``_name`` (for
    errors) and its thread in ``_thread_name`` (``{port}`` is the bound port). ``stop()``
    sets ``_stopping`` before it closes the server, so that handlers waiting on the event
    give up and can be joined.
    """

    _name: ClassVar[str]
    _thread_name: ClassVar[str]

    def __init__(self, *, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns the server object itself."""
        self._check_startable()
        self._stopping.clear()
        server = self._make_server((self._host, self._port))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self._thread_name.format(port=server.server_address[1]),
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: cut waits on ``_stopping`` short, close the server, join its thread."""
        self._stopping.set()
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _running(self) -> ThreadingHTTPServer:
        """The server; RuntimeError unless it is running."""
        if self._server is None:
            raise RuntimeError(f"{self._name} is not running")
        return self._server

    def _check_startable(self) -> None:
        if self._server is not None:
            raise RuntimeError(f"{self._name} is already running")

    @abstractmethod
    def _make_server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        """A new server bound to ``address``, with the subclass's request handler."""
