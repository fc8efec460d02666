"""The fleet audit at scale: 5,000 connectors and 5,000 accounts against the simulator.

Prints the audit's wall time (the accounts from an ``--accounts`` file, Qualys from the
simulator on loopback, the table rendered) and the Qualys calls it made by operation: the
connectors come in pages of 1,000, so ceil(5,000 / 1,000) = 5 searches, never a call a
connector. The accounts come from a file because moto's Organizations takes minutes to
create 5,000 accounts (its CreateAccount grows with the organisation), which would time
moto, not the audit.
"""

from __future__ import annotations

import io
import json
import math
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Final
from unittest import mock

import boto3
from moto import mock_aws

from provider.audit import cli
from provider.audit.fleet import PAGE_SIZE
from provider.credentials import SecretStore
from provider.markers import marker
from sandbox.qualys import QualysSimulator

CONNECTORS: Final = 5000
ACCOUNTS: Final = 5000
ROUNDS: Final = 3
REGION: Final = "us-east-1"
PASSWORD: Final = "bench-password"


def _organisation(folder: Path) -> tuple[Path, list[str]]:
    """5,000 accounts, every 100th closed, as an ``--accounts`` file; and their ids."""
    ids = [f"{100_000_000_000 + n * 7919:012d}" for n in range(ACCOUNTS)]
    accounts = [
        {
            "Id": account_id,
            "Name": f"bench-{n}",
            "Status": "SUSPENDED" if n % 100 == 99 else "ACTIVE",
        }
        for n, account_id in enumerate(ids)
    ]
    path = folder / "accounts.json"
    path.write_text(json.dumps(accounts), encoding="utf-8")
    return path, ids


def _connectors(qualys: QualysSimulator, accounts: list[str]) -> None:
    """A connector an account, seeded straight into the store (no HTTP create each): some
    in ERROR, some made by hand, a few second ones; the closed accounts' are orphans."""
    for n in range(CONNECTORS):
        # Every 500th, a second stack in the account before: a duplicate.
        account_id = accounts[n - 1 if n % 500 == 11 else n]
        stack = f"arn:aws:cloudformation:{REGION}:{account_id}:stack/qualys-connector/{n}"
        hand_made = n % 250 == 7
        qualys.seed(
            name=f"aws-{account_id}",
            description="made by hand" if hand_made else marker(stack, "QualysConnector"),
            arn=f"arn:aws:iam::{account_id}:role/qualys-connector-{REGION}",
            connector_state="ERROR" if n % 200 == 3 else "FINISHED_SUCCESS",
            last_error="Unable to assume role" if n % 200 == 3 else None,
        )


def run() -> None:
    """Build the fleet, audit it ``ROUNDS`` times, print time and calls."""
    fake = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    with (
        mock.patch.dict(os.environ, fake),
        mock_aws(),
        QualysSimulator(users={"bench": PASSWORD}) as qualys,
        tempfile.TemporaryDirectory(prefix="qualys-audit-bench-") as folder,
    ):
        started = time.perf_counter()
        path, accounts = _organisation(Path(folder))
        _connectors(qualys, accounts)
        built = time.perf_counter() - started
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="bench/qualys",
            SecretString=json.dumps({"username": "bench", "password": PASSWORD}),
        )["ARN"]
        environ = {"QUALYS_API_URL": qualys.base_url, "QUALYS_CREDENTIALS_SECRET_ID": secret}

        samples: list[float] = []
        calls: Counter[str | None] = Counter()
        for _ in range(ROUNDS):
            before = len(qualys.requests)
            out = io.StringIO()
            started = time.perf_counter()
            status = cli.main(
                ["--accounts", str(path)],
                environ=environ,
                stdout=out,
                stderr=io.StringIO(),
                secrets=SecretStore(),
            )
            samples.append(time.perf_counter() - started)
            calls = Counter(r.operation for r in qualys.requests[before:])
            if status != 1:
                raise SystemExit(f"the audit answered {status}, not 1 (not everything ok)")
        summary = out.getvalue().strip().splitlines()[-1]

    label = f"audit of {CONNECTORS:,} connectors, {ACCOUNTS:,} accounts"
    print(
        f"{label:<44} median {statistics.median(samples):8.2f} s"
        f"  max {max(samples):8.2f} s  (n={ROUNDS})"
    )
    by_operation = ", ".join(f"{op} {n}" for op, n in sorted(calls.items(), key=str))
    print(f"{'  Qualys calls per audit':<44} {sum(calls.values()):8d}  ({by_operation})")
    print(f"{'  fleet built (accounts file, simulator seeds)':<44} {built:8.2f} s")
    print(f"  {summary}")
    pages = math.ceil(CONNECTORS / PAGE_SIZE)
    if calls != Counter({"search": pages}):
        raise SystemExit(f"the audit made {dict(calls)}, not {pages} search pages")


if __name__ == "__main__":
    run()
