"""The model of uncoordinated retries that bench.contention prints (design section 8)."""

from __future__ import annotations

from bench.contention import CALLS, SLOTS, equal_jitter, simulate
from provider.qualys.client import RetryPolicy


def test_accounts_that_fit_the_slots_are_never_refused() -> None:
    outcome = simulate(SLOTS, equal_jitter(1.0, 8.0), latency=0.2)

    assert (outcome.accepted, outcome.rejected) == (SLOTS * CALLS, 0)
    # One account uses one slot: its calls one after another, plus the gaps between them.
    assert 6 * 0.2 <= outcome.makespan < 6 * 0.2 + 0.5


def test_every_account_finishes_and_the_same_seed_gives_the_same_burst() -> None:
    first = simulate(40, equal_jitter(1.0, 8.0), latency=0.2, seed=3)

    assert first.accepted == 40 * CALLS
    assert first.makespan >= first.bound
    assert simulate(40, equal_jitter(1.0, 8.0), latency=0.2, seed=3) == first


def test_waiting_longer_refuses_fewer_calls_and_leaves_the_slots_idle_longer() -> None:
    patient = simulate(40, equal_jitter(2.0, 30.0), latency=0.2)
    eager = simulate(40, equal_jitter(0.5, 4.0), latency=0.2)

    assert patient.rejected_per_accepted < eager.rejected_per_accepted
    assert patient.ratio > eager.ratio


def test_the_model_waits_as_the_provider_does() -> None:
    policy = RetryPolicy()
    wait = equal_jitter(policy.throttle_base, policy.throttle_cap)

    assert all(policy.throttle_cap / 2 <= wait(n) <= policy.throttle_cap for n in range(4, 10))
    assert all(policy.throttle_base / 2 <= wait(1) <= policy.throttle_base for _ in range(20))
