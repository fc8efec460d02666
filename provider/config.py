"""The provider function's settings, read once from its environment."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from provider.errors import ConfigurationError
from provider.ids import ACCOUNT_ID
from provider.qualys.models import ApiVersion
from provider.urls import check_url

QUALYS_API_URL = "QUALYS_API_URL"
QUALYS_API_VERSION = "QUALYS_API_VERSION"
QUALYS_CREDENTIALS_SECRET_ID = "QUALYS_CREDENTIALS_SECRET_ID"  # noqa: S105 - a name
SLACK_WEBHOOK_SECRET_ID = "SLACK_WEBHOOK_SECRET_ID"  # noqa: S105 - a name
QUALYS_AWS_ACCOUNT_ID = "QUALYS_AWS_ACCOUNT_ID"
LOG_LEVEL = "LOG_LEVEL"

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _required(environ: Mapping[str, str], name: str) -> str:
    value = _optional(environ, name)
    if value is None:
        raise ConfigurationError(f"Environment variable {name} is not set: set it on the function")
    return value


@dataclass(frozen=True)
class Settings:
    """What the environment tells the provider; holds secret ids, never secrets."""

    qualys_api_url: str
    qualys_api_version: ApiVersion
    credentials_secret_id: str
    slack_secret_id: str | None
    qualys_aws_account_id: str | None
    log_level: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and check every variable; the error names the variable and its rule."""
        try:
            url = check_url(_required(environ, QUALYS_API_URL), what=QUALYS_API_URL)
        except ValueError as error:
            raise ConfigurationError(str(error)) from None

        version_text = _optional(environ, QUALYS_API_VERSION) or ApiVersion.V3.value
        try:
            version = ApiVersion(version_text)
        except ValueError:
            raise ConfigurationError(
                f"Environment variable {QUALYS_API_VERSION} must be 3.0 or 2.0"
            ) from None

        account = _optional(environ, QUALYS_AWS_ACCOUNT_ID)
        if account is not None and not ACCOUNT_ID.fullmatch(account):
            raise ConfigurationError(
                f"Environment variable {QUALYS_AWS_ACCOUNT_ID} must be a 12-digit AWS account id"
            )

        level_name = (_optional(environ, LOG_LEVEL) or "INFO").upper()
        if level_name not in _LOG_LEVELS:
            raise ConfigurationError(
                f"Environment variable {LOG_LEVEL} must be one of {', '.join(_LOG_LEVELS)}"
            )

        return cls(
            qualys_api_url=url,
            qualys_api_version=version,
            credentials_secret_id=_required(environ, QUALYS_CREDENTIALS_SECRET_ID),
            slack_secret_id=_optional(environ, SLACK_WEBHOOK_SECRET_ID),
            qualys_aws_account_id=account,
            log_level=logging.getLevelName(level_name),
        )
