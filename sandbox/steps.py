"""The numbered steps of the sandbox's scenarios (``make demo``, ``demo-org``, ``audit``).

Each scenario prints its steps as ``[n/N] what it does``, checks what it shows, and stops
at the first check that fails, naming the step; nothing it prints holds a secret.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Final, TextIO

WIDTH: Final = 96


class StepError(Exception):
    """A step did not do what it shows."""

    def __init__(self, step: str, problem: str) -> None:
        super().__init__(f"step '{step}': {problem}")
        self.step = step


class StepReport:
    """Writes a scenario's output, scrubbed of its secrets, and tracks the step in progress.

    ``secrets`` is asked on every line: a sandbox makes them when it starts.
    """

    def __init__(self, out: TextIO, secrets: Callable[[], Sequence[str]], *, steps: int) -> None:
        self._out = out
        self._secrets = secrets
        self._steps = steps
        self.step = "start the sandbox"
        self._started = time.monotonic()

    def line(self, text: str = "") -> None:
        for secret in self._secrets():
            # Belt and braces: nothing printed here should ever hold one.
            text = text.replace(secret, "********")
        self._out.write(text + "\n")
        self._out.flush()

    def lines(self, text: str, indent: str = "  ") -> None:
        """Each line of ``text``, indented."""
        for line in text.rstrip("\n").splitlines():
            self.line(f"{indent}{line}".rstrip())

    def wrapped(self, label: str, text: str, indent: int = 4) -> None:
        """``label`` and ``text``, the text folded to the report's width under itself."""
        head = " " * indent + f"{label:<16}"
        for line in textwrap.wrap(
            text,
            WIDTH,
            initial_indent=head,
            subsequent_indent=" " * len(head),
            break_on_hyphens=False,
        ) or [head]:
            self.line(line)

    def begin(self, number: int, step: str) -> None:
        self.step = step
        self.line()
        self.line(f"[{number}/{self._steps}] {step}")

    def check(self, condition: bool, problem: str) -> None:  # noqa: FBT001 - reads as an assertion
        if not condition:
            raise StepError(self.step, problem)

    def elapsed(self) -> float:
        """Seconds since the report was made."""
        return time.monotonic() - self._started

    def run(self, scenario: Callable[[], None], *, name: str, summary: str) -> int:
        """Run ``scenario``: 0 and the summary when it finished, 1 naming the step it
        stopped at when it raised."""
        try:
            scenario()
        except Exception as error:  # noqa: BLE001 - a scenario reports any failure by its step
            self.line()
            self.line(f"{name.upper()} FAILED at step '{self.step}': {error}")
            return 1
        self.line()
        self.line(f"{name} complete in {self.elapsed():.1f} s: {summary}")
        return 0
