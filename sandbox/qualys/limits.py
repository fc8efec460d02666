"""Qualys's API limits in the simulator: concurrent calls, calls per window, and their headers."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

UNLIMITED_RATE = 1_000_000
"""What X-RateLimit-Limit reports when the simulator has no rate limit."""
UNLIMITED_CONCURRENCY = 1_000
"""What X-Concurrency-Limit-Limit reports when the simulator has no concurrency limit."""


@dataclass(frozen=True)
class Admission:
    """The limiter's verdict on one call, with the headers its answer carries."""

    admitted: bool
    headers: tuple[tuple[str, str], ...]
    reason: str = ""
    to_wait: int = 0
    """Seconds until the rate window admits a call: 0 for a concurrency block."""


class Limiter:
    """Counts running calls and a sliding window of admitted calls (thread-safe).

    With ``send_headers`` false (what the connector API does in every recording) the
    answers carry no limit header at all; the limits still apply.
    """

    def __init__(
        self,
        *,
        rate_limit: int | None,
        rate_window: float,
        concurrency_limit: int | None,
        send_headers: bool = True,
        omit_first_to_wait: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_limit is not None and rate_limit < 1:
            raise ValueError("rate_limit must be at least 1")
        if concurrency_limit is not None and concurrency_limit < 1:
            raise ValueError("concurrency_limit must be at least 1")
        if rate_window <= 0:
            raise ValueError("rate_window must be positive")
        self._rate_limit = rate_limit
        self._window = rate_window
        self._concurrency_limit = concurrency_limit
        self._send_headers = send_headers
        self._omit_first_to_wait = omit_first_to_wait
        self._clock = clock
        self._lock = threading.Lock()
        self._admitted: deque[float] = deque()
        self._running = 0
        self._blocked_before = False

    def admit(self) -> Admission:
        """Admit a call (it then counts as running until `release`) or block it."""
        with self._lock:
            now = self._clock()
            self._forget_before(now - self._window)
            if self._concurrency_limit is not None and self._running >= self._concurrency_limit:
                # ToWait describes the rate window only, which has room: 0, as on FO.
                return self._blocked("concurrency", 0)
            if self._rate_limit is not None and len(self._admitted) >= self._rate_limit:
                wait = math.ceil(self._admitted[0] + self._window - now)
                return self._blocked("rate", max(1, wait))
            self._running += 1
            self._admitted.append(now)
            return Admission(admitted=True, headers=self._headers(to_wait=0))

    def release(self) -> None:
        """An admitted call has been answered."""
        with self._lock:
            self._running -= 1

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The limit headers for an answer that was neither admitted nor blocked."""
        with self._lock:
            self._forget_before(self._clock() - self._window)
            return self._headers(to_wait=0)

    def reset(self) -> None:
        """Forget past calls (running calls stay counted until they finish)."""
        with self._lock:
            self._admitted.clear()
            self._blocked_before = False

    def _forget_before(self, moment: float) -> None:
        while self._admitted and self._admitted[0] <= moment:
            self._admitted.popleft()

    def _blocked(self, reason: str, to_wait: int) -> Admission:
        omit = self._omit_first_to_wait and not self._blocked_before
        self._blocked_before = True
        return Admission(
            admitted=False,
            headers=self._headers(to_wait=None if omit else to_wait),
            reason=reason,
            to_wait=to_wait,
        )

    def _headers(self, *, to_wait: int | None) -> tuple[tuple[str, str], ...]:
        if not self._send_headers:
            return ()
        rate_limit = self._rate_limit if self._rate_limit is not None else UNLIMITED_RATE
        concurrency = self._concurrency_limit
        headers = [
            ("X-RateLimit-Limit", str(rate_limit)),
            ("X-RateLimit-Window-Sec", str(math.ceil(self._window))),
            ("X-RateLimit-Remaining", str(max(0, rate_limit - len(self._admitted)))),
        ]
        if to_wait is not None:
            headers.append(("X-RateLimit-ToWait-Sec", str(to_wait)))
        headers += [
            ("X-Concurrency-Limit-Limit", str(concurrency or UNLIMITED_CONCURRENCY)),
            ("X-Concurrency-Limit-Running", str(self._running)),
        ]
        return tuple(headers)

    @property
    def rate_limit(self) -> int | None:
        """Admitted calls allowed per window (None: unlimited)."""
        return self._rate_limit

    @property
    def window(self) -> float:
        """The rate window in seconds."""
        return self._window

    @property
    def concurrency_limit(self) -> int | None:
        """Calls allowed to run at once (None: unlimited)."""
        return self._concurrency_limit
