"""Importing the handler (a Lambda cold start) must create no AWS client and read no secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import boto3, boto3.session

def refuse(*args, **kwargs):
    raise SystemExit("a boto3 client was created at import time")

boto3.client = refuse
boto3.session.Session.client = refuse

import provider.handler
assert callable(provider.handler.lambda_handler)
print("imported")
"""


def test_importing_the_handler_creates_no_boto3_client() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},  # no region, no credentials, no secret ids
    )

    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip() == "imported"
