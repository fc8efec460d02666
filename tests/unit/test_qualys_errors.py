"""How HTTP statuses and Qualys response codes map to the client's errors."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from provider.errors import ProviderError
from provider.qualys import errors
from provider.qualys.auth import StaticCredentials
from provider.qualys.client import QualysClient, RetryPolicy, _header_seconds
from provider.transport import never_sent


def envelope(code: str, message: str = "detail from Qualys") -> bytes:
    return (
        f"<ServiceResponse><responseCode>{code}</responseCode><responseErrorDetails>"
        f"<errorMessage>{message}</errorMessage></responseErrorDetails></ServiceResponse>"
    ).encode()


def http_response(
    status: int, body: bytes = b"", *, auth: tuple[str, str] = ("u", "p4ss")
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.request = requests.Request("GET", "https://qualysapi.qualys.com/", auth=auth).prepare()
    return response


def check(operation: str, response: requests.Response) -> Any:
    """What the client makes of one answer read in full."""
    return QualysClient._check(operation, response, response.content)


CASES = [
    ("401", 401, b"", errors.QualysAuthenticationError, "credentials"),
    ("403", 403, b"<html/>", errors.QualysForbiddenError, "access"),
    ("404 path", 404, b"", errors.QualysError, "QUALYS_API_URL"),
    ("400", 400, b"", errors.QualysInvalidRequestError, "HTTP 400"),
    ("409", 409, b"", errors.QualysThrottledError, "limit"),
    ("429", 429, b"", errors.QualysThrottledError, "limit"),
    ("500", 500, b"", errors.QualysUnavailableError, "HTTP 500"),
    ("503 html", 503, b"<html>down</html>", errors.QualysUnavailableError, "HTTP 503"),
    ("200 not xml", 200, b"oops", errors.QualysResponseError, "cannot be read"),
    ("not found", 200, envelope("OBJECT_NOT_FOUND"), errors.QualysNotFoundError, "no such"),
    ("invalid", 200, envelope("INVALID_REQUEST"), errors.QualysInvalidRequestError, "refused"),
    (
        "no credentials",
        200,
        envelope("AUTH_CREDENTIALS_NEEDED"),
        errors.QualysAuthenticationError,
        "credentials",
    ),
    ("unauthorized", 200, envelope("UNAUTHORIZED"), errors.QualysForbiddenError, "access"),
    (
        "insufficient",
        200,
        envelope("INSUFFICIENT_PERMISSION"),
        errors.QualysForbiddenError,
        "permission",
    ),
    ("limit", 200, envelope("LIMIT_EXCEEDED"), errors.QualysThrottledError, "limit"),
    ("other", 200, envelope("OTHER_ERROR"), errors.QualysUnavailableError, "internal"),
    ("unknown code", 200, envelope("NEW_CODE"), errors.QualysError, "NEW_CODE"),
]


@pytest.mark.parametrize(
    ("case", "status", "body", "error", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_answer_maps_to_error(
    case: str, status: int, body: bytes, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as raised:
        check("create", http_response(status, body))

    assert type(raised.value) is error, case
    assert words in str(raised.value), case
    assert isinstance(raised.value, ProviderError)
    assert len(str(raised.value)) < 200, case


def test_code_errors_carry_qualys_message_and_code() -> None:
    with pytest.raises(errors.QualysInvalidRequestError) as raised:
        check("update", http_response(200, envelope("INVALID_REQUEST", "bad arn")))

    assert raised.value.response_code == "INVALID_REQUEST"
    assert raised.value.error_message == "bad arn"
    assert raised.value.status == 200
    assert str(raised.value).endswith(": bad arn")


def test_long_qualys_messages_are_shortened() -> None:
    with pytest.raises(errors.QualysError) as raised:
        check("get", http_response(200, envelope("OTHER_ERROR", "x" * 5000)))

    assert len(str(raised.value)) < 200
    assert raised.value.error_message == "x" * 5000


def test_success_returns_parsed_response() -> None:
    body = (
        b"<ServiceResponse><responseCode>SUCCESS</responseCode><count>0</count></ServiceResponse>"
    )

    assert check("search", http_response(200, body)).count == 0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("soon", None), (None, None)],
)
def test_wait_headers_are_read_leniently(value: str | None, seconds: float | None) -> None:
    headers = {} if value is None else {"X-RateLimit-ToWait-Sec": value}

    assert _header_seconds(headers, "X-RateLimit-ToWait-Sec") == seconds


def test_backoff_grows_and_is_capped_with_jitter() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=4.0)

    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        wait = policy.backoff(attempt)
        assert ceiling / 2 <= wait <= ceiling


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (requests.ConnectTimeout(), True),
        (
            requests.ConnectionError(
                MaxRetryError(None, "/", reason=NewConnectionError(None, "refused"))
            ),
            True,
        ),
        (
            requests.ConnectionError(
                MaxRetryError(None, "/", reason=ProtocolError("RemoteDisconnected"))
            ),
            False,
        ),
        (requests.ReadTimeout(), False),
    ],
    ids=["connect timeout", "refused", "dropped", "read timeout"],
)
def test_only_requests_that_never_left_count_as_unsent(
    error: requests.RequestException, expected: bool
) -> None:
    assert never_sent(error) is expected


def test_repr_shows_no_credentials() -> None:
    client = QualysClient(
        base_url="https://qualysapi.qualys.com/", credentials=StaticCredentials("u", "p4ss")
    )

    assert "p4ss" not in repr(client)
    assert repr(client) == "QualysClient(base_url='https://qualysapi.qualys.com', api_version=3.0)"


@pytest.mark.parametrize(
    ("case", "echo"),
    [
        pytest.param("password", "wrong password {password}", id="password"),
        pytest.param("user and password", "bad login {user}:{password}", id="pair"),
        pytest.param("basic token", "header was Basic {token}", id="token"),
    ],
)
def test_credentials_that_qualys_echoes_never_reach_the_reason(case: str, echo: str) -> None:
    user, password = "api-user", "S3cr3t-pa55"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    message = echo.format(user=user, password=password, token=token)

    with pytest.raises(errors.QualysError) as raised:
        check("get", http_response(200, envelope("OTHER_ERROR", message), auth=(user, password)))

    for secret in (password, token):
        assert secret not in str(raised.value), case
        assert secret not in (raised.value.error_message or ""), case
    assert "<redacted>" in str(raised.value), case
