"""Command line: serve the Qualys simulator until SIGINT or SIGTERM (first stdout line: its URL)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from sandbox.qualys.server import DEFAULT_QUALYS_ACCOUNT_ID, QualysSimulator


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
    parser.add_argument("--concurrency-limit", type=int, default=None, metavar="N")
    parser.add_argument("--rate-limit", type=int, default=None, metavar="N")
    parser.add_argument("--rate-window", type=float, default=3600.0, metavar="SECONDS")
    parser.add_argument(
        "--throttle-status", type=int, choices=(409, 429), default=409, help="status when limited"
    )
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground; returns the exit status."""
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    simulator = QualysSimulator(
        host=args.host,
        port=args.port,
        users={args.username: args.password},
        qualys_account_id=args.qualys_account_id,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        concurrency_limit=args.concurrency_limit,
        throttle_status=args.throttle_status,
        latency=args.latency,
    )
    with simulator:
        print(simulator.base_url, flush=True)
        # A timed wait keeps the main thread responsive to signals.
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
