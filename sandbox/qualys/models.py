"""Value types of the Qualys simulator: connectors, recorded requests and their headers."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

ACTIVATION_MODULES = ("VM", "PC", "SCA", "CLOUDVIEW", "CERTVIEW")
CONNECTOR_STATES = (
    "PENDING",
    "RUNNING",
    "SUCCESS",
    "ERROR",
    "QUEUED",
    "PROCESSING",
    "FINISHED_SUCCESS",
    "FINISHED_ERRORS",
    "DISABLED",
    "INCOMPLETE",
)
OPERATIONS = ("create", "get", "search", "count", "update", "delete", "run")
DEFAULT_RUN_FREQUENCY = 240
RUN_FREQUENCIES = (60, 120, 180, 240, 360, 480, 720, 1440)
"""The minutes Qualys accepts as runFrequency (Qualys's v3 Azure client; AWS inferred)."""
APPLICATIONS = ("AI", "CI", "CSA")
"""Apps of a v3 connector: Asset Inventory (always on), and CI + CSA for CSPM."""
ALWAYS_ON_APPLICATION = "AI"
ACCOUNT_TYPES = ("GLOBAL", "GOVCLOUD", "CHINA")
SYNC_RESULT_STATES = ("FINISHED_SUCCESS", "FINISHED_ERRORS", "ERROR")

_ACCOUNT_IN_ARN = re.compile(r"^arn:[^:]*:iam::(\d{12}):")


def account_of(arn: str | None) -> str | None:
    """The AWS account id inside a role ARN, as Qualys derives `awsAccountId`."""
    if arn is None:
        return None
    match = _ACCOUNT_IN_ARN.match(arn)
    return match.group(1) if match else None


@dataclass(frozen=True)
class SimConnector:
    """One AWS connector as the simulator stores it (snake_case of the API's camelCase)."""

    id: int
    name: str
    description: str | None = None
    external_id: str | None = None
    arn: str | None = None
    aws_account_id: str | None = None
    qualys_aws_account_id: str | None = None
    all_regions: bool = True
    regions: tuple[str, ...] = ()
    disabled: bool = False
    activation_modules: tuple[str, ...] = ()
    default_tag_ids: tuple[int, ...] = ()
    run_frequency: int | None = DEFAULT_RUN_FREQUENCY
    connector_state: str = "PENDING"
    last_error: str | None = None
    last_sync: str | None = None
    next_sync: str | None = None
    applications: tuple[tuple[str, str | None], ...] = ((ALWAYS_ON_APPLICATION, None),)
    """``connectorAppInfos`` (3.0) as (name, identifier) pairs; identifier None shows the arn."""
    use_for_cloud_view: bool = False
    """API 2.0's ``useForCloudView``, stored apart from the 3.0 apps."""
    account_type: str = "GLOBAL"
    """GLOBAL, GOVCLOUD or CHINA, from ``isGovCloudConfigured``/``isChinaConfigured`` at create."""
    hidden: bool = False
    """Outside the API user's scope: the API answers OBJECT_NOT_FOUND and never lists it."""

    @property
    def application_names(self) -> tuple[str, ...]:
        """The names of the connector's apps, AI first."""
        return tuple(name for name, _ in self.applications)


@dataclass(frozen=True)
class SyncOutcome:
    """How a sync ends: FINISHED_SUCCESS, FINISHED_ERRORS or ERROR, with the lastError text."""

    state: str
    error: str | None = None

    def __post_init__(self) -> None:
        if self.state not in SYNC_RESULT_STATES:
            raise ValueError(f"a sync ends {', '.join(SYNC_RESULT_STATES)}, not {self.state}")
        if (self.error is None) != (self.state == "FINISHED_SUCCESS"):
            raise ValueError("an error text goes with FINISHED_ERRORS and ERROR only")

    @staticmethod
    def success() -> SyncOutcome:
        """The sync ran and found no problem."""
        return SyncOutcome("FINISHED_SUCCESS")

    @staticmethod
    def errors(message: str) -> SyncOutcome:
        """The sync ran but some of it failed (e.g. a region or a permission)."""
        return SyncOutcome("FINISHED_ERRORS", message)

    @staticmethod
    def failed(message: str) -> SyncOutcome:
        """The sync could not run at all, e.g. Qualys could not assume the role."""
        return SyncOutcome("ERROR", message)


RoleChecker = Callable[[SimConnector], str | SyncOutcome | None]
"""Run when a sync ends: None for success, an error text for ERROR, or a SyncOutcome."""


class HeaderMap(Mapping[str, str]):
    """Read-only HTTP headers with case-insensitive lookup; repeated names are joined by ", "."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        merged: dict[str, tuple[str, str]] = {}
        for name, value in items:
            key = name.lower()
            if key in merged:
                first_name, first_value = merged[key]
                merged[key] = (first_name, f"{first_value}, {value}")
            else:
                merged[key] = (name, value)
        self._items = merged

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"HeaderMap({dict(self.items())!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """A request the simulator received and how it answered (status 0: no answer was sent)."""

    method: str
    path: str
    api_version: str | None
    operation: str | None
    connector_id: int | None
    headers: Mapping[str, str]
    body: bytes
    status: int
    username: str | None
    answered: float = field(default_factory=time.monotonic, compare=False)
    """When the answer was sent (``time.monotonic``)."""

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")
