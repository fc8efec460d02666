"""A time budget that every wait and every HTTP call of one invocation draws from."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """A point on a monotonic clock after which no new work may start."""

    at: float
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, *, clock: Clock = time.monotonic) -> Deadline:
        """A deadline ``seconds`` from now."""
        return cls(at=clock() + seconds, clock=clock)

    @classmethod
    def never(cls) -> Deadline:
        """A deadline far enough away to never matter (command-line use, tests)."""
        return cls(at=float("inf"))

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.remaining() <= 0.0

    def shortened(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` earlier, keeping time in reserve for clean-up."""
        return Deadline(at=self.at - seconds, clock=self.clock)

    def reserving(self, seconds: float) -> Deadline:
        """A deadline that keeps ``seconds`` back for what may follow, or half the time left
        when that is less: work that fits in no more than a moment still starts, however
        short the budget, and something is always kept."""
        return self.shortened(min(seconds, self.remaining() / 2))

    def capped(self, seconds: float) -> Deadline:
        """This deadline, or ``seconds`` from now if that comes first."""
        return Deadline(at=min(self.at, self.clock() + seconds), clock=self.clock)

    def allows(self, seconds: float) -> bool:
        """Whether ``seconds`` more still fit in the budget."""
        return self.remaining() >= seconds
