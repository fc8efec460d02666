"""The central burst: N accounts onboarding at once through the central provider's queue.

    python -m bench.central [--accounts 200] [--latency 0.5] [--no-per-account]

Every account's connector Create goes into one SQS queue (moto) at once, as a CfCT rollout
publishes them; the event source mapping stand-in (``sandbox.event_source``) invokes the
provider with ``MaximumConcurrency`` 2, one warm container per worker, against a Qualys
simulator with 2 slots and a per-call latency. When an account's connector is answered,
its activation Create is queued, as CloudFormation would send it.

Then the same N accounts in per-account mode (``bench.burst``: a cold process each, all at
once, retrying against the same 2 slots), so that the two modes' figures stand side by side.

The default latency, 0.5 s a call, is below what Qualys's connector API takes (0.8 to 1.5 s,
docs/qualys-api.md), so the provider's own time between calls weighs more here than in a
real rollout; at 0.2 s a call this 2-core machine's cost of each call (about 15 ms over the
simulator's sleep) and of each answer (crhelper's TLS context, about 45 ms) is a quarter of
the bound on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import boto3
from moto import mock_aws

from bench.burst import EVENTS, PASSWORD, SLOTS, USER, Burst, _SecretsManager, burst
from provider.credentials import SecretStore
from provider.handler import Container
from sandbox.cfn_responses import ResponseCollector
from sandbox.event_source import EventSourceMapping
from sandbox.qualys import QualysSimulator

REGION = "eu-west-1"


class _Context:
    function_name = "qualys-connector-central-provider"
    aws_request_id = "bench"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:222222222222:function:central"

    def __init__(self) -> None:
        self._ends = time.monotonic() + 300

    def get_remaining_time_in_millis(self) -> int:
        return int((self._ends - time.monotonic()) * 1000)


def _event(name: str, account: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event["RequestId"] = str(uuid.uuid4())
    event["StackId"] = f"arn:aws:cloudformation:{REGION}:{account}:stack/burst/{account}"
    event["ResourceProperties"]["ServiceTimeout"] = "3600"
    return event


def central(*, accounts: int, latency: float, concurrency: int = SLOTS) -> dict[str, Any]:
    """Run the burst; what it did. The process environment is restored afterwards."""
    saved = dict(os.environ)
    try:
        return _central(accounts=accounts, latency=latency, concurrency=concurrency)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _central(*, accounts: int, latency: float, concurrency: int) -> dict[str, Any]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        QUALYS_CREDENTIALS_SECRET_ID="bench/qualys",
    )
    os.environ.pop("SLACK_WEBHOOK_SECRET_ID", None)
    secrets = SecretStore(lambda _config: _SecretsManager())
    with (
        mock_aws(),
        QualysSimulator(users={USER: PASSWORD}, concurrency_limit=SLOTS, latency=latency) as qualys,
    ):
        os.environ["QUALYS_API_URL"] = qualys.base_url
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="qualys-connector-provider")["QueueUrl"]
        containers = [
            Container(os.environ, secrets=secrets, sleep_on_delete=0, queue_client=lambda _r: sqs)
            for _ in range(concurrency)
        ]
        collector = ResponseCollector()
        pending: dict[str, tuple[str, str]] = {}
        lock = threading.Lock()
        answers: Counter[str] = Counter()
        finished: list[int] = [0]

        def send(event: dict[str, Any], kind: str, account: str) -> None:
            with lock:
                pending[event["RequestId"]] = (kind, account)
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))

        def invoke(worker: int, event: dict[str, Any]) -> Any:
            result = containers[worker](event, _Context())
            for record in event["Records"]:
                request_id = json.loads(record["body"])["RequestId"]
                answered = collector.for_request(request_id)
                if not answered:
                    continue  # back in the queue
                answer = answered[-1]
                with lock:
                    kind, account = pending.pop(request_id, ("?", "?"))
                answers[f"{kind} {answer.status}"] += 1
                if kind == "connector" and answer.status == "SUCCESS":
                    activate = _event("activation_create", account)
                    activate["ResourceProperties"].update(
                        ConnectorId=answer.physical_resource_id,
                        RoleArn=f"arn:aws:iam::{account}:role/qualys-connector-{REGION}",
                    )
                    send(activate, "activation", account)
                elif kind in ("activation", "connector"):
                    with lock:
                        finished[0] += 1
            return result

        with collector.capture():
            started = time.monotonic()
            for i in range(accounts):
                account = f"{100_000_000_000 + i:012d}"
                create = _event("connector_create", account)
                create["ResourceProperties"]["ConnectorName"] = f"aws-{account}"
                send(create, "connector", account)
            mapping = EventSourceMapping(sqs, url, invoke, maximum_concurrency=concurrency)
            mapping.run_until(lambda: finished[0] >= accounts, timeout=3600)
            makespan = time.monotonic() - started
        requests = qualys.requests
    blocked = sum(r.status in (409, 429) for r in requests)
    calls = Counter(r.operation or "?" for r in requests if r.status not in (409, 429))
    return {
        "accounts": accounts,
        "succeeded": answers["activation SUCCESS"],
        "answers": answers,
        "makespan": makespan,
        "accepted": len(requests) - blocked,
        "rejected": blocked,
        "calls": calls,
        "peak": mapping.peak_concurrency,
    }


def print_central(result: dict[str, Any], *, latency: float) -> None:
    """The central burst's figures, as ``make bench`` prints them."""
    n = result["accounts"]
    per_account = result["accepted"] / max(n, 1)
    bound = n * per_account * latency / SLOTS
    print(f"Central burst: {n} accounts through the queue, MaximumConcurrency {SLOTS},")
    print(f"  {SLOTS} Qualys slots, {latency}s a call")
    print(f"{'  succeeded':<44} {result['succeeded']:>8} / {n}")
    print(f"{'  makespan':<44} {result['makespan']:8.1f} s")
    print(f"{'  bound (N x calls x latency / 2)':<44} {bound:8.1f} s")
    print(f"{'  makespan / bound':<44} {result['makespan'] / bound if bound else 0:8.2f} x")
    print(
        f"{'  calls accepted / rejected (409)':<44} {result['accepted']:>8} / {result['rejected']}"
    )
    print(f"{'  most invocations at once':<44} {result['peak']:>8}")
    calls = ", ".join(f"{op} {k / n:.1f}" for op, k in sorted(result["calls"].items()))
    print(f"  accepted calls per account: {calls}")
    print(f"  answers: {dict(sorted(result['answers'].items()))}")


def print_per_account(result: Burst, *, latency: float) -> None:
    """The per-account mode's figures for the same burst, beside the central ones."""
    n = result.accounts
    bound = result.accepted * latency / SLOTS
    print(f"Per-account mode, same {n} accounts: a cold process each, all at once,")
    print(f"  {SLOTS} Qualys slots, {latency}s a call")
    print(f"{'  succeeded':<44} {result.succeeded:>8} / {n}")
    print(f"{'  makespan':<44} {result.makespan:8.1f} s")
    print(f"{'  bound (N x calls x latency / 2)':<44} {bound:8.1f} s")
    print(f"{'  makespan / bound':<44} {result.makespan / bound if bound else 0:8.2f} x")
    print(f"{'  calls accepted / rejected (409)':<44} {result.accepted:>8} / {result.rejected}")
    print(f"{'  rejected per accepted call':<44} {result.rejected / max(result.accepted, 1):8.2f}")
    for reason, count in result.reasons.most_common(3):
        print(f"  failed x{count}: {reason}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 when every account succeeded through the queue."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument(
        "--no-per-account",
        dest="per_account",
        action="store_false",
        help="skip the same burst in per-account mode",
    )
    args = parser.parse_args(argv)
    result = central(accounts=args.accounts, latency=args.latency)
    print_central(result, latency=args.latency)
    if args.per_account:
        print()
        print_per_account(
            burst(accounts=args.accounts, latency=args.latency, limit_headers=False),
            latency=args.latency,
        )
    return 0 if result["succeeded"] == args.accounts else 1


if __name__ == "__main__":
    sys.exit(main())
