"""Catches the custom resource responses that crhelper sends to CloudFormation.

crhelper PUTs its answer to the presigned ``ResponseURL`` through
``crhelper.utils.HTTPSConnection`` (always HTTPS, retried forever). Here that name is
replaced by a connection that records the PUT instead of sending it, so the provider runs
through crhelper's real send path while tests and the sandbox read what it answered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import crhelper.utils


@dataclass(frozen=True)
class CfnResponse:
    """One response crhelper sent: where it went and what it said."""

    host: str
    path: str
    body: dict[str, Any]
    raw: bytes

    @property
    def status(self) -> str:
        """``SUCCESS`` or ``FAILED``."""
        return str(self.body["Status"])

    @property
    def reason(self) -> str:
        """The reason CloudFormation would show."""
        return str(self.body.get("Reason", ""))

    @property
    def physical_resource_id(self) -> str:
        """The PhysicalResourceId the provider answered with."""
        return str(self.body.get("PhysicalResourceId", ""))

    @property
    def data(self) -> dict[str, Any]:
        """The attributes (``Fn::GetAtt``) the provider returned."""
        data = self.body.get("Data") or {}
        assert isinstance(data, dict)
        return data

    @property
    def request_id(self) -> str:
        """The RequestId of the event this answers."""
        return str(self.body.get("RequestId", ""))


class _Reply:
    status = 200
    reason = "OK"

    def read(self) -> bytes:
        return b""


class ResponseCollector:
    """Records every response crhelper sends while ``capture()`` is active."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._responses: list[CfnResponse] = []

    @property
    def responses(self) -> list[CfnResponse]:
        """Every response so far, oldest first."""
        with self._lock:
            return list(self._responses)

    def for_request(self, request_id: str) -> list[CfnResponse]:
        """The responses that answer one event (exactly one is correct)."""
        return [r for r in self.responses if r.request_id == request_id]

    def _record(self, host: str, url: str, body: bytes) -> None:
        response = CfnResponse(host=host, path=urlsplit(url).path, body=json.loads(body), raw=body)
        with self._lock:
            self._responses.append(response)

    def _connection_class(self) -> type[Any]:
        collector = self

        class RecordingConnection:
            def __init__(self, host: str, **_kwargs: Any) -> None:
                self._host = host

            def request(
                self, method: str, url: str, body: str | bytes, headers: dict[str, str]
            ) -> None:
                assert method == "PUT", f"crhelper sent {method}, expected PUT"
                # CloudFormation rejects a signed PUT whose content-type was not signed.
                assert headers.get("content-type") == "", "crhelper must send an empty content-type"
                raw = body.encode() if isinstance(body, str) else body
                collector._record(self._host, url, raw)

            def getresponse(self) -> _Reply:
                return _Reply()

        return RecordingConnection

    @contextmanager
    def capture(self) -> Iterator[ResponseCollector]:
        """Patch ``crhelper.utils.HTTPSConnection`` for the duration of the block."""
        with mock.patch.object(crhelper.utils, "HTTPSConnection", self._connection_class()):
            yield self
