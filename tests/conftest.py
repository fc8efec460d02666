"""Shared fixtures: the real local stand-ins (Qualys simulator, Slack receiver, moto) and
a harness that runs the provider's Lambda handler through crhelper's real send path."""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from provider.handler import Container
from sandbox.cfn_responses import CfnResponse, ResponseCollector
from sandbox.qualys import QualysSimulator
from sandbox.slack import SlackReceiver

# Hypothesis caches its Unicode tables in ./.hypothesis unless told otherwise: keep the
# tree clean (an explicit setting wins).
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "qualys-provider-hypothesis")
)

EVENTS = Path(__file__).parent / "events"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
USERNAME = "qualys-api-user"
PASSWORD = "Pa55-w0rd-that-must-never-be-logged"
CREDENTIALS_SECRET = "qualys/credentials"
SLACK_SECRET = "qualys/slack-webhook"
QUALYS_ACCOUNT = "805950163170"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from tests/events, with a fresh RequestId."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["RequestId"] = str(uuid.uuid4())
    return event


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that crhelper and the provider read."""

    remaining_ms: int = 300_000
    function_name: str = "qualys-connector-provider"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/qualys-connector-provider"
    log_stream_name: str = "2026/11/27/[$LATEST]0123456789abcdef"

    def __post_init__(self) -> None:
        self._ends = time.monotonic() + self.remaining_ms / 1000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


@pytest.fixture
def qualys() -> Iterator[QualysSimulator]:
    """A Qualys simulator on a free loopback port, empty."""
    with QualysSimulator(users={USERNAME: PASSWORD}, qualys_account_id=QUALYS_ACCOUNT) as sim:
        yield sim


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    """A Slack incoming-webhook receiver on a free loopback port."""
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every boto3 client created inside the test."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


class Provider:
    """The provider as Lambda runs it: a ``Container`` (what ``lambda_handler`` calls) with
    the function's environment, answering through crhelper, whose PUT is caught at
    ``crhelper.utils.HTTPSConnection``.

    ``send`` checks what every answer must satisfy: exactly one response per event, a
    reason under 200 characters, a body under 4,096 bytes, and no secret in the answer.
    """

    def __init__(
        self, collector: ResponseCollector, slack: SlackReceiver, options: dict[str, Any]
    ) -> None:
        self.collector = collector
        self.slack = slack
        self.options = {"sleep_on_delete": 0, "safety_margin": 2.0, **options}
        self.container = Container(os.environ, **self.options)

    def send(self, event: dict[str, Any], *, remaining_ms: int = 300_000) -> CfnResponse:
        event = copy.deepcopy(event)
        before = len(self.collector.responses)
        self.container(event, LambdaContext(remaining_ms=remaining_ms))
        answers = self.collector.responses[before:]
        assert len(answers) == 1, f"expected exactly one response, got {len(answers)}"
        answer = answers[0]
        assert answer.request_id == event["RequestId"]
        assert len(answer.raw) < 4096, f"response body is {len(answer.raw)} bytes"
        assert len(answer.reason) < 200, f"reason is {len(answer.reason)} characters"
        assert answer.physical_resource_id, "PhysicalResourceId must never be empty"
        assert PASSWORD not in answer.raw.decode()
        assert self.slack.webhook_url not in answer.raw.decode()
        return answer

    def new_container(self, **options: Any) -> None:
        """The next event runs in a fresh Lambda container (no cached secrets or clients),
        built with ``options`` changed."""
        self.options.update(options)
        self.container = Container(os.environ, **self.options)


@pytest.fixture
def secrets(aws: None, slack: SlackReceiver) -> dict[str, str]:
    """The two secrets in moto's Secrets Manager, in the documented JSON formats."""
    client = boto3.client("secretsmanager", region_name=REGION)
    credentials = client.create_secret(
        Name=CREDENTIALS_SECRET,
        SecretString=json.dumps({"username": USERNAME, "password": PASSWORD}),
    )["ARN"]
    webhook = client.create_secret(
        Name=SLACK_SECRET, SecretString=json.dumps({"webhook_url": slack.webhook_url})
    )["ARN"]
    return {"credentials": credentials, "slack": webhook}


@pytest.fixture
def provider_options() -> dict[str, Any]:
    """``Container`` arguments for the provider fixture; a test module overrides this."""
    return {}


@pytest.fixture
def provider(  # noqa: PLR0917 - pytest passes fixtures by position
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    qualys: QualysSimulator,
    slack: SlackReceiver,
    secrets: dict[str, str],
    provider_options: dict[str, Any],
) -> Iterator[Provider]:
    """The provider wired to the simulator, the Slack receiver and moto, at DEBUG level.

    After the test, no log line and no Slack message may hold the Qualys password, the
    webhook URL or a presigned ResponseURL's signature.
    """
    monkeypatch.setenv("QUALYS_API_URL", qualys.base_url)
    monkeypatch.setenv("QUALYS_CREDENTIALS_SECRET_ID", secrets["credentials"])
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ID", secrets["slack"])
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)
    collector = ResponseCollector()
    with collector.capture():
        yield Provider(collector, slack, provider_options)

    # caplog.text holds the teardown's records alone by now: read every phase's.
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    logged = "\n".join(
        formatter.format(record)
        for phase in ("setup", "call", "teardown")
        for record in caplog.get_records(phase)  # type: ignore[arg-type]
    )
    posted = json.dumps(slack.messages)
    for secret in (PASSWORD, slack.webhook_url, slack.path, "X-Amz-Signature"):
        assert secret not in logged, f"a log line holds a secret ({secret[:12]}…)"
        assert secret not in posted, f"a Slack message holds a secret ({secret[:12]}…)"
