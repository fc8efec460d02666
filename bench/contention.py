"""Uncoordinated retries: a model of N per-account providers sharing Qualys's two slots.

    python -m bench.contention [--latency 0.2] [--accounts 10 20 40 100]

``bench.burst`` measures the provider's backoff with real processes, minutes for a burst of
100. This model runs the same burst as discrete events in milliseconds, so that backoff
policies can be compared by the two figures the burst prints: makespan against the bound
of the two slots, and rejected calls per accepted call. Each account makes its calls one
after another; an accepted call holds a slot for the latency plus the simulator's own
time; a refused one takes the latency too, then the account waits by the policy. Between
its calls an account holds no slot (its own CPU time), and another account's retry can
take the slot then.

It shows a frontier: waiting longer refuses fewer calls but leaves slots idle at the end of
the burst, when few accounts still wait and each waits long. Without knowing how many
others wait, no policy has both few refusals and a short makespan; a queue in front of
Qualys (the central provider) has both.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

from provider.qualys.client import RetryPolicy

SLOTS = 2
CALLS = 6
"""Calls of one account: connector Create (search, create), activation (get, update, run, get)."""
OVERHEAD = 0.015
"""Seconds an accepted call holds a slot beyond the latency (measured with bench.burst)."""
GAP = 0.01
"""Seconds of the provider's own work between two calls of one request."""
ANSWER_GAP = 0.06
"""Seconds between the connector Create and the activation Create (crhelper's answer)."""

Wait = Callable[[int], float]
"""Seconds to wait after the ``n``-th refusal in a row (drawing from ``random``'s module
generator, as ``RetryPolicy`` does: ``simulate`` seeds it)."""


@dataclass(frozen=True)
class Outcome:
    """One modelled burst."""

    makespan: float
    bound: float
    accepted: int
    rejected: int

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound

    @property
    def rejected_per_accepted(self) -> float:
        return self.rejected / self.accepted


def simulate(accounts: int, wait: Wait, *, latency: float, seed: int = 0) -> Outcome:
    """All ``accounts`` start together; each makes ``CALLS`` calls, retrying by ``wait``."""
    random.seed(seed)
    events: list[tuple[float, int, int, bool]] = []  # (time, order, account, ends a call)
    order = 0

    def at(time: float, account: int, *, ends: bool = False) -> None:
        nonlocal order
        heapq.heappush(events, (time, order, account, ends))
        order += 1

    for account in range(accounts):
        at(random.uniform(0, 0.05), account)
    done = [0] * accounts
    refused = [0] * accounts
    busy = accepted = rejected = 0
    last = 0.0
    while events:
        now, _, account, ends = heapq.heappop(events)
        if ends:
            busy -= 1
            done[account] += 1
            refused[account] = 0
            if done[account] < CALLS:
                at(now + (ANSWER_GAP if done[account] == 2 else GAP), account)
            last = max(last, now)
        elif busy < SLOTS:
            busy += 1
            accepted += 1
            at(now + latency + OVERHEAD, account, ends=True)
        else:
            rejected += 1
            refused[account] += 1
            at(now + latency + wait(refused[account]), account)
    return Outcome(last, accounts * CALLS * latency / SLOTS, accepted, rejected)


def equal_jitter(base: float, cap: float) -> Wait:
    """Exponential backoff with equal jitter, as ``RetryPolicy`` waits without a hint."""
    return RetryPolicy(throttle_base=base, throttle_cap=cap).throttle_backoff


def averaged(accounts: int, wait: Wait, *, latency: float, runs: int = 5) -> tuple[float, float]:
    """Mean makespan ratio and rejected per accepted call over ``runs`` seeds."""
    outcomes = [simulate(accounts, wait, latency=latency, seed=s) for s in range(runs)]
    return (
        statistics.mean(o.ratio for o in outcomes),
        statistics.mean(o.rejected_per_accepted for o in outcomes),
    )


FRONTIER = ((0.5, 4.0), (1.0, 4.0), (1.0, 8.0), (2.0, 8.0), (1.0, 16.0), (2.0, 16.0), (2.0, 30.0))


def main(argv: list[str] | None = None) -> int:
    """Print the provider's policy by burst size, then other policies at 40 and 100."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--accounts", type=int, nargs="+", default=[5, 10, 20, 40, 100, 200])
    args = parser.parse_args(argv)
    ours = RetryPolicy()
    print(f"Uncoordinated retries (model): {SLOTS} slots, {args.latency}s a call, {CALLS} calls")
    print(f"  the provider's backoff: {ours.throttle_base:g} s doubling to {ours.throttle_cap:g} s")
    print(f"  {'accounts at once':<20} {'makespan / bound':>18} {'rejected / accepted':>20}")
    provider = equal_jitter(ours.throttle_base, ours.throttle_cap)
    for n in args.accounts:
        ratio, rejected = averaged(n, provider, latency=args.latency)
        print(f"  {n:<20} {ratio:>16.2f} x {rejected:>20.2f}")
    print("  other backoffs, 40 and 100 accounts at once (makespan / bound, rejected / accepted):")
    for base, cap in FRONTIER:
        figures = "   ".join(
            f"{r:.2f} x {j:5.2f}"
            for r, j in (
                averaged(n, equal_jitter(base, cap), latency=args.latency) for n in (40, 100)
            )
        )
        print(f"  {f'{base:g} s doubling to {cap:g} s':<28} {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
