"""Reads the Qualys credentials and the Slack webhook from Secrets Manager, once."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from provider.deadline import Deadline
from provider.errors import SecretError
from provider.text import shorten
from provider.urls import check_url

logger = logging.getLogger(__name__)

ClientFactory = Callable[[Any], Any]
"""Builds a Secrets Manager client from a botocore ``Config``."""


def _default_client(config: Any) -> Any:
    import boto3  # noqa: PLC0415 - built on first use, never at import time

    return boto3.client("secretsmanager", config=config)


@dataclass(frozen=True)
class SecretsPolicy:
    """Timeouts and attempts of Secrets Manager calls, so a read never outlasts its deadline."""

    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    attempts: int = 3
    """Tries in all (botocore's standard retry mode, with its jittered backoff)."""
    backoff_allowance: float = 3.0
    """The most that standard mode's backoff adds between ``attempts`` tries."""

    @property
    def worst_case(self) -> float:
        """Seconds a read can take at most with these settings."""
        return self.attempts * (self.connect_timeout + self.read_timeout) + self.backoff_allowance

    def config(self, seconds: float | None = None) -> Any:
        """A botocore ``Config``; given ``seconds`` left, one try that fits in them."""
        from botocore.config import Config  # noqa: PLC0415 - botocore loads on first use

        if seconds is None:
            connect, read, attempts = self.connect_timeout, self.read_timeout, self.attempts
        else:
            connect = min(self.connect_timeout, seconds / 2)
            read = min(self.read_timeout, seconds / 2)
            attempts = 1
        return Config(
            connect_timeout=connect,
            read_timeout=read,
            retries={"mode": "standard", "total_max_attempts": attempts},
        )


@dataclass(frozen=True)
class QualysCredentials:
    """A Qualys API user; the password never appears in ``repr``."""

    username: str
    password: str = field(repr=False)


class SecretStore:
    """JSON secrets by id, fetched on first use and cached for the container's life."""

    def __init__(
        self,
        client_factory: ClientFactory = _default_client,
        *,
        policy: SecretsPolicy | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._policy = policy or SecretsPolicy()
        self._client: Any = None
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def forget(self, secret_id: str) -> None:
        """Drop a cached value, so that the next read sees a corrected secret."""
        with self._lock:
            self._cache.pop(secret_id, None)

    def read_json(self, secret_id: str, *, what: str, deadline: Deadline) -> dict[str, Any]:
        """The secret's SecretString as a JSON object; ``SecretError`` names what to fix."""
        with self._lock:
            cached = self._cache.get(secret_id)
            if cached is not None:
                return cached
            value = self._fetch(self._client_within(deadline, what=what), secret_id, what=what)
            self._cache[secret_id] = value
            return value

    def _client_within(self, deadline: Deadline, *, what: str) -> Any:
        """The container's client when its worst case fits the time left, else a one-try
        client that does (built rarely: a secret is read once per container)."""
        seconds = deadline.remaining()
        if seconds >= self._policy.worst_case:
            if self._client is None:
                self._client = self._client_factory(self._policy.config())
            return self._client
        if seconds < 1.0:
            raise SecretError(f"No time left to read the {what} secret")
        return self._client_factory(self._policy.config(seconds))

    @staticmethod
    def _fetch(client: Any, secret_id: str, *, what: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            response = client.get_secret_value(SecretId=secret_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            logger.warning("Reading the %s secret %s failed: %s", what, secret_id, code)
            if code == "ResourceNotFoundException":
                raise SecretError(
                    f"The {what} secret {shorten(secret_id, 100)} does not exist: check its ARN"
                ) from None
            if code in {"AccessDeniedException", "KMSAccessDeniedException"}:
                raise SecretError(
                    f"Access to the {what} secret was denied: check its resource and key policy"
                ) from None
            raise SecretError(f"The {what} secret could not be read ({code})") from None
        except BotoCoreError as error:
            logger.warning("Reading the %s secret failed: %s", what, type(error).__name__)
            raise SecretError(f"The {what} secret could not be read: try again") from None

        text = response.get("SecretString")
        if not isinstance(text, str):
            raise SecretError(f"The {what} secret has no SecretString: store it as JSON text")
        try:
            value = json.loads(text)
        except ValueError:
            raise SecretError(f"The {what} secret is not JSON: see the README") from None
        if not isinstance(value, dict):
            raise SecretError(f"The {what} secret is not a JSON object: see the README")
        return value


def read_qualys_credentials(
    store: SecretStore, secret_id: str, *, deadline: Deadline
) -> QualysCredentials:
    """``{"username": "...", "password": "..."}`` from the credentials secret."""
    value = store.read_json(secret_id, what="Qualys credentials", deadline=deadline)
    username, password = value.get("username"), value.get("password")
    if not isinstance(username, str) or not username.strip():
        raise SecretError('The Qualys credentials secret lacks a "username" string')
    if not isinstance(password, str) or not password:
        raise SecretError('The Qualys credentials secret lacks a "password" string')
    return QualysCredentials(username=username.strip(), password=password)


def read_slack_webhook_url(store: SecretStore, secret_id: str, *, deadline: Deadline) -> str:
    """``{"webhook_url": "https://hooks.slack.com/services/..."}`` from the Slack secret."""
    value = store.read_json(secret_id, what="Slack webhook", deadline=deadline)
    url = value.get("webhook_url")
    if not isinstance(url, str) or not url.strip():
        raise SecretError('The Slack webhook secret lacks a "webhook_url" string')
    try:
        return check_url(url, what="The Slack webhook_url")
    except ValueError as error:
        raise SecretError(str(error)) from None


class SecretCredentials:
    """The Qualys credentials from their secret, read on a call's first request.

    Building it reads nothing, so a request with bad properties fails before any secret is
    read. After Qualys answers 401 the cached value is dropped, so the next call reads the
    secret again and picks up a rotated password.
    """

    def __init__(self, store: SecretStore, secret_id: str) -> None:
        self._store = store
        self._secret_id = secret_id

    def auth(self, deadline: Deadline) -> AuthBase:
        """The Basic auth for one call, reading the secret within ``deadline`` if need be."""
        return _SecretBasicAuth(self, deadline)

    def read(self, deadline: Deadline) -> QualysCredentials:
        """The credentials (cached after the first read)."""
        return read_qualys_credentials(self._store, self._secret_id, deadline=deadline)

    def forget(self) -> None:
        """Drop the cached credentials; the next call reads the secret again."""
        self._store.forget(self._secret_id)

    def __repr__(self) -> str:
        return f"SecretCredentials(secret_id={self._secret_id!r})"


class _SecretBasicAuth(AuthBase):
    """HTTP Basic auth whose user and password come from the credentials secret."""

    def __init__(self, credentials: SecretCredentials, deadline: Deadline) -> None:
        self._credentials = credentials
        self._deadline = deadline

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        value = self._credentials.read(self._deadline)
        request = HTTPBasicAuth(value.username, value.password)(request)
        request.register_hook("response", self._forget_if_refused)  # type: ignore[no-untyped-call]
        return request

    def _forget_if_refused(self, response: requests.Response, **_: Any) -> requests.Response:
        if response.status_code == 401:
            logger.info("Qualys refused the credentials: the secret is read again next time")
            self._credentials.forget()
        return response
