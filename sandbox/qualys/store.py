"""The simulator's connectors: create, read, change and delete them, and their state machine."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sandbox.qualys.errors import InvalidRequestError, ObjectNotFoundError
from sandbox.qualys.models import (
    ALWAYS_ON_APPLICATION,
    APPLICATIONS,
    DEFAULT_RUN_FREQUENCY,
    RoleChecker,
    SimConnector,
    SyncOutcome,
    account_of,
)
from sandbox.qualys.wire.requests import (
    UNSET,
    CollectionEdit,
    ConnectorChanges,
    Criterion,
    SearchRequest,
    Unset,
)

T = TypeVar("T")

FIRST_ID = 1_000_001
NO_ROLE_ERROR = "No IAM role ARN is configured for this connector; Qualys cannot assume a role."

Scope = Callable[[SimConnector], bool]
"""Whether a connector is within the API user's scope (False: the API acts as if it is gone)."""
App = tuple[str, str | None]

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
# The account type each create flag selects, and the flag's name for error messages.
_ACCOUNT_FLAGS = (
    ("gov_cloud", "GOVCLOUD", "isGovCloudConfigured"),
    ("china", "CHINA", "isChinaConfigured"),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SyncTiming:
    """How long a started sync waits in QUEUED, then runs in PROCESSING, in seconds."""

    queue_seconds: float = 0.0
    run_seconds: float = 0.2

    def __post_init__(self) -> None:
        if self.queue_seconds < 0 or self.run_seconds < 0:
            raise ValueError("sync times must not be negative")


@dataclass(frozen=True)
class _Sync:
    """A sync that was started and has not ended; outcome None asks the role checker."""

    started: float
    outcome: SyncOutcome | None


class ConnectorStore:
    """Thread-safe connectors keyed by id; every method takes the shared lock.

    A sync is started by ``run`` (or by enabling, with ``sync_on_enable``) and is not
    driven by a thread: whenever a connector is read, its state is worked out from the
    time its sync started (QUEUED, then PROCESSING, then the result). The result is
    decided when the sync ends: a scripted outcome if one was taken at the start, else
    the role checker's verdict on the connector as it is at that moment.
    """

    def __init__(
        self,
        *,
        lock: threading.RLock,
        qualys_account_ids: Mapping[str, str | None],
        role_checker: RoleChecker | None = None,
        scope: Scope | None = None,
        description_limit: int | None = None,
        sync_timing: SyncTiming = SyncTiming(),
        sync_on_enable: bool = False,
        clock: Callable[[], datetime] = _now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if description_limit is not None and description_limit < 1:
            raise ValueError("description_limit must be at least 1")
        self._lock = lock
        self._qualys_account_ids = dict(qualys_account_ids)
        self.role_checker = role_checker
        self.scope = scope
        self._description_limit = description_limit
        self._timing = sync_timing
        self._sync_on_enable = sync_on_enable
        self._clock = clock
        self._monotonic = monotonic
        self._connectors: dict[int, SimConnector] = {}
        self._syncs: dict[int, _Sync] = {}
        self._scripted: deque[SyncOutcome] = deque()
        self._next_id = FIRST_ID

    # --- outside the API (test set-up) --------------------------------------------------------

    def all(self) -> list[SimConnector]:
        """Every connector, hidden ones too, sorted by id, with syncs brought up to date."""
        with self._lock:
            return [self._settled(self._connectors[key]) for key in sorted(self._connectors)]

    def find(self, connector_id: int) -> SimConnector | None:
        """The connector with this id (hidden or not), with its sync brought up to date."""
        with self._lock:
            connector = self._connectors.get(connector_id)
            return None if connector is None else self._settled(connector)

    def visible(self, connector: SimConnector) -> bool:
        """Whether the API user can see this connector."""
        with self._lock:
            scope = self.scope
            return not connector.hidden and (scope is None or scope(connector))

    def seed(self, values: dict[str, Any]) -> SimConnector:
        """Add a connector as given (no validation; its state stays as given until a run)."""
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
            account_type = values.get("account_type", "GLOBAL")
            values.setdefault("qualys_aws_account_id", self._qualys_account_ids[account_type])
            values.setdefault("aws_account_id", account_of(values.get("arn")))
            disabled = values.get("disabled", False)
            values.setdefault("connector_state", "DISABLED" if disabled else "FINISHED_SUCCESS")
            connector = _normalized(SimConnector(id=connector_id, **values))
            self._connectors[connector_id] = connector
            return connector

    def modify(self, connector_id: int, values: dict[str, Any]) -> SimConnector:
        """Change fields as given (no validation); setting the state or disabling ends a sync."""
        _check_field_names(values)
        if "id" in values:
            raise ValueError("the id of a connector cannot be changed")
        with self._lock:
            old = self._connectors.get(connector_id)
            if old is None:
                raise KeyError(connector_id)
            if "arn" in values:
                values.setdefault("aws_account_id", account_of(values["arn"]))
            if "connector_state" in values or values.get("disabled"):
                self._syncs.pop(connector_id, None)
            connector = _normalized(replace(self._settled(old), **values))
            self._connectors[connector_id] = connector
            return connector

    def remove(self, connector_id: int) -> None:
        """Delete a connector outside the API."""
        with self._lock:
            if self._connectors.pop(connector_id, None) is None:
                raise KeyError(connector_id)
            self._syncs.pop(connector_id, None)

    def clear(self) -> None:
        """Forget every connector and scripted sync (ids keep increasing: old ids stay unknown)."""
        with self._lock:
            self._connectors.clear()
            self._syncs.clear()
            self._scripted.clear()

    def script_syncs(self, outcome: SyncOutcome, times: int) -> None:
        """The next `times` syncs to start end with `outcome`, whatever the role checker says."""
        with self._lock:
            self._scripted.extend([outcome] * times)

    # --- the API's operations -----------------------------------------------------------------

    def create(self, changes: ConnectorChanges) -> SimConnector:
        """A new connector from a create request (name required): DISABLED or QUEUED."""
        if changes.name is UNSET:
            raise InvalidRequestError("name is required to create a connector.")
        account_type = _account_type(changes)
        with self._lock:
            base = SimConnector(
                id=self._next_id,
                name=changes.name,
                qualys_aws_account_id=self._qualys_account_ids[account_type],
                # Without regions the connector covers all regions; OPEN what Qualys defaults to.
                all_regions=not changes.regions,
                run_frequency=DEFAULT_RUN_FREQUENCY,
                account_type=account_type,
                connector_state="DISABLED",
            )
            connector = self._changed(base, changes, enabling=True)
            self._allocate_id()
            return self._commit(connector, enabling=not connector.disabled)

    def get(self, connector_id: int) -> SimConnector:
        """The connector as it is now."""
        with self._lock:
            return self._existing(connector_id)

    def search(self, request: SearchRequest) -> tuple[list[SimConnector], bool]:
        """One page of matching connectors by id, and whether more records follow."""
        with self._lock:
            matches = self._matching(request.criteria)
            if request.start_from_id is not None:
                matches = [c for c in matches if c.id >= request.start_from_id]
            return matches[: request.limit], len(matches) > request.limit

    def count(self, request: SearchRequest) -> int:
        """How many connectors match the filters."""
        with self._lock:
            return len(self._matching(request.criteria))

    def update(self, connector_id: int, changes: ConnectorChanges) -> None:
        """Change the fields a request mentions; enabling queues, disabling ends a sync."""
        with self._lock:
            old = self._existing(connector_id)
            enabling = _enables(old, changes)
            self._commit(self._changed(old, changes, enabling=enabling), enabling=enabling)

    def update_many(self, request: SearchRequest, changes: ConnectorChanges) -> list[int]:
        """Apply the same changes to every connector matching the filters (all or none)."""
        if any(c.operator == "NOT EQUALS" for c in request.criteria):
            raise InvalidRequestError("Operator NOT EQUALS is not supported for update.")
        with self._lock:
            matches = self._matching(request.criteria)
            enabling = [_enables(old, changes) for old in matches]
            updated = [
                self._changed(old, changes, enabling=enables)
                for old, enables in zip(matches, enabling, strict=True)
            ]
            for connector, enables in zip(updated, enabling, strict=True):
                self._commit(connector, enabling=enables)
            return [c.id for c in matches]

    def delete(self, connector_id: int) -> None:
        """Delete one connector."""
        with self._lock:
            self.remove(self._existing(connector_id).id)

    def delete_many(self, request: SearchRequest) -> list[int]:
        """Delete every connector matching the filters."""
        with self._lock:
            matches = self._matching(request.criteria)
            for connector in matches:
                self.remove(connector.id)
            return [c.id for c in matches]

    def run(self, connector_id: int) -> None:
        """Start a sync now, unless one is under way; a disabled connector cannot run."""
        with self._lock:
            connector = self._existing(connector_id)
            if connector.disabled:
                raise InvalidRequestError(
                    f"Cannot run connector {connector_id}: the connector is disabled."
                )
            if connector_id not in self._syncs:
                self._start_sync(connector)

    # --- internals ----------------------------------------------------------------------------

    def _allocate_id(self) -> int:
        connector_id = self._next_id
        self._next_id += 1
        return connector_id

    def _existing(self, connector_id: int) -> SimConnector:
        connector = self.find(connector_id)
        if connector is None or not self.visible(connector):
            raise ObjectNotFoundError(connector_id)
        return connector

    def _matching(self, criteria: Sequence[Criterion]) -> list[SimConnector]:
        return [
            c
            for c in self.all()
            if self.visible(c) and all(_matches(c, criterion) for criterion in criteria)
        ]

    def _changed(
        self, old: SimConnector, changes: ConnectorChanges, *, enabling: bool
    ) -> SimConnector:
        """The connector after a request's changes, refusing what Qualys would refuse."""
        _check_account_type(old, changes)
        connector = _apply(old, changes, description_limit=self._description_limit)
        if connector.disabled:
            return replace(connector, connector_state="DISABLED")
        if enabling:
            # Enabling queues the connector for its first sync; its role is checked then.
            return replace(connector, connector_state="QUEUED")
        return connector

    def _commit(self, connector: SimConnector, *, enabling: bool) -> SimConnector:
        """Store a changed connector: disabling ends its sync, enabling may start one."""
        self._connectors[connector.id] = connector
        if connector.disabled:
            self._syncs.pop(connector.id, None)
        elif enabling and self._sync_on_enable:
            self._start_sync(connector)
        return self._connectors[connector.id]

    def _start_sync(self, connector: SimConnector) -> None:
        outcome = self._scripted.popleft() if self._scripted else None
        self._syncs[connector.id] = _Sync(self._monotonic(), outcome)
        self._connectors[connector.id] = self._settled(connector)

    def _settled(self, connector: SimConnector) -> SimConnector:
        """The connector with its sync's state as of now; a sync that ended gets its result."""
        sync = self._syncs.get(connector.id)
        if sync is None:
            return connector
        elapsed = self._monotonic() - sync.started
        timing = self._timing
        if elapsed < timing.queue_seconds + timing.run_seconds:
            state = "QUEUED" if elapsed < timing.queue_seconds else "PROCESSING"
            settled = replace(connector, connector_state=state)
        else:
            del self._syncs[connector.id]
            ended = self._clock() - timedelta(
                seconds=elapsed - timing.queue_seconds - timing.run_seconds
            )
            settled = self._finished(connector, sync.outcome or self._verdict(connector), ended)
        self._connectors[connector.id] = settled
        return settled

    def _verdict(self, connector: SimConnector) -> SyncOutcome:
        """What Qualys finds when it assumes the connector's role for a sync."""
        if connector.arn is None:
            return SyncOutcome.failed(NO_ROLE_ERROR)
        checker = self.role_checker
        verdict = checker(connector) if checker is not None else None
        if verdict is None:
            return SyncOutcome.success()
        if isinstance(verdict, str):
            return SyncOutcome.failed(verdict)
        return verdict

    @staticmethod
    def _finished(connector: SimConnector, outcome: SyncOutcome, ended: datetime) -> SimConnector:
        minutes = connector.run_frequency or DEFAULT_RUN_FREQUENCY
        # lastSync is the last sync that ran (with or without errors), not one that could not.
        last_sync = connector.last_sync if outcome.state == "ERROR" else _timestamp(ended)
        return replace(
            connector,
            connector_state=outcome.state,
            last_error=outcome.error,
            last_sync=last_sync,
            next_sync=_timestamp(ended + timedelta(minutes=minutes)),
        )


def _enables(old: SimConnector, changes: ConnectorChanges) -> bool:
    return old.disabled and changes.disabled is False


def _account_type(changes: ConnectorChanges) -> str:
    """The account type a create request chooses; both flags true is refused."""
    chosen = [kind for attribute, kind, _ in _ACCOUNT_FLAGS if getattr(changes, attribute) is True]
    if len(chosen) > 1:
        raise InvalidRequestError(
            "isGovCloudConfigured and isChinaConfigured cannot both be true: "
            "a connector has one account type."
        )
    return chosen[0] if chosen else "GLOBAL"


def _check_account_type(connector: SimConnector, changes: ConnectorChanges) -> None:
    """An update may repeat the account type's flags, never change them."""
    for attribute, kind, flag in _ACCOUNT_FLAGS:
        sent: bool | Unset = getattr(changes, attribute)
        if sent is not UNSET and sent != (connector.account_type == kind):
            raise InvalidRequestError(
                f"The account type cannot change: {flag} must stay "
                f"{str(connector.account_type == kind).lower()} for this connector."
            )


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
        applications=_as_apps(connector.applications),
    )


def _as_apps(
    value: Mapping[str, str | None] | Iterable[str | Sequence[str | None]],
) -> tuple[App, ...]:
    """Apps given to seed/modify as a mapping, names or (name, identifier) pairs."""
    if isinstance(value, Mapping):
        return tuple(value.items())
    apps: list[App] = []
    for item in value:
        if isinstance(item, str):
            apps.append((item, None))
        else:
            name, identifier = item
            apps.append((str(name), identifier))
    return tuple(apps)


def _edit_apps(apps: tuple[App, ...], edits: Sequence[CollectionEdit[App]]) -> tuple[App, ...]:
    """Apps after set/add/remove by name; AI is always on, so a set keeps it."""
    result = dict(apps)
    for edit in edits:
        names = [name for name, _ in edit.items]
        if edit.action == "remove":
            if ALWAYS_ON_APPLICATION in names:
                raise InvalidRequestError(
                    f"{ALWAYS_ON_APPLICATION} (Asset Inventory) is always on; it cannot be removed."
                )
            result = {name: ident for name, ident in result.items() if name not in names}
            continue
        if edit.action == "set":
            result = {}
        result.update(edit.items)
    result.setdefault(ALWAYS_ON_APPLICATION, None)
    return tuple(sorted(result.items(), key=lambda app: APPLICATIONS.index(app[0])))


def _apply(
    connector: SimConnector, changes: ConnectorChanges, *, description_limit: int | None
) -> SimConnector:
    values: dict[str, Any] = {}
    if changes.name is not UNSET:
        values["name"] = changes.name
    if changes.description is not UNSET:
        # Cut silently to the limit, as the UI's field would.
        cut = changes.description
        values["description"] = cut[:description_limit] if cut and description_limit else cut
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
    if changes.use_for_cloud_view is not UNSET:
        values["use_for_cloud_view"] = changes.use_for_cloud_view
    if changes.applications:
        values["applications"] = _edit_apps(connector.applications, changes.applications)
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
