"""Reads the Qualys credentials and the Slack webhook from Secrets Manager, once."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provider.errors import SecretError
from provider.urls import check_url

logger = logging.getLogger(__name__)

ClientFactory = Callable[[], Any]


def _default_client() -> Any:
    import boto3  # noqa: PLC0415 - built on first use, never at import time

    return boto3.client("secretsmanager")


@dataclass(frozen=True)
class QualysCredentials:
    """A Qualys API user; the password never appears in ``repr``."""

    username: str
    password: str = field(repr=False)


class SecretStore:
    """JSON secrets by id, fetched on first use and cached for the container's life."""

    def __init__(self, client_factory: ClientFactory = _default_client) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def forget(self, secret_id: str) -> None:
        """Drop a cached value, so that the next read sees a corrected secret."""
        with self._lock:
            self._cache.pop(secret_id, None)

    def read_json(self, secret_id: str, *, what: str) -> dict[str, Any]:
        """The secret's SecretString as a JSON object; ``SecretError`` names what to fix."""
        with self._lock:
            cached = self._cache.get(secret_id)
            if cached is not None:
                return cached
            if self._client is None:
                self._client = self._client_factory()
            value = self._fetch(secret_id, what=what)
            self._cache[secret_id] = value
            return value

    def _fetch(self, secret_id: str, *, what: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            response = self._client.get_secret_value(SecretId=secret_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            logger.warning("Reading the %s secret %s failed: %s", what, secret_id, code)
            if code == "ResourceNotFoundException":
                raise SecretError(f"The {what} secret does not exist: check its ARN") from None
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


def read_qualys_credentials(store: SecretStore, secret_id: str) -> QualysCredentials:
    """``{"username": "...", "password": "..."}`` from the credentials secret."""
    value = store.read_json(secret_id, what="Qualys credentials")
    username, password = value.get("username"), value.get("password")
    if not isinstance(username, str) or not username.strip():
        raise SecretError('The Qualys credentials secret lacks a "username" string')
    if not isinstance(password, str) or not password:
        raise SecretError('The Qualys credentials secret lacks a "password" string')
    return QualysCredentials(username=username.strip(), password=password)


def read_slack_webhook_url(store: SecretStore, secret_id: str) -> str:
    """``{"webhook_url": "https://hooks.slack.com/services/..."}`` from the Slack secret."""
    value = store.read_json(secret_id, what="Slack webhook")
    url = value.get("webhook_url")
    if not isinstance(url, str) or not url.strip():
        raise SecretError('The Slack webhook secret lacks a "webhook_url" string')
    try:
        return check_url(url, what="The Slack webhook_url")
    except ValueError as error:
        raise SecretError(str(error)) from None
