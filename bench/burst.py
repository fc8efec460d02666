"""The onboarding burst: N accounts at once, each a cold process, against Qualys's two slots.

    python -m bench.burst [--accounts 40] [--latency 0.2] [--limit-headers]

Each account is a new Python process, as a cold Lambda container is. It imports the
handler (Lambda's INIT), then waits until every process has done so: on Lambda each
container runs its INIT on a CPU of its own, at the same time as all the others, where here
N of them share two cores. Released together, each builds its container (crhelper, the
Qualys client, its secrets: moto-free, in that process) and sends the connector Create and
then the activation Create through crhelper's real send path, as CloudFormation would, to
one Qualys simulator that admits 2 concurrent calls with a per-call latency.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"
USER, PASSWORD = "bench", "bench-password"
SLOTS = 2


def _event(name: str, **changes: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    loaded.update(changes, RequestId=str(uuid.uuid4()))
    return loaded


class _SecretsManager:
    """Secrets Manager as a cold container meets it, without moto's start-up cost, which a
    Lambda container does not pay and which would hide the provider's own."""

    def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803, ARG002 - boto3's
        return {"SecretString": json.dumps({"username": USER, "password": PASSWORD})}


def worker(api_url: str, account: str, *, released: Callable[[], object]) -> dict[str, Any]:
    """One account's stack: connector Create, then activation Create, in this process (one
    Lambda container, warm for the second). ``released`` returns when the burst starts."""
    from provider.credentials import SecretStore  # noqa: PLC0415 - the cold start is measured
    from provider.handler import Container  # noqa: PLC0415
    from sandbox.cfn_responses import ResponseCollector  # noqa: PLC0415

    released()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_REGION="eu-west-1",
        QUALYS_API_URL=api_url,
        QUALYS_CREDENTIALS_SECRET_ID="bench/qualys",
    )
    os.environ.pop("SLACK_WEBHOOK_SECRET_ID", None)  # set by make bench's lifecycle run
    secrets = SecretStore(lambda _config: _SecretsManager())

    class Context:
        function_name = "qualys-connector-provider"
        aws_request_id = "bench"
        memory_limit_in_mb = 256
        invoked_function_arn = f"arn:aws:lambda:eu-west-1:{account}:function:bench"

        def __init__(self) -> None:
            self.ends = time.monotonic() + 300  # each invocation's own budget

        def get_remaining_time_in_millis(self) -> int:
            return int((self.ends - time.monotonic()) * 1000)

    stack = f"arn:aws:cloudformation:eu-west-1:{account}:stack/burst/{uuid.uuid4()}"
    collector = ResponseCollector()
    with collector.capture():
        name = f"aws-{account}"
        create = _event("connector_create", StackId=stack)
        create["ResourceProperties"]["ConnectorName"] = name
        container = Container(os.environ, secrets=secrets, sleep_on_delete=0)
        container(create, Context())
        created = collector.responses[-1]
        answers = [created.status]
        reason = created.reason
        if created.status == "SUCCESS":
            activate = _event("activation_create", StackId=stack)
            activate["ResourceProperties"].update(
                ConnectorId=created.physical_resource_id,
                RoleArn=f"arn:aws:iam::{account}:role/qualys-connector-eu-west-1",
            )
            container(activate, Context())
            answers.append(collector.responses[-1].status)
            reason = collector.responses[-1].reason
    return {"answers": answers, "reason": reason}


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Burst:
    """What one burst did, timed from the moment every process was released."""

    accounts: int
    succeeded: int
    makespan: float
    cpu_seconds: float
    """CPU used after the release, by the workers and the simulator."""
    calls: Counter[str]
    accepted: int
    rejected: int
    reasons: Counter[str]
    first_call: float
    """Seconds from the release until Qualys received the first call."""
    init: float
    """Seconds until every process had imported the handler, N of them on this machine."""


def burst(
    *, accounts: int, latency: float, limit_headers: bool, slots: int | None = SLOTS
) -> Burst:
    """Start ``accounts`` worker processes; once all have imported the handler, release them
    together against one simulator and wait for all.

    With ``slots=None`` and no latency, Qualys imposes nothing: the makespan is then what
    this machine's CPU allows for that many containers.
    """
    from sandbox.qualys import QualysSimulator  # noqa: PLC0415

    with QualysSimulator(
        users={USER: PASSWORD},
        concurrency_limit=slots,
        latency=latency,
        limit_headers=limit_headers,
    ) as qualys:
        spawned = time.monotonic()
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.burst", "--worker", qualys.base_url, f"{i:012d}"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # A worker's log is the provider's, for CloudWatch; its answer is on stdout.
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for i in range(100_000_000_000, 100_000_000_000 + accounts)
        ]
        for process in processes:
            assert process.stdout is not None
            process.stdout.readline()  # "ready": INIT is over
        init = time.monotonic() - spawned
        before = _cpu_seconds()
        started = time.monotonic()
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()  # the release
        results = [_result(p) for p in processes]
        makespan = time.monotonic() - started
        cpu = _cpu_seconds() - before + sum(r["cpu"] for r in results)
        requests = qualys.requests
    first_answer = min((r.answered for r in requests), default=started)
    blocked = sum(r.status in (409, 429) for r in requests)
    return Burst(
        accounts=accounts,
        succeeded=sum(r["answers"] == ["SUCCESS", "SUCCESS"] for r in results),
        makespan=makespan,
        cpu_seconds=cpu,
        calls=Counter(r.operation or "?" for r in requests if r.status not in (409, 429)),
        accepted=len(requests) - blocked,
        rejected=blocked,
        reasons=Counter(r["reason"] for r in results if r["answers"] != ["SUCCESS", "SUCCESS"]),
        first_call=max(0.0, first_answer - started - latency),
        init=init,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    answer = process.stdout.read()
    process.wait()
    crashed = {"answers": [], "reason": f"crashed (exit {process.returncode})", "cpu": 0.0}
    return dict(json.loads(answer)) if answer else crashed


def init_alone() -> float:
    """Seconds one worker takes to import the handler on an otherwise idle machine: a
    Lambda container's INIT, which on Lambda every container of a burst runs at once."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.burst", "--worker", "http://127.0.0.1:9", "0"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    seconds = time.monotonic() - started
    process.kill()
    process.wait()
    return seconds


def print_burst(
    result: Burst, *, cpu_bound: float, init: float, latency: float, headers: bool
) -> None:
    """The burst's figures, as ``make bench`` prints them. ``init`` is one container's INIT
    alone, which every container of a burst on Lambda runs at the same time."""
    per_account = result.accepted / max(result.accounts, 1)
    slot_bound = result.accounts * per_account * latency / SLOTS
    bound = max(slot_bound, cpu_bound)
    mode = "limit headers (ToWait 0 on a concurrency block)" if headers else "no limit headers"
    print(f"Burst: {result.accounts} accounts at once, {SLOTS} Qualys slots, {latency}s a call,")
    print(f"  {mode}")
    print(f"{'  succeeded':<44} {result.succeeded:>8} / {result.accounts}")
    print(f"{'  makespan, from the release':<44} {result.makespan:8.1f} s")
    print(f"{'  bound of the 2 slots (N x calls x latency / 2)':<44} {slot_bound:8.1f} s")
    print(f"{'  bound of the CPU (same burst, no Qualys limit)':<44} {cpu_bound:8.1f} s")
    print(f"{'  CPU used after the release (all processes)':<44} {result.cpu_seconds:8.1f} s")
    print(f"{'  makespan / larger bound':<44} {result.makespan / bound if bound else 0:8.2f} x")
    print(f"{'  first call reached Qualys after':<44} {result.first_call:8.1f} s")
    print(f"{'  calls accepted / rejected (409)':<44} {result.accepted:>8} / {result.rejected}")
    print(f"{'  rejected per accepted call':<44} {result.rejected / max(result.accepted, 1):8.2f}")
    calls = ", ".join(f"{op} {n / result.accounts:.1f}" for op, n in sorted(result.calls.items()))
    print(f"  accepted calls per account: {calls}")
    print(f"{'  INIT (import) of one container alone':<44} {init:8.2f} s")
    print(f"{f'  INIT of all {result.accounts} on this machine, before':<44} {result.init:8.1f} s")
    for reason, count in result.reasons.most_common(3):
        print(f"  failed x{count}: {reason}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (also the worker's)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--limit-headers", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("API_URL", "ACCOUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker_process(*args.worker)))
        return 0
    return run(accounts=args.accounts, latency=args.latency, limit_headers=args.limit_headers)


def _worker_process(api_url: str, account: str) -> dict[str, Any]:
    """A worker as the burst runs it: "ready" once imported, released when stdin closes;
    its answers and the CPU it used after the release."""
    cpu: list[float] = []

    def released() -> None:
        print("ready", flush=True)
        sys.stdin.read()
        cpu.append(_cpu_seconds())

    outcome = worker(api_url, account, released=released)
    return {**outcome, "cpu": _cpu_seconds() - cpu[0]}


def run(*, accounts: int = 40, latency: float = 0.2, limit_headers: bool = False) -> int:
    """Measure the machine alone, then the burst against 2 slots; print both. 0 if all
    accounts succeeded."""
    init = min(init_alone() for _ in range(3))
    machine = burst(accounts=accounts, latency=0.0, limit_headers=False, slots=None)
    result = burst(accounts=accounts, latency=latency, limit_headers=limit_headers)
    print_burst(
        result, cpu_bound=machine.makespan, init=init, latency=latency, headers=limit_headers
    )
    return 0 if result.succeeded == result.accounts else 1


if __name__ == "__main__":
    sys.exit(main())
