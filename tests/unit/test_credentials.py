"""Reading the two secrets: formats, failures named without their values, caching."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError

from provider.credentials import (
    QualysCredentials,
    SecretCredentials,
    SecretsPolicy,
    SecretStore,
    read_qualys_credentials,
    read_slack_webhook_url,
)
from provider.deadline import Deadline
from provider.errors import SecretError

LONG = Deadline.never()


class FakeSecretsManager:
    """Answers get_secret_value from a dict, or raises what it was told to."""

    def __init__(self, values: dict[str, Any], error: Exception | None = None) -> None:
        self.values = values
        self.error = error
        self.calls = 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls += 1
        if self.error is not None:
            raise self.error
        return {"SecretString": self.values[SecretId]} if SecretId in self.values else {}


def store_of(values: dict[str, Any], error: Exception | None = None) -> tuple[SecretStore, Any]:
    fake = FakeSecretsManager(values, error)
    return SecretStore(lambda _config: fake), fake


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetSecretValue")


def test_credentials_are_read_once_and_cached() -> None:
    store, fake = store_of({"q": json.dumps({"username": " me ", "password": "pw"})})

    first = read_qualys_credentials(store, "q", deadline=LONG)
    second = read_qualys_credentials(store, "q", deadline=LONG)

    assert first == second == QualysCredentials(username="me", password="pw")
    assert fake.calls == 1
    assert "pw" not in repr(first)


def test_forget_makes_the_next_read_fetch_again() -> None:
    store, fake = store_of({"q": json.dumps({"username": "me", "password": "pw"})})
    read_qualys_credentials(store, "q", deadline=LONG)

    store.forget("q")
    read_qualys_credentials(store, "q", deadline=LONG)

    assert fake.calls == 2


@pytest.mark.parametrize(
    ("case", "error", "words"),
    [
        ("missing", client_error("ResourceNotFoundException"), "does not exist"),
        ("denied", client_error("AccessDeniedException"), "denied"),
        ("kms denied", client_error("KMSAccessDeniedException"), "denied"),
        ("other", client_error("ThrottlingException"), "ThrottlingException"),
        ("network", EndpointConnectionError(endpoint_url="https://x"), "try again"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_read_failures_say_what_to_fix(case: str, error: Exception, words: str) -> None:
    store, _ = store_of({}, error)

    with pytest.raises(SecretError) as raised:
        read_qualys_credentials(store, "q", deadline=LONG)

    assert words in str(raised.value), case
    assert "Qualys credentials" in str(raised.value)


@pytest.mark.parametrize(
    ("case", "value", "words"),
    [
        ("binary secret", None, "no SecretString"),
        ("not json", "hunter2", "not JSON"),
        ("not an object", json.dumps("hunter2"), "not a JSON object"),
        ("no username", json.dumps({"password": "hunter2"}), '"username"'),
        ("empty password", json.dumps({"username": "me", "password": ""}), '"password"'),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_bad_formats_are_named_and_the_value_never_shown(
    case: str, value: str | None, words: str
) -> None:
    store, _ = store_of({} if value is None else {"q": value})

    with pytest.raises(SecretError) as raised:
        read_qualys_credentials(store, "q", deadline=LONG)

    assert words in str(raised.value), case
    assert "hunter2" not in str(raised.value)


def test_a_missing_secret_is_named_in_the_reason() -> None:
    store, _ = store_of({}, client_error("ResourceNotFoundException"))
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:qualys/credentials-AbCdEf"

    with pytest.raises(SecretError) as raised:
        read_qualys_credentials(store, arn, deadline=LONG)

    assert arn in str(raised.value)
    assert len(str(raised.value)) < 200


def test_webhook_url_is_read_and_checked() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    store, _ = store_of({"s": json.dumps({"webhook_url": url})})

    assert read_slack_webhook_url(store, "s", deadline=LONG) == url


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"url": "https://hooks.slack.com/services/T/B/X"}, '"webhook_url"'),
        ({"webhook_url": "http://hooks.slack.com/services/T/B/X"}, "https"),
    ],
)
def test_bad_webhook_secret_is_refused_without_showing_the_url(
    value: dict[str, str], words: str
) -> None:
    store, _ = store_of({"s": json.dumps(value)})

    with pytest.raises(SecretError) as raised:
        read_slack_webhook_url(store, "s", deadline=LONG)

    assert words in str(raised.value)
    assert "services/T/B/X" not in str(raised.value)


# --- time: the Secrets Manager client's settings fit the deadline -------------------------


def test_the_client_has_explicit_timeouts_and_bounded_standard_retries() -> None:
    configs: list[Any] = []
    fake = FakeSecretsManager({"q": json.dumps({"username": "me", "password": "pw"})})
    store = SecretStore(lambda config: configs.append(config) or fake)

    read_qualys_credentials(store, "q", deadline=Deadline.after(60))

    (config,) = configs
    policy = SecretsPolicy()
    assert (config.connect_timeout, config.read_timeout) == (
        policy.connect_timeout,
        policy.read_timeout,
    )
    assert config.retries == {"mode": "standard", "total_max_attempts": policy.attempts}
    assert policy.worst_case < 60


def test_with_less_time_than_the_worst_case_one_try_fits_in_what_is_left() -> None:
    configs: list[Any] = []
    fake = FakeSecretsManager({"q": json.dumps({"username": "me", "password": "pw"})})
    store = SecretStore(lambda config: configs.append(config) or fake)

    read_qualys_credentials(store, "q", deadline=Deadline.after(4))

    (config,) = configs
    assert config.retries["total_max_attempts"] == 1
    assert config.connect_timeout + config.read_timeout <= 4


def test_with_no_time_left_nothing_is_called() -> None:
    store, fake = store_of({"q": json.dumps({"username": "me", "password": "pw"})})

    with pytest.raises(SecretError, match="No time left to read the Qualys credentials secret"):
        read_qualys_credentials(store, "q", deadline=Deadline.after(0.5))

    assert fake.calls == 0


# --- the Basic auth that reads the secret ------------------------------------------------


def _sent_with(auth: Any, status: int) -> requests.PreparedRequest:
    """Apply ``auth`` to a request, then let its response hooks see ``status``."""
    request = auth(requests.Request("GET", "https://qualysapi.qualys.com/x").prepare())
    response = requests.Response()
    response.status_code = status
    for hook in request.hooks["response"]:
        hook(response)
    return request


def test_building_the_credentials_reads_nothing_the_first_request_reads_once() -> None:
    store, fake = store_of({"q": json.dumps({"username": "me", "password": "pw"})})
    credentials = SecretCredentials(store, "q")
    assert fake.calls == 0

    first = _sent_with(credentials.auth(LONG), 200)
    _sent_with(credentials.auth(LONG), 200)

    assert fake.calls == 1
    assert first.headers["Authorization"] == "Basic bWU6cHc="  # me:pw
    assert "pw" not in repr(credentials)


def test_a_401_makes_the_next_request_read_the_secret_again() -> None:
    store, fake = store_of({"q": json.dumps({"username": "me", "password": "pw"})})
    credentials = SecretCredentials(store, "q")

    _sent_with(credentials.auth(LONG), 401)
    fake.values["q"] = json.dumps({"username": "me", "password": "rotated"})
    retried = _sent_with(credentials.auth(LONG), 200)

    assert fake.calls == 2
    assert retried.headers["Authorization"] == "Basic bWU6cm90YXRlZA=="  # me:rotated
