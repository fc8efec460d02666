"""The audit shares the Lambda zip: importing it needs no rich and builds no AWS client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import boto3, boto3.session

def refuse(*args, **kwargs):
    raise SystemExit("a boto3 client was created at import time")

boto3.client = refuse
boto3.session.Session.client = refuse
for name in ("rich", "markdown_it", "mdurl", "pygments"):
    sys.modules[name] = None  # as in the Lambda zip: importing it raises ImportError

import provider.audit, provider.audit.__main__, provider.audit.cli, provider.audit.function
assert callable(provider.audit.lambda_handler)
loaded = [name for name, module in sys.modules.items() if module is not None]
assert not [name for name in loaded if name.split(".")[0] == "rich"], loaded
print("imported")
"""


def test_importing_the_audit_needs_no_rich_and_creates_no_boto3_client() -> None:
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
