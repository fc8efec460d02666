"""`python -m sandbox.qualys`: prints its URL first, serves, and exits 0 on SIGTERM or SIGINT."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
SEARCH = "/qps/rest/3.0/search/am/awsassetdataconnector"
CREATE = "/qps/rest/3.0/create/am/awsassetdataconnector"
COUNT = "/qps/rest/3.0/count/am/awsassetdataconnector"
AUTH = ("qualys-user", "qualys-password")
WAIT = 10.0


def first_line(process: subprocess.Popen[str]) -> str:
    """The first stdout line, waiting at most WAIT seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=WAIT):
            pytest.fail("the simulator printed nothing within the wait")
    return process.stdout.readline().strip()


@pytest.fixture
def launch() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def start(started: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sandbox.qualys", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        [*command, *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(process)
    return process


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_prints_the_url_first_serves_and_exits_cleanly(
    launch: list[subprocess.Popen[str]], stop_signal: signal.Signals
) -> None:
    process = start(launch, "--username", "cli-user", "--password", "cli-secret")
    base_url = first_line(process)
    assert base_url.startswith("http://127.0.0.1:")
    assert int(base_url.rsplit(":", 1)[1]) > 0

    answer = requests.post(base_url + SEARCH, auth=("cli-user", "cli-secret"), timeout=WAIT)
    assert answer.status_code == 200
    assert b"<responseCode>SUCCESS</responseCode>" in answer.content
    refused = requests.post(base_url + SEARCH, auth=("cli-user", "wrong"), timeout=WAIT)
    assert refused.status_code == 401

    process.send_signal(stop_signal)
    assert process.wait(timeout=WAIT) == 0
    _, errors = process.communicate(timeout=WAIT)
    assert "cli-secret" not in errors


@pytest.mark.parametrize(
    ("flags", "limit_header"), [([], None), (["--limit-headers"], "1")], ids=["bare", "headers"]
)
def test_cli_applies_the_rate_limit(
    launch: list[subprocess.Popen[str]], flags: list[str], limit_header: str | None
) -> None:
    process = start(launch, "--rate-limit", "1", "--rate-window", "60", *flags)
    base_url = first_line(process)
    assert requests.post(base_url + SEARCH, auth=AUTH, timeout=WAIT).status_code == 200
    blocked = requests.post(base_url + SEARCH, auth=AUTH, timeout=WAIT)
    assert blocked.status_code == 409
    assert blocked.headers.get("X-RateLimit-Limit") == limit_header
    process.terminate()
    assert process.wait(timeout=WAIT) == 0


def test_cli_applies_latency_account_type_and_description_options(
    launch: list[subprocess.Popen[str]],
) -> None:
    process = start(
        launch,
        *("--operation-latency", "count=0.5"),
        *("--gov-cloud-qualys-account-id", "111111111111"),
        *("--description-limit", "5"),
        *("--sync-seconds", "0"),
    )
    base_url = first_line(process)
    body = (
        b"<ServiceRequest><data><AwsAssetDataConnector><name>gov</name>"
        b"<description>abcdefgh</description><isGovCloudConfigured>true</isGovCloudConfigured>"
        b"</AwsAssetDataConnector></data></ServiceRequest>"
    )
    started = time.monotonic()
    created = requests.post(base_url + CREATE, data=body, auth=AUTH, timeout=WAIT)
    assert time.monotonic() - started < 0.5, "only count is slow"
    assert b"<qualysAwsAccountId>111111111111</qualysAwsAccountId>" in created.content
    assert b"<description>abcde</description>" in created.content
    started = time.monotonic()
    assert requests.post(base_url + COUNT, auth=AUTH, timeout=WAIT).status_code == 200
    assert time.monotonic() - started >= 0.5
    process.terminate()
    assert process.wait(timeout=WAIT) == 0


@pytest.mark.parametrize(
    "flags",
    [
        ["--operation-latency", "purge=1"],
        ["--operation-latency", "search=soon"],
        ["--description-limit", "0"],
    ],
)
def test_cli_refuses_bad_options(launch: list[subprocess.Popen[str]], flags: list[str]) -> None:
    process = start(launch, *flags)
    assert process.wait(timeout=WAIT) == 2
    _, errors = process.communicate(timeout=WAIT)
    assert "error:" in errors
