"""Command line: serve the Qualys simulator until SIGINT or SIGTERM (first stdout line: its URL)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from sandbox.qualys.models import OPERATIONS
from sandbox.qualys.server import DEFAULT_QUALYS_ACCOUNT_ID, QualysSimulator

# The options that reach QualysSimulator under their own names.
_PASSED_ON = (
    "host",
    "port",
    "qualys_account_id",
    "gov_cloud_qualys_account_id",
    "china_qualys_account_id",
    "rate_limit",
    "rate_window",
    "concurrency_limit",
    "throttle_status",
    "limit_headers",
    "sync_queue_seconds",
    "sync_seconds",
    "sync_on_enable",
    "description_limit",
)


def _operation_latency(text: str) -> tuple[str, float]:
    """OPERATION=SECONDS, e.g. search=17."""
    operation, equals, seconds = text.partition("=")
    if not equals or operation not in OPERATIONS:
        raise argparse.ArgumentTypeError(
            f"expected OPERATION=SECONDS with OPERATION one of {', '.join(OPERATIONS)}"
        )
    try:
        return operation, float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {seconds!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.qualys",
        description="Serve a local Qualys Connector API. Prints the base URL as the first line.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    parser.add_argument("--username", default="qualys-user", help="the API user (Basic auth)")
    parser.add_argument("--password", default="qualys-password", help="that user's password")
    parser.add_argument("--qualys-account-id", default=DEFAULT_QUALYS_ACCOUNT_ID)
    parser.add_argument(
        "--gov-cloud-qualys-account-id", default=None, help="reported by GovCloud connectors"
    )
    parser.add_argument("--china-qualys-account-id", default=None, help="reported by China ones")
    parser.add_argument("--concurrency-limit", type=int, default=None, metavar="N")
    parser.add_argument("--rate-limit", type=int, default=None, metavar="N")
    parser.add_argument("--rate-window", type=float, default=3600.0, metavar="SECONDS")
    parser.add_argument(
        "--throttle-status", type=int, choices=(409, 429), default=409, help="status when limited"
    )
    parser.add_argument(
        "--limit-headers",
        action="store_true",
        help="send the X-RateLimit-*/X-Concurrency-Limit-* headers (default: none, as QPS)",
    )
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument(
        "--operation-latency",
        type=_operation_latency,
        action="append",
        default=[],
        metavar="OPERATION=SECONDS",
        help="latency of one operation, over --latency (repeatable)",
    )
    parser.add_argument("--sync-queue-seconds", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--sync-seconds", type=float, default=0.2, metavar="SECONDS")
    parser.add_argument(
        "--sync-on-enable", action="store_true", help="enabling starts a sync, as a run does"
    )
    parser.add_argument(
        "--description-limit", type=int, default=None, metavar="N", help="cut descriptions to N"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    options = {name: getattr(args, name) for name in _PASSED_ON}
    latency = {"*": args.latency, **dict(args.operation_latency)}
    try:
        simulator = QualysSimulator(
            users={args.username: args.password}, latency=latency, **options
        )
    except ValueError as error:
        parser.error(str(error))
    with simulator:
        print(simulator.base_url, flush=True)
        # A timed wait keeps the main thread responsive to signals.
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
