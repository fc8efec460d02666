"""The typed requests the parser makes of ServiceRequest bodies and the store carries out."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_LIMIT_RESULTS = 100


class Unset(enum.Enum):
    """Marks a field that a request did not mention (as opposed to one it cleared)."""

    UNSET = "UNSET"


UNSET = Unset.UNSET


@dataclass(frozen=True)
class CollectionEdit(Generic[T]):
    """One `set`, `add` or `remove` of a collection field (`update` is read as `set`)."""

    action: str
    items: tuple[T, ...]


@dataclass(frozen=True)
class ConnectorChanges:
    """The fields a create or update request mentions; an empty text element clears a field."""

    name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    arn: str | Unset | None = UNSET
    external_id: str | Unset | None = UNSET
    all_regions: bool | Unset = UNSET
    disabled: bool | Unset = UNSET
    run_frequency: int | Unset = UNSET
    regions: tuple[CollectionEdit[str], ...] = ()
    activation_modules: tuple[CollectionEdit[str], ...] = ()
    default_tag_ids: tuple[CollectionEdit[int], ...] = ()
    applications: tuple[CollectionEdit[tuple[str, str | None]], ...] = ()
    use_for_cloud_view: bool | Unset = UNSET
    gov_cloud: bool | Unset = UNSET
    china: bool | Unset = UNSET


@dataclass(frozen=True)
class Criterion:
    """One `filters/Criteria` element: field, operator and its value(s) (several for IN)."""

    field: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class SearchRequest:
    """Filters and paging preferences of a search, count, update-many or delete-many."""

    criteria: tuple[Criterion, ...] = ()
    has_filters: bool = False
    limit: int = DEFAULT_LIMIT_RESULTS
    start_from_id: int | None = None
