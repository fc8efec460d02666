"""Typed values exchanged with the Qualys Connector API."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class ApiVersion(enum.Enum):
    """The QPS REST version the client speaks; 3.0 adds ``runFrequency`` and the apps."""

    V2 = "2.0"
    V3 = "3.0"


class Operator(enum.Enum):
    """Search criteria operators as Qualys spells them."""

    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT EQUALS"
    CONTAINS = "CONTAINS"
    GREATER = "GREATER"
    LESSER = "LESSER"
    IN = "IN"


@dataclass(frozen=True)
class Criterion:
    """One search filter; several are ANDed."""

    field: str
    operator: Operator
    value: str

    @classmethod
    def equals(cls, field: str, value: str) -> Criterion:
        """``field EQUALS value``."""
        return cls(field, Operator.EQUALS, value)


@dataclass(frozen=True)
class Connector:
    """An AWS connector as Qualys reports it; any field Qualys leaves out is ``None``."""

    id: int
    name: str | None = None
    description: str | None = None
    arn: str | None = None
    external_id: str | None = None
    aws_account_id: str | None = None
    qualys_aws_account_id: str | None = None
    all_regions: bool | None = None
    regions: tuple[str, ...] = ()
    disabled: bool | None = None
    activation_modules: tuple[str, ...] = ()
    default_tag_ids: tuple[int, ...] = ()
    run_frequency: int | None = None
    applications: tuple[str, ...] = ()
    """The names in ``connectorAppInfos`` (3.0): AI, plus CI and CSA for CSPM."""
    gov_cloud: bool | None = None
    china: bool | None = None
    state: str | None = None
    last_error: str | None = None
    last_sync: str | None = None
    is_deleted: bool | None = None


@dataclass(frozen=True)
class ConnectorChanges:
    """Fields to write on create or update; ``None`` leaves a field out of the request.

    Collections are written with ``set`` (replace all). ``regions`` is only sent when
    ``all_regions`` is false, since Qualys ignores endpoints when all regions are on.
    ``applications`` are sent with ``arn`` as each app's identifier, so they need it; on
    API 2.0 they become ``useForCloudView`` (true for CSPM). ``gov_cloud`` and ``china``
    choose the connector's account type, at create only.
    """

    name: str | None = None
    description: str | None = None
    arn: str | None = None
    external_id: str | None = None
    all_regions: bool | None = None
    regions: Sequence[str] | None = None
    disabled: bool | None = None
    activation_modules: Sequence[str] | None = None
    default_tag_ids: Sequence[int] | None = None
    run_frequency: int | None = None
    applications: Sequence[str] | None = None
    gov_cloud: bool | None = None
    china: bool | None = None
