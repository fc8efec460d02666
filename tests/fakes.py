"""In-memory stand-ins for the lifecycle's unit tests: a Qualys, a clock and a sleeper.

``FakeQualys`` implements ``provider.lifecycle.model.ConnectorApi`` the way the lifecycle
sees Qualys through ``QualysClient``: ids assigned one after another, changes applied field
by field (``None`` leaves a field as it is), ``QualysNotFoundError`` for an unknown id, and
the client's own rules: no call started with less than a second left, and a ``get``
answered with another connector refused as ``QualysResponseError``. A test scripts faults
per operation and reads back every call in ``calls``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from provider.deadline import Deadline
from provider.qualys.errors import (
    QualysError,
    QualysInvalidRequestError,
    QualysNotFoundError,
    QualysResponseError,
    QualysThrottledError,
    QualysTimeoutError,
)
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges, Criterion, Operator

Operation = Literal["create", "get", "search", "update", "delete", "run"]

QUALYS_ACCOUNT: Final = "805950163170"
"""The AWS account Qualys assumes roles from, as the fake reports it by default."""

MIN_CALL_SECONDS: Final = 1.0
"""Like ``QualysClient``: a call with less time left than this is not sent at all."""


@dataclass(frozen=True)
class _Fault:
    error: QualysError
    happened: bool


_CONNECTOR_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(Connector))


def _applied(connector: Connector, changes: ConnectorChanges) -> Connector:
    """The connector after Qualys wrote ``changes``: fields left ``None`` stay as they were,
    collections are replaced whole; a field ``Connector`` does not report is not kept."""
    values: dict[str, Any] = {}
    for name in _written_fields(changes):
        value = getattr(changes, name)
        if name in _CONNECTOR_FIELDS:
            values[name] = value if isinstance(value, str | bool | int) else tuple(value)
    return dataclasses.replace(connector, **values)


def _written_fields(changes: ConnectorChanges) -> tuple[str, ...]:
    names = (f.name for f in dataclasses.fields(changes))
    return tuple(name for name in names if getattr(changes, name) is not None)


def _matches(connector: Connector, criterion: Criterion) -> bool:
    match criterion.field, criterion.operator:
        case "name", Operator.EQUALS:
            return connector.name == criterion.value
        case "id", Operator.EQUALS:
            return str(connector.id) == criterion.value
        case "id", Operator.GREATER:
            return connector.id > int(criterion.value)
    raise ValueError(f"FakeQualys cannot search by {criterion}")


class FakeQualys:
    """A Qualys account's AWS connectors, in memory.

    ``connectors`` holds each connector as stored (``state`` is left ``None`` there); an
    answer adds what Qualys computes: ``state`` (``"DISABLED"`` for a disabled connector,
    else ``enabled_state``) and ``qualys_aws_account_id`` (``None``: not reported).
    ``calls`` records every call as ``(operation, details...)``, failed ones included:
    ``("create", name)``, ``("get", id)``, ``("search", "name EQUALS x", ...)``,
    ``("update", id, field, ...)`` naming the fields written, ``("delete", id)``,
    ``("run", id)``.
    """

    def __init__(
        self,
        *,
        qualys_aws_account_id: str | None = QUALYS_ACCOUNT,
        enabled_state: str | None = "QUEUED",
        full_create_answer: bool = True,
        api_version: ApiVersion = ApiVersion.V3,
    ) -> None:
        self.connectors: dict[int, Connector] = {}
        self.calls: list[tuple[str, ...]] = []
        self.qualys_aws_account_id = qualys_aws_account_id
        self.enabled_state = enabled_state
        self.full_create_answer = full_create_answer
        """``False``: create answers only the new id and name, as a terse Qualys might."""
        self._api_version = api_version
        self._next_id = 1
        self._faults: dict[tuple[str, int], _Fault] = {}
        self._get_answers: list[Connector] = []
        self._enabled_by_update: set[int] = set()
        self._role_errors_left = 0
        self._role_error = ""

    # --- what a test sets up -----------------------------------------------------------

    def add(self, changes: ConnectorChanges) -> Connector:
        """Store a connector as if someone had created it (no call recorded, no fault)."""
        connector = _applied(Connector(id=self._next_id, disabled=False), changes)
        self._next_id += 1
        self.connectors[connector.id] = connector
        return connector

    def fail_next(
        self, operation: Operation, error: QualysError, *, happened: bool = False, after: int = 0
    ) -> None:
        """Make the next call of ``operation`` (or the one ``after`` calls later) raise
        ``error``. ``happened=True``: Qualys carried the call out and the caller sees the
        error anyway (unknown outcome); ``False``: nothing happened."""
        index = self.count(operation) + after
        self._faults[(operation, index)] = _Fault(error, happened)

    def throttle_next(
        self, operation: Operation, error: QualysThrottledError | None = None, *, after: int = 0
    ) -> None:
        """Make the next call of ``operation`` fail throttled: Qualys did not carry it out."""
        fault = error or QualysThrottledError("Qualys rate limit held past the deadline")
        self.fail_next(operation, fault, happened=False, after=after)

    def answer_next_get(self, connector: Connector) -> None:
        """Make Qualys answer the next ``get`` with ``connector``, whatever id was asked. As
        ``QualysClient`` does, the fake refuses an answer about another connector with
        ``QualysResponseError`` (a mismatch); an answer with the asked id is returned."""
        self._get_answers.append(connector)

    def reject_role(self, *, gets: int, last_error: str = "Unable to assume role") -> None:
        """Make the first ``gets`` reads of a connector enabled by an update report ``ERROR``
        with ``last_error``, as while a new IAM role is not yet assumable."""
        self._role_errors_left = gets
        self._role_error = last_error

    # --- what a test reads back --------------------------------------------------------

    def count(self, operation: Operation) -> int:
        """How many calls of ``operation`` were made."""
        return sum(1 for call in self.calls if call[0] == operation)

    # --- ConnectorApi ------------------------------------------------------------------

    @property
    def api_version(self) -> ApiVersion:
        """The QPS REST version the fake pretends to speak."""
        return self._api_version

    def create(self, changes: ConnectorChanges, *, deadline: Deadline) -> Connector:
        """Store a new connector with the next id; answer it as Qualys reports it."""
        fault = self._begin(deadline, "create", changes.name or "")
        connector = self.add(changes)
        self._finish(fault)
        if not self.full_create_answer:
            return Connector(id=connector.id, name=connector.name)
        return self._answer(connector, read=False)

    def get(self, connector_id: int, *, deadline: Deadline) -> Connector:
        """One connector, or whatever ``answer_next_get`` scripted."""
        fault = self._begin(deadline, "get", str(connector_id))
        if self._get_answers:
            answer = self._get_answers.pop(0)
            if answer.id != connector_id:
                raise QualysResponseError(
                    f"Qualys answered get of connector {connector_id} with connector {answer.id}"
                )
        else:
            answer = self._answer(self._stored(connector_id), read=True)
        self._finish(fault)
        return answer

    def search(
        self, criteria: Sequence[Criterion], *, deadline: Deadline, page_size: int = 100
    ) -> list[Connector]:
        """Every connector matching all criteria, by id (the fake never pages)."""
        fault = self._begin(
            deadline, "search", *(f"{c.field} {c.operator.value} {c.value}" for c in criteria)
        )
        found = [
            self._answer(connector, read=False)
            for _, connector in sorted(self.connectors.items())
            if all(_matches(connector, criterion) for criterion in criteria)
        ]
        self._finish(fault)
        return found

    def update(self, connector_id: int, changes: ConnectorChanges, *, deadline: Deadline) -> None:
        """Write the given fields of one connector."""
        fault = self._begin(deadline, "update", str(connector_id), *_written_fields(changes))
        self.connectors[connector_id] = _applied(self._stored(connector_id), changes)
        if changes.disabled is False:
            self._enabled_by_update.add(connector_id)
        elif changes.disabled:
            self._enabled_by_update.discard(connector_id)
        self._finish(fault)

    def delete(self, connector_id: int, *, deadline: Deadline) -> None:
        """Remove one connector."""
        fault = self._begin(deadline, "delete", str(connector_id))
        self._stored(connector_id)
        del self.connectors[connector_id]
        self._finish(fault)

    def run(self, connector_id: int, *, deadline: Deadline) -> None:
        """Start a sync now; Qualys refuses it for a disabled connector."""
        fault = self._begin(deadline, "run", str(connector_id))
        if self._stored(connector_id).disabled:
            raise QualysInvalidRequestError(
                f"Connector {connector_id} is disabled; enable it before running it.",
                response_code="INVALID_REQUEST",
            )
        self._finish(fault)

    # --- inside ------------------------------------------------------------------------

    def _begin(self, deadline: Deadline, operation: Operation, *details: str) -> _Fault | None:
        """Record the call; raise now what must stop it, or return a fault to raise after."""
        index = self.count(operation)
        self.calls.append((operation, *details))
        if deadline.remaining() < MIN_CALL_SECONDS:
            raise QualysTimeoutError(f"No time left to call Qualys {operation}")
        fault = self._faults.pop((operation, index), None)
        if fault is not None and not fault.happened:
            raise fault.error
        return fault

    @staticmethod
    def _finish(fault: _Fault | None) -> None:
        if fault is not None:
            raise fault.error

    def _stored(self, connector_id: int) -> Connector:
        try:
            return self.connectors[connector_id]
        except KeyError:
            raise QualysNotFoundError(
                f"Connector {connector_id} not found", response_code="OBJECT_NOT_FOUND"
            ) from None

    def _answer(self, connector: Connector, *, read: bool) -> Connector:
        state, last_error = ("DISABLED" if connector.disabled else self.enabled_state), None
        if read and self._role_errors_left and connector.id in self._enabled_by_update:
            self._role_errors_left -= 1
            state, last_error = "ERROR", self._role_error
        return dataclasses.replace(
            connector,
            state=state,
            last_error=last_error,
            qualys_aws_account_id=self.qualys_aws_account_id,
        )


@dataclass
class FakeClock:
    """A monotonic clock that moves only when a test (or ``RecordingSleeper``) says so."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingSleeper:
    """A ``sleep`` that returns at once, records each delay and advances ``clock``."""

    clock: FakeClock | None = None
    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds
