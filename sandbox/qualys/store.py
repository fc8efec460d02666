"""The simulator's connectors: create, read, change and delete them, and their state machine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sandbox.qualys.errors import InvalidRequestError, ObjectNotFoundError
from sandbox.qualys.models import (
    DEFAULT_RUN_FREQUENCY,
    RoleChecker,
    SimConnector,
    account_of,
)
from sandbox.qualys.wire.requests import (
    UNSET,
    CollectionEdit,
    ConnectorChanges,
    Criterion,
    SearchRequest,
)

T = TypeVar("T")

FIRST_ID = 1_000_001
NO_ROLE_ERROR = "No IAM role ARN is configured for this connector; Qualys cannot assume a role."

# A connector that was queued moves one step along this pipeline each time it is read.
_NEXT_STATE = {"QUEUED": "RUNNING", "RUNNING": "PROCESSING", "PROCESSING": "FINISHED_SUCCESS"}

_SEARCH_ATTRIBUTES = {
    "id": "id",
    "name": "name",
    "description": "description",
    "externalId": "external_id",
    "awsAccountId": "aws_account_id",
    "arn": "arn",
    "disabled": "disabled",
    "connectorState": "connector_state",
    "qualysAwsAccountId": "qualys_aws_account_id",
}
_FIELD_NAMES = frozenset(f.name for f in fields(SimConnector))


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ConnectorStore:
    """Thread-safe connectors keyed by id; every method takes the shared lock."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        qualys_account_id: str | None,
        role_checker: RoleChecker | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._lock = lock
        self._qualys_account_id = qualys_account_id
        self.role_checker = role_checker
        self._clock = clock
        self._connectors: dict[int, SimConnector] = {}
        self._next_id = FIRST_ID

    # --- outside the API (test set-up) --------------------------------------------------------

    def all(self) -> list[SimConnector]:
        """Every connector, sorted by id."""
        with self._lock:
            return [self._connectors[key] for key in sorted(self._connectors)]

    def find(self, connector_id: int) -> SimConnector | None:
        """The connector with this id, without advancing its state."""
        with self._lock:
            return self._connectors.get(connector_id)

    def seed(self, values: dict[str, Any]) -> SimConnector:
        """Add a connector as given (no validation, no state evaluation)."""
        _check_field_names(values)
        with self._lock:
            connector_id = values.pop("id", None)
            if connector_id is None:
                connector_id = self._allocate_id()
            elif connector_id in self._connectors:
                raise ValueError(f"connector {connector_id} already exists")
            else:
                self._next_id = max(self._next_id, connector_id + 1)
            values.setdefault("name", f"connector-{connector_id}")
            values.setdefault("qualys_aws_account_id", self._qualys_account_id)
            values.setdefault("aws_account_id", account_of(values.get("arn")))
            disabled = values.get("disabled", False)
            values.setdefault("connector_state", "DISABLED" if disabled else "FINISHED_SUCCESS")
            connector = _normalized(SimConnector(id=connector_id, **values))
            self._connectors[connector_id] = connector
            return connector

    def modify(self, connector_id: int, values: dict[str, Any]) -> SimConnector:
        """Change fields as given (no validation, no state evaluation)."""
        _check_field_names(values)
        if "id" in values:
            raise ValueError("the id of a connector cannot be changed")
        with self._lock:
            old = self._connectors.get(connector_id)
            if old is None:
                raise KeyError(connector_id)
            if "arn" in values:
                values.setdefault("aws_account_id", account_of(values["arn"]))
            connector = _normalized(replace(old, **values))
            self._connectors[connector_id] = connector
            return connector

    def remove(self, connector_id: int) -> None:
        """Delete a connector outside the API."""
        with self._lock:
            if self._connectors.pop(connector_id, None) is None:
                raise KeyError(connector_id)

    def clear(self) -> None:
        """Forget every connector (ids keep increasing, so old ids stay unknown)."""
        with self._lock:
            self._connectors.clear()

    # --- the API's operations -----------------------------------------------------------------

    def create(self, changes: ConnectorChanges) -> SimConnector:
        """A new connector from a create request (name required)."""
        if changes.name is UNSET:
            raise InvalidRequestError("name is required to create a connector.")
        with self._lock:
            base = SimConnector(
                id=self._allocate_id(),
                name=changes.name,
                qualys_aws_account_id=self._qualys_account_id,
                # Without regions the connector covers all regions; OPEN what Qualys defaults to.
                all_regions=not changes.regions,
                run_frequency=DEFAULT_RUN_FREQUENCY,
            )
            connector = _apply(base, changes)
            if connector.disabled:
                connector = replace(connector, connector_state="DISABLED")
            else:
                connector = self._evaluate(connector)
            self._connectors[connector.id] = connector
            return connector

    def get(self, connector_id: int) -> SimConnector:
        """The connector as it is now; reading it moves a running scan one step on."""
        with self._lock:
            return self._read([self._existing(connector_id)])[0]

    def search(self, request: SearchRequest) -> tuple[list[SimConnector], bool]:
        """One page of matching connectors by id, and whether more records follow."""
        with self._lock:
            matches = self._matching(request.criteria)
            if request.start_from_id is not None:
                matches = [c for c in matches if c.id >= request.start_from_id]
            page = matches[: request.limit]
            return self._read(page), len(matches) > request.limit

    def count(self, request: SearchRequest) -> int:
        """How many connectors match the filters."""
        with self._lock:
            return len(self._matching(request.criteria))

    def update(self, connector_id: int, changes: ConnectorChanges) -> None:
        """Change the fields a request mentions; enabling or a new role triggers a role check."""
        with self._lock:
            self._update(self._existing(connector_id), changes)

    def update_many(self, request: SearchRequest, changes: ConnectorChanges) -> list[int]:
        """Apply the same changes to every connector matching the filters."""
        if any(c.operator == "NOT EQUALS" for c in request.criteria):
            raise InvalidRequestError("Operator NOT EQUALS is not supported for update.")
        with self._lock:
            matches = self._matching(request.criteria)
            for connector in matches:
                self._update(connector, changes)
            return [c.id for c in matches]

    def delete(self, connector_id: int) -> None:
        """Delete one connector."""
        with self._lock:
            self._connectors.pop(self._existing(connector_id).id)

    def delete_many(self, request: SearchRequest) -> list[int]:
        """Delete every connector matching the filters."""
        with self._lock:
            matches = self._matching(request.criteria)
            for connector in matches:
                del self._connectors[connector.id]
            return [c.id for c in matches]

    def run(self, connector_id: int) -> None:
        """Start a scan now: check the role and queue the connector."""
        with self._lock:
            connector = self._existing(connector_id)
            if connector.disabled:
                raise InvalidRequestError(
                    f"Connector {connector_id} is disabled; enable it before running it."
                )
            self._connectors[connector_id] = self._evaluate(connector)

    # --- internals ----------------------------------------------------------------------------

    def _allocate_id(self) -> int:
        connector_id = self._next_id
        self._next_id += 1
        return connector_id

    def _existing(self, connector_id: int) -> SimConnector:
        connector = self._connectors.get(connector_id)
        if connector is None:
            raise ObjectNotFoundError(connector_id)
        return connector

    def _matching(self, criteria: Sequence[Criterion]) -> list[SimConnector]:
        return [c for c in self.all() if all(_matches(c, criterion) for criterion in criteria)]

    def _update(self, old: SimConnector, changes: ConnectorChanges) -> None:
        connector = _apply(old, changes)
        if connector.disabled:
            connector = replace(connector, connector_state="DISABLED")
        elif old.disabled or changes.disabled is False or changes.arn is not UNSET:
            # Re-sending disabled=false or the arn re-checks the role, as a retrying client needs.
            connector = self._evaluate(connector)
        self._connectors[connector.id] = connector

    def _evaluate(self, connector: SimConnector) -> SimConnector:
        """The connector after Qualys tried to assume its role: QUEUED, or ERROR with a reason."""
        if connector.arn is None:
            return replace(connector, connector_state="ERROR", last_error=NO_ROLE_ERROR)
        checker = self.role_checker
        problem = checker(connector) if checker is not None else None
        if problem is not None:
            return replace(connector, connector_state="ERROR", last_error=problem)
        return replace(connector, connector_state="QUEUED", last_error=None)

    def _read(self, connectors: Iterable[SimConnector]) -> list[SimConnector]:
        """Return connectors as they are, then move each running scan one step on."""
        shown = list(connectors)
        for connector in shown:
            state = _NEXT_STATE.get(connector.connector_state)
            if state is None:
                continue
            advanced = replace(connector, connector_state=state)
            if state == "FINISHED_SUCCESS":
                now = self._clock()
                minutes = connector.run_frequency or DEFAULT_RUN_FREQUENCY
                advanced = replace(
                    advanced,
                    last_sync=_timestamp(now),
                    next_sync=_timestamp(now + timedelta(minutes=minutes)),
                )
            self._connectors[connector.id] = advanced
        return shown


def _check_field_names(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - _FIELD_NAMES)
    if unknown:
        raise TypeError(f"unknown SimConnector fields: {', '.join(unknown)}")


def _normalized(connector: SimConnector) -> SimConnector:
    """Lists given to seed/modify become tuples, so connectors stay immutable."""
    return replace(
        connector,
        regions=tuple(connector.regions),
        activation_modules=tuple(connector.activation_modules),
        default_tag_ids=tuple(connector.default_tag_ids),
    )


def _apply(connector: SimConnector, changes: ConnectorChanges) -> SimConnector:
    values: dict[str, Any] = {}
    if changes.name is not UNSET:
        values["name"] = changes.name
    if changes.description is not UNSET:
        values["description"] = changes.description
    if changes.arn is not UNSET:
        values["arn"] = changes.arn
        values["aws_account_id"] = account_of(changes.arn)
    if changes.external_id is not UNSET:
        values["external_id"] = changes.external_id
    if changes.all_regions is not UNSET:
        values["all_regions"] = changes.all_regions
    if changes.disabled is not UNSET:
        values["disabled"] = changes.disabled
    if changes.run_frequency is not UNSET:
        values["run_frequency"] = changes.run_frequency
    values["regions"] = _edit(connector.regions, changes.regions)
    values["activation_modules"] = _edit(connector.activation_modules, changes.activation_modules)
    values["default_tag_ids"] = _edit(connector.default_tag_ids, changes.default_tag_ids)
    return replace(connector, **values)


def _edit(items: tuple[T, ...], edits: Sequence[CollectionEdit[T]]) -> tuple[T, ...]:
    result = list(items)
    for edit in edits:
        if edit.action == "set":
            result = []
        if edit.action == "remove":
            result = [item for item in result if item not in edit.items]
        else:
            result.extend(item for item in edit.items if item not in result)
    return tuple(result)


def _matches(connector: SimConnector, criterion: Criterion) -> bool:
    actual = getattr(connector, _SEARCH_ATTRIBUTES[criterion.field])
    if criterion.field == "disabled":
        actual = "true" if actual else "false"
        values = tuple(v.lower() for v in criterion.values)
    else:
        values = criterion.values
    if criterion.field == "id":
        targets = [int(v) for v in values]
        if criterion.operator == "GREATER":
            return bool(actual > targets[0])
        if criterion.operator == "LESSER":
            return bool(actual < targets[0])
        if criterion.operator != "CONTAINS":
            values = tuple(str(target) for target in targets)  # "007" finds id 7
    text = None if actual is None else str(actual)
    if criterion.operator == "EQUALS":
        return text == values[0]
    if criterion.operator == "NOT EQUALS":
        return text != values[0]
    if criterion.operator == "IN":
        return text in values
    # CONTAINS, case-sensitive (whether Qualys folds case is OPEN).
    return text is not None and values[0] in text
