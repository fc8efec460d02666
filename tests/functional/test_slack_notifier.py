"""Functional tests of the Slack notifier against the real loopback Slack receiver."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from provider.lifecycle.model import Outcome
from provider.slack.message import Notification, build_message
from provider.slack.notifier import NullNotifier, SlackNotifier, SlackResult
from sandbox.slack import Rejection, SlackReceiver

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/qualys-connector/0a1b2c3d"
QUICK = 0.5  # seconds: the notifier's timeout in these tests


def _notification(outcome: Outcome = Outcome.CREATED, **changes: Any) -> Notification:
    values: dict[str, Any] = {
        "outcome": outcome,
        "stack_id": STACK_ID,
        "request_type": "Create",
        "logical_resource_id": "QualysConnector",
        "connector_name": "prod-account",
        "connector_id": "1234567",
        "state": "DISABLED",
    }
    values.update(changes)
    return Notification(**values)


@pytest.fixture
def token() -> str:
    """The secret last part of the webhook path; it must never reach a log."""
    return secrets.token_hex(12)


@pytest.fixture
def receiver(token: str) -> Iterator[SlackReceiver]:
    with SlackReceiver(path=f"/services/T0SANDBOX/B0SANDBOX/{token}") as running:
        yield running


@pytest.fixture
def notifier(receiver: SlackReceiver) -> SlackNotifier:
    return SlackNotifier(receiver.webhook_url, timeout=QUICK)


def _assert_no_secret(caplog: pytest.LogCaptureFixture, url: str, *things: object) -> None:
    """Neither the URL nor the secret last part of its path is in the log or in ``things``."""
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    for secret in (url, url.rsplit("/", 1)[1]):
        assert secret not in logged, "the webhook URL reached the log"
        for thing in things:
            assert secret not in repr(thing), f"the webhook URL is in {type(thing).__name__}"


# --- messages arrive, and Slack would accept them ----------------------------------------

WORST_CASE = {
    "connector_name": "<!channel> R&D " + "n" * 5000,
    "connector_id": "&" * 3000,
    "state": "",
    "reason": "<https://evil.example|click> & " * 400,
    "logical_resource_id": "L" * 5000,
}


@pytest.mark.parametrize("values", [{}, WORST_CASE], ids=["typical", "worst-case"])
@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda outcome: outcome.value)
def test_message_arrives_and_passes_slack_validation(
    receiver: SlackReceiver, notifier: SlackNotifier, outcome: Outcome, values: dict[str, Any]
) -> None:
    notification = _notification(outcome, **values)

    result = notifier.notify(notification)

    assert result == SlackResult(ok=True, status=200, error=None)
    assert receiver.wait_for(1) == [build_message(notification)]
    assert receiver.rejected == []


def test_messages_arrive_in_order(receiver: SlackReceiver, notifier: SlackNotifier) -> None:
    for outcome in Outcome:
        notifier.notify(_notification(outcome))

    received = receiver.wait_for(len(Outcome))
    assert [m["attachments"][0]["blocks"][0]["text"]["text"].split()[-1] for m in received] == [
        outcome.value for outcome in Outcome
    ]


# --- failures are results, never exceptions, and never leak the URL -----------------------


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        pytest.param(500, "internal_error", "HTTP 500: internal_error", id="server-error"),
        pytest.param(429, "rate_limited", "HTTP 429: rate_limited", id="rate-limited"),
        pytest.param(403, "invalid_token", "HTTP 403: invalid_token", id="revoked-token"),
        pytest.param(502, "", "HTTP 502", id="empty-body"),
    ],
)
def test_error_answer_is_a_failed_result(
    receiver: SlackReceiver, caplog: pytest.LogCaptureFixture, status: int, body: str, error: str
) -> None:
    caplog.set_level(logging.DEBUG)
    # Other code (crhelper) may have quietened urllib3; this test needs its DEBUG lines.
    caplog.set_level(logging.DEBUG, logger="urllib3")
    notifier = SlackNotifier(receiver.webhook_url, timeout=QUICK)
    receiver.fail_next(status, body=body)

    result = notifier.notify(_notification(Outcome.FAILED, reason="Qualys said no"))

    assert result == SlackResult(ok=False, status=status, error=error)
    assert receiver.messages == []
    assert [rejection.status for rejection in receiver.rejected] == [status]
    assert f"failed: {error}" in caplog.text
    # urllib3 logs the request line at DEBUG: proof that the check below is not vacuous.
    assert "<redacted webhook path>" in caplog.text
    _assert_no_secret(caplog, receiver.webhook_url, result, notifier)


def test_wrong_path_is_no_service(
    receiver: SlackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = receiver.webhook_url.replace("B0SANDBOX", "B0REVOKED")
    notifier = SlackNotifier(url, timeout=QUICK)

    result = notifier.notify(_notification())

    assert result == SlackResult(ok=False, status=404, error="HTTP 404: no_service")
    assert receiver.messages == []
    _assert_no_secret(caplog, url, result, notifier)


def test_answer_slower_than_the_timeout_fails_within_the_timeout(
    receiver: SlackReceiver, notifier: SlackNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.hang_next(10)
    started = time.monotonic()

    result = notifier.notify(_notification())

    elapsed = time.monotonic() - started
    assert result == SlackResult(ok=False, status=None, error="timeout (ReadTimeout)")
    assert elapsed < QUICK + 1.0, f"took {elapsed:.2f}s"
    _assert_no_secret(caplog, receiver.webhook_url, result, notifier)


def test_stopped_receiver_is_a_failed_result(
    receiver: SlackReceiver, notifier: SlackNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = receiver.webhook_url
    receiver.stop()
    started = time.monotonic()

    result = notifier.notify(_notification(Outcome.DELETED))

    elapsed = time.monotonic() - started
    assert result == SlackResult(ok=False, status=None, error="connection failed (ConnectionError)")
    assert elapsed < QUICK + 1.0, f"took {elapsed:.2f}s"
    assert "Slack notification (outcome deleted) failed" in caplog.text
    _assert_no_secret(caplog, url, result, notifier)


# --- the one retry: only when nothing was sent --------------------------------------------


class _ScriptedSession(requests.Session):
    """Raises the scripted errors in turn, then posts for real; counts the posts."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__()
        self.errors = list(errors)
        self.posts = 0

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        self.posts += 1
        if self.errors:
            raise self.errors.pop(0)
        return super().post(*args, **kwargs)


def _refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def _dropped() -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))


@pytest.mark.parametrize(
    ("errors", "posts", "ok"),
    [
        pytest.param([_refused()], 2, True, id="refused-once-then-sent"),
        pytest.param([_refused(), _refused()], 2, False, id="refused-twice-gives-up"),
        pytest.param([_dropped()], 1, False, id="dropped-after-sending-not-repeated"),
        pytest.param([requests.ReadTimeout()], 1, False, id="timeout-not-repeated"),
        pytest.param([RuntimeError("boom")], 1, False, id="unexpected-error-not-raised"),
    ],
)
def test_only_a_connection_never_opened_is_tried_again(
    receiver: SlackReceiver, errors: list[Exception], posts: int, ok: bool
) -> None:
    session = _ScriptedSession(*errors)
    notifier = SlackNotifier(receiver.webhook_url, timeout=QUICK, session=session)

    result = notifier.notify(_notification())

    assert session.posts == posts
    assert result.ok is ok
    assert len(receiver.messages) == (1 if ok else 0)


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        pytest.param("https://hooks.slack.com/services/T0/B0/abc", True, id="https"),
        pytest.param("http://127.0.0.1:8080/services/T0/B0/abc", True, id="http-loopback-v4"),
        pytest.param("http://127.9.9.9/hook", True, id="http-loopback-range"),
        pytest.param("http://localhost:8080/hook", True, id="http-localhost"),
        pytest.param("http://[::1]:8080/hook", True, id="http-loopback-v6"),
        pytest.param("http://example.com/services/T0/B0/abc", False, id="http-remote"),
        pytest.param("http://10.0.0.1/hook", False, id="http-private"),
        pytest.param("ftp://hooks.slack.com/x", False, id="ftp"),
        pytest.param("hooks.slack.com/services/T0/B0/abc", False, id="no-scheme"),
        pytest.param("https:///services/T0/B0/abc", False, id="no-host"),
        pytest.param("", False, id="empty"),
    ],
)
def test_webhook_url_must_be_https_or_loopback_http(url: str, accepted: bool) -> None:
    if accepted:
        SlackNotifier(url)
        return
    with pytest.raises(ValueError, match="Slack webhook URL") as raised:
        SlackNotifier(url)
    if url:
        assert url not in str(raised.value), "the error must not repeat the URL"


@pytest.mark.parametrize("timeout", [0, -1.0], ids=["zero", "negative"])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        SlackNotifier("https://hooks.slack.com/services/T0/B0/abc", timeout=timeout)


def test_repr_shows_the_host_not_the_url() -> None:
    notifier = SlackNotifier("https://hooks.slack.com/services/T0/B0/s3cr3t")

    assert repr(notifier) == "SlackNotifier(host='hooks.slack.com', timeout=3.0)"


def test_null_notifier_sends_nothing_and_says_disabled(receiver: SlackReceiver) -> None:
    result = NullNotifier().notify(_notification())

    assert result == SlackResult(ok=False, status=None, error="disabled")
    assert receiver.messages == []


# --- the receiver refuses what Slack refuses ----------------------------------------------

GOOD_SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}


def _with_blocks(*blocks: Any) -> dict[str, Any]:
    return {"text": "fallback", "attachments": [{"color": "#000000", "blocks": list(blocks)}]}


def _fields(count: int, size: int = 5) -> dict[str, Any]:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * size}] * count}


RECEIVER_CASES = [
    pytest.param({"text": "hi"}, 200, "ok", id="text-only"),
    pytest.param(_with_blocks(GOOD_SECTION, _fields(10, 2000)), 200, "ok", id="at-the-limits"),
    pytest.param(b"{not json", 400, "invalid_payload", id="not-json"),
    pytest.param([1, 2], 400, "invalid_payload", id="not-an-object"),
    pytest.param({"username": "x"}, 400, "invalid_payload", id="no-text-blocks-attachments"),
    pytest.param({"text": ""}, 400, "invalid_payload", id="empty-text"),
    pytest.param(_with_blocks({"type": "image"}), 400, "invalid_blocks", id="unknown-type"),
    pytest.param(_with_blocks(_fields(11)), 400, "invalid_blocks", id="eleven-fields"),
    pytest.param(_with_blocks(_fields(1, 2001)), 400, "invalid_blocks", id="long-field"),
    pytest.param(_with_blocks(_fields(1, 0)), 400, "invalid_blocks", id="empty-field"),
    pytest.param(
        _with_blocks({"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}),
        400,
        "invalid_blocks",
        id="long-section",
    ),
    pytest.param(
        _with_blocks({"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}),
        400,
        "invalid_blocks",
        id="long-header",
    ),
    pytest.param(
        _with_blocks({"type": "header", "text": {"type": "mrkdwn", "text": "h"}}),
        400,
        "invalid_blocks",
        id="mrkdwn-header",
    ),
    pytest.param(
        _with_blocks({"type": "context", "elements": []}), 400, "invalid_blocks", id="empty-context"
    ),
    pytest.param({"blocks": [{"type": "section"}]}, 400, "invalid_blocks", id="bare-section"),
]


@pytest.mark.parametrize(("body", "status", "answer"), RECEIVER_CASES)
def test_receiver_answers_like_slack(
    receiver: SlackReceiver, body: Any, status: int, answer: str
) -> None:
    sent = (
        requests.post(receiver.webhook_url, data=body, timeout=5)
        if isinstance(body, bytes)
        else requests.post(receiver.webhook_url, json=body, timeout=5)
    )

    assert (sent.status_code, sent.text) == (status, answer)
    if status == 200:
        assert receiver.messages == [body]
        assert receiver.rejected == []
    else:
        assert receiver.messages == []
        assert [(r.status, r.error) for r in receiver.rejected] == [(status, answer)]


def test_receiver_answers_404_elsewhere_and_keeps_the_request(receiver: SlackReceiver) -> None:
    url = receiver.webhook_url.rsplit("/", 1)[0] + "/other"

    sent = requests.post(url, json={"text": "hi"}, timeout=5)

    assert (sent.status_code, sent.text) == (404, "no_service")
    assert receiver.rejected == [
        Rejection(path=urlsplit(url).path, status=404, error="no_service", body='{"text": "hi"}')
    ]


def test_receiver_faults_apply_to_the_next_posts_only(receiver: SlackReceiver) -> None:
    receiver.fail_next(503, times=2, body="service_unavailable")
    statuses = [
        requests.post(receiver.webhook_url, json={"text": str(i)}, timeout=5).status_code
        for i in range(3)
    ]

    assert statuses == [503, 503, 200]
    assert receiver.wait_for(1) == [{"text": "2"}]


def test_receiver_wait_is_bounded(receiver: SlackReceiver) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="expected 1 Slack message"):
        receiver.wait_for(1, timeout=0.1)
    assert time.monotonic() - started < 1.0


def test_receiver_reset_forgets_everything(receiver: SlackReceiver) -> None:
    requests.post(receiver.webhook_url, json={"text": "hi"}, timeout=5)
    requests.post(receiver.webhook_url, json={}, timeout=5)
    receiver.fail_next(500)

    receiver.reset()

    assert receiver.messages == []
    assert receiver.rejected == []
    assert requests.post(receiver.webhook_url, json={"text": "x"}, timeout=5).status_code == 200


def test_receiver_stop_cuts_a_delayed_answer_short() -> None:
    receiver = SlackReceiver().start()
    receiver.hang_next(30)
    notifier = SlackNotifier(receiver.webhook_url, timeout=5)
    results: list[SlackResult] = []
    sender = threading.Thread(target=lambda: results.append(notifier.notify(_notification())))
    sender.start()
    deadline = time.monotonic() + 5
    while receiver.delaying == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert receiver.delaying == 1, "the post did not arrive"
    started = time.monotonic()
    receiver.stop()
    sender.join(timeout=5)

    assert time.monotonic() - started < 2.0
    assert results
    assert results[0].ok is False
    assert receiver.messages == []


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "example.com"])
def test_receiver_listens_on_loopback_only(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SlackReceiver(host=host)
