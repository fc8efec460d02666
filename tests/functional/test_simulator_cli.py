"""`python -m sandbox.qualys`: prints its URL first, serves, and exits 0 on SIGTERM or SIGINT."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
SEARCH = "/qps/rest/3.0/search/am/awsassetdataconnector"
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


def test_cli_applies_the_rate_limit(launch: list[subprocess.Popen[str]]) -> None:
    process = start(launch, "--rate-limit", "1", "--rate-window", "60")
    base_url = first_line(process)
    auth = ("qualys-user", "qualys-password")
    assert requests.post(base_url + SEARCH, auth=auth, timeout=WAIT).status_code == 200
    blocked = requests.post(base_url + SEARCH, auth=auth, timeout=WAIT)
    assert blocked.status_code == 409
    assert blocked.headers["X-RateLimit-Limit"] == "1"
    process.terminate()
    assert process.wait(timeout=WAIT) == 0
