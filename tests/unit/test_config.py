"""Settings from the environment: each variable's rule, named when broken."""

from __future__ import annotations

import logging

import pytest

from provider.config import Settings
from provider.errors import ConfigurationError
from provider.qualys.models import ApiVersion

VALID = {
    "QUALYS_API_URL": "https://qualysapi.qg3.apps.qualys.com/",
    "QUALYS_CREDENTIALS_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:q-AbCdEf",
}


def test_minimal_environment_gets_the_defaults() -> None:
    settings = Settings.from_env(VALID)

    assert settings.qualys_api_url == "https://qualysapi.qg3.apps.qualys.com"
    assert settings.qualys_api_version is ApiVersion.V3
    assert settings.slack_secret_id is None
    assert settings.qualys_aws_account_id is None
    assert settings.log_level == logging.INFO


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            **VALID,
            "QUALYS_API_VERSION": "2.0",
            "SLACK_WEBHOOK_SECRET_ID": "slack",
            "QUALYS_AWS_ACCOUNT_ID": "805950163170",
            "LOG_LEVEL": "debug",
        }
    )

    assert settings.qualys_api_version is ApiVersion.V2
    assert settings.slack_secret_id == "slack"
    assert settings.qualys_aws_account_id == "805950163170"
    assert settings.log_level == logging.DEBUG


def test_empty_optional_variables_count_as_unset() -> None:
    settings = Settings.from_env(
        {**VALID, "SLACK_WEBHOOK_SECRET_ID": "", "QUALYS_AWS_ACCOUNT_ID": " "}
    )

    assert settings.slack_secret_id is None
    assert settings.qualys_aws_account_id is None


BROKEN = [
    ("url missing", {"QUALYS_API_URL": ""}, "QUALYS_API_URL"),
    ("url http", {"QUALYS_API_URL": "http://qualysapi.qualys.com"}, "QUALYS_API_URL"),
    ("secret missing", {"QUALYS_CREDENTIALS_SECRET_ID": ""}, "QUALYS_CREDENTIALS_SECRET_ID"),
    ("version", {"QUALYS_API_VERSION": "4.0"}, "QUALYS_API_VERSION"),
    ("account", {"QUALYS_AWS_ACCOUNT_ID": "8059"}, "QUALYS_AWS_ACCOUNT_ID"),
    ("log level", {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
]


@pytest.mark.parametrize(("case", "changes", "name"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_variable_is_named(case: str, changes: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({**VALID, **changes})
