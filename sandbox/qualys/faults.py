"""Faults that a test injects into the simulator to make Qualys answer badly."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

MAX_DELAY_SECONDS = 60.0
"""Longest delay a fault may add, so that a forgotten fault cannot stall a test run."""
DEFAULT_OVERSIZED_BYTES = 32 * 1024 * 1024
OVERSIZED_BYTES_RANGE = (4 * 1024, 1024 * 1024 * 1024)


class FaultKind(enum.Enum):
    """What a fault does to one answer."""

    HTTP = "http"
    RESPONSE_CODE = "response_code"
    MALFORMED = "malformed"
    TRUNCATED = "truncated"
    HTML = "html"
    DELAY = "delay"
    DROP = "drop"
    TRICKLE = "trickle"
    OVERSIZED = "oversized"
    RESET = "reset"


@dataclass(frozen=True)
class Fault:
    """One bad answer; build it with the static constructors, then `QualysSimulator.inject` it."""

    kind: FaultKind
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    code: str = ""
    message: str = ""
    resolution: str | None = None
    seconds: float = 0.0
    process: bool = False
    size_bytes: int = 0

    @property
    def carries_out(self) -> bool:
        """Whether the operation is still carried out before the fault shapes the answer."""
        if self.kind in (FaultKind.DELAY, FaultKind.TRICKLE):
            return True
        return self.kind in (FaultKind.DROP, FaultKind.RESET) and self.process

    @staticmethod
    def http(status: int, *, headers: Mapping[str, str] | None = None, body: str = "") -> Fault:
        """A raw answer with this status, headers (over the usual limit headers) and body."""
        _check_status(status)
        return Fault(
            FaultKind.HTTP, status=status, headers=tuple((headers or {}).items()), body=body
        )

    @staticmethod
    def response_code(
        code: str, message: str = "Simulated error.", *, resolution: str | None = None
    ) -> Fault:
        """HTTP 200 with a ServiceResponse carrying this responseCode and responseErrorDetails."""
        if not code:
            raise ValueError("a response code is required")
        return Fault(FaultKind.RESPONSE_CODE, code=code, message=message, resolution=resolution)

    @staticmethod
    def malformed() -> Fault:
        """HTTP 200 whose body is not XML at all."""
        return Fault(FaultKind.MALFORMED)

    @staticmethod
    def truncated() -> Fault:
        """HTTP 200 with a valid-looking ServiceResponse cut in the middle."""
        return Fault(FaultKind.TRUNCATED)

    @staticmethod
    def html(status: int = 502) -> Fault:
        """An HTML error page such as a load balancer sends (text/html, no limit headers)."""
        _check_status(status)
        return Fault(FaultKind.HTML, status=status)

    @staticmethod
    def delay(seconds: float) -> Fault:
        """Carry the operation out, then hold the answer back this long (at most 60 s)."""
        if not 0 <= seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay must be 0 to {MAX_DELAY_SECONDS:g} seconds, not {seconds}")
        return Fault(FaultKind.DELAY, seconds=seconds)

    @staticmethod
    def drop(*, process: bool = False) -> Fault:
        """Close the connection without an answer; process=True carries the operation out first."""
        return Fault(FaultKind.DROP, process=process)

    @staticmethod
    def trickle(pause: float = 1.0) -> Fault:
        """Carry the operation out, send status and headers, then the body a byte per pause."""
        if not 0 < pause <= MAX_DELAY_SECONDS:
            raise ValueError(f"pause must be over 0 and at most {MAX_DELAY_SECONDS:g} s")
        return Fault(FaultKind.TRICKLE, seconds=pause)

    @staticmethod
    def oversized(size_bytes: int = DEFAULT_OVERSIZED_BYTES) -> Fault:
        """HTTP 200 with a well-formed SUCCESS search answer of this many bytes (streamed)."""
        low, high = OVERSIZED_BYTES_RANGE
        if not low <= size_bytes <= high:
            raise ValueError(f"size_bytes must be {low} to {high}, not {size_bytes}")
        return Fault(FaultKind.OVERSIZED, size_bytes=size_bytes)

    @staticmethod
    def reset(*, process: bool = False) -> Fault:
        """Reset the connection (TCP RST) without an answer; process=True carries it out first."""
        return Fault(FaultKind.RESET, process=process)


def _check_status(status: int) -> None:
    if not 100 <= status <= 599:
        raise ValueError(f"HTTP status must be 100 to 599, not {status}")
