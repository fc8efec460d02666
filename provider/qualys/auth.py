"""How the client authenticates: per call, an ``AuthBase`` that may read its secret first."""

from __future__ import annotations

from typing import Protocol

from requests.auth import AuthBase, HTTPBasicAuth

from provider.deadline import Deadline


class Credentials(Protocol):
    """Where a call's HTTP Basic credentials come from."""

    def auth(self, deadline: Deadline) -> AuthBase:
        """The auth for one call; it may read a secret within ``deadline`` when applied."""
        ...


class StaticCredentials:
    """A user and password known up front (the command line, tests)."""

    def __init__(self, username: str, password: str) -> None:
        self._auth = HTTPBasicAuth(username, password)
        self.username = username

    def auth(self, deadline: Deadline) -> AuthBase:  # noqa: ARG002 - nothing to read
        """The same Basic auth for every call."""
        return self._auth

    def __repr__(self) -> str:
        return f"StaticCredentials(username={self.username!r})"
