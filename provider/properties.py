"""Resource properties, parsed once from CloudFormation's strings into typed values.

CloudFormation sends every scalar as a string (``"true"``, ``"240"``) and lists as lists
of strings. Each rule here matches the README's property tables; a broken rule raises
``PropertyError`` naming the property, before anything reaches Qualys.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provider.errors import PropertyError
from provider.ids import is_qualys_id

ACTIVATION_MODULES = ("VM", "PC", "SCA", "CLOUDVIEW", "CERTVIEW")
DEFAULT_ACTIVATION_MODULES = ("VM",)
APPLICATIONS = ("AI", "CI", "CSA")
"""Qualys's apps on a connector: asset inventory always, plus CI and CSA for CSPM."""
ASSET_INVENTORY = ("AI",)
CSPM = ("AI", "CI", "CSA")
DEFAULT_RUN_FREQUENCY = 240
RUN_FREQUENCIES = (60, 120, 180, 240, 360, 480, 720, 1440)
"""Minutes between syncs that Qualys accepts."""
MAX_NAME = 255
MAX_DESCRIPTION = 700
"""Qualys is assumed to store 1,000 characters of description; the provider's marker and
its separator take up to 286 of them (with a 255-character LogicalResourceId)."""
EXTERNAL_ID_DIGITS = 40

_CLOUDFORMATION_KEYS = frozenset({"ServiceToken", "ServiceTimeout"})
# Every pattern is ASCII-only: ``\d`` would also match Arabic-Indic or superscript digits.
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9+=,.@:/_-]{2,1224}")
_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
# Characters XML 1.0 cannot carry, so Qualys could never store them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def generate_external_id() -> str:
    """A fresh external ID: 40 decimal digits from the OS CSPRNG (about 133 bits), the
    first not 0, which every rule Qualys tenants have enforced accepts (9 to 90 digits)."""
    low = 10 ** (EXTERNAL_ID_DIGITS - 1)
    return str(low + secrets.randbelow(9 * low))


def _code(text: str) -> str:
    """An enumeration's value in any case, ASCII only: some non-ASCII letters upper-case
    to ASCII ones (the dotless i, the long s)."""
    return text.upper() if text.isascii() else text


def _check_known(raw: object, known: frozenset[str]) -> Mapping[str, Any]:
    """``raw`` as properties: an object whose keys are all known."""
    if not isinstance(raw, Mapping):
        raise PropertyError("ResourceProperties", "must be an object of properties")
    unknown = sorted(set(map(str, raw)) - known - _CLOUDFORMATION_KEYS)
    if unknown:
        raise PropertyError(unknown[0], f"is not supported; known: {', '.join(sorted(known))}")
    return raw


def _text(
    raw: Mapping[str, Any], name: str, *, required: bool, max_length: int, default: str = ""
) -> str:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise PropertyError(name, "is required")
        return default
    if not isinstance(value, str):
        raise PropertyError(name, "must be a string")
    if len(value) > max_length:
        raise PropertyError(name, f"must be at most {max_length} characters, not {len(value)}")
    if _NOT_XML.search(value):
        raise PropertyError(name, "must not contain control characters")
    return value


def _boolean(raw: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = raw.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise PropertyError(name, 'must be "true" or "false"')


def _items(raw: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    """A list property; a comma-separated string is accepted too. Blanks are dropped
    (a CommaDelimitedList parameter left empty arrives as ``[""]``); ``None`` if empty."""
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PropertyError(name, "must be a list of strings")
    items = tuple(dict.fromkeys(item.strip() for item in value if item.strip()))
    return items or None


def _choice(raw: Mapping[str, Any], name: str, choices: tuple[int, ...]) -> int | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    text = str(value).strip()
    allowed = ", ".join(map(str, choices))
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,6}", text):
        raise PropertyError(name, f"must be one of {allowed}")
    number = int(text)
    if number not in choices:
        raise PropertyError(name, f"must be one of {allowed}, not {number}")
    return number


def _role_arn(raw: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    role_arn = _text(raw, name, required=required, max_length=2048).strip()
    if not role_arn:
        return None
    if not _ROLE_ARN.fullmatch(role_arn):
        raise PropertyError(name, "must be an IAM role ARN (arn:<partition>:iam::...)")
    return role_arn


def _applications(raw: Mapping[str, Any]) -> tuple[str, ...]:
    given = tuple(_code(a) for a in _items(raw, "Applications") or ())
    if not given:
        return ASSET_INVENTORY
    unknown = [a for a in given if a not in APPLICATIONS]
    if unknown or set(given) not in ({*ASSET_INVENTORY}, {*CSPM}):
        raise PropertyError("Applications", "must be AI (asset inventory) or AI,CI,CSA (CSPM)")
    return tuple(a for a in APPLICATIONS if a in given)


@dataclass(frozen=True)
class ConnectorProperties:
    """The properties of ``Custom::QualysConnector``."""

    connector_name: str
    description: str = ""
    all_regions: bool = True
    regions: tuple[str, ...] = ()
    activation_modules: tuple[str, ...] = DEFAULT_ACTIVATION_MODULES
    run_frequency_minutes: int = DEFAULT_RUN_FREQUENCY
    run_frequency_given: bool = False
    default_tag_ids: tuple[int, ...] = ()
    external_id: str | None = None
    applications: tuple[str, ...] = ASSET_INVENTORY
    role_arn: str | None = None

    FIELDS = frozenset(
        {
            "ConnectorName",
            "Description",
            "AllRegions",
            "Regions",
            "ActivationModules",
            "RunFrequencyMinutes",
            "DefaultTagIds",
            "ExternalId",
            "Applications",
            "RoleArn",
        }
    )

    @classmethod
    def parse(cls, given: object) -> ConnectorProperties:
        """Check every rule and apply the defaults."""
        raw = _check_known(given, cls.FIELDS)
        name = _text(raw, "ConnectorName", required=True, max_length=MAX_NAME)
        if not name.strip():
            raise PropertyError("ConnectorName", "must not be blank")
        description = _text(raw, "Description", required=False, max_length=MAX_DESCRIPTION)

        all_regions = _boolean(raw, "AllRegions", default=True)
        regions = _items(raw, "Regions") or ()
        for region in regions:
            if not _REGION.fullmatch(region):
                raise PropertyError("Regions", f"must hold AWS region codes; {region!r} is not one")
        if all_regions and regions:
            raise PropertyError("Regions", "must be empty when AllRegions is true")
        if not all_regions and not regions:
            raise PropertyError("Regions", "must name at least one region when AllRegions is false")

        modules = tuple(dict.fromkeys(_code(m) for m in _items(raw, "ActivationModules") or ()))
        for module in modules:
            if module not in ACTIVATION_MODULES:
                raise PropertyError(
                    "ActivationModules",
                    f"must be a subset of {', '.join(ACTIVATION_MODULES)}; {module!r} is not",
                )

        frequency = _choice(raw, "RunFrequencyMinutes", RUN_FREQUENCIES)

        tag_ids = _items(raw, "DefaultTagIds") or ()
        for tag_id in tag_ids:
            if not is_qualys_id(tag_id):
                raise PropertyError("DefaultTagIds", f"must hold Qualys tag ids; {tag_id!r} is not")

        external_id = _text(raw, "ExternalId", required=False, max_length=1224) or None
        if external_id is not None and not _EXTERNAL_ID.fullmatch(external_id):
            raise PropertyError(
                "ExternalId", "must be 2 to 1224 characters of A-Z a-z 0-9 + = , . @ : / _ -"
            )

        applications = _applications(raw)
        role_arn = _role_arn(raw, "RoleArn", required=False)
        if applications != ASSET_INVENTORY and role_arn is None:
            raise PropertyError(
                "RoleArn", "is required when Applications is AI,CI,CSA (CSPM names the role)"
            )

        return cls(
            connector_name=name,
            description=description,
            all_regions=all_regions,
            regions=regions,
            activation_modules=modules or DEFAULT_ACTIVATION_MODULES,
            run_frequency_minutes=frequency or DEFAULT_RUN_FREQUENCY,
            run_frequency_given=frequency is not None,
            default_tag_ids=tuple(int(t) for t in tag_ids),
            external_id=external_id,
            applications=applications,
            role_arn=role_arn,
        )


def parse_connector_id(value: object, *, name: str = "ConnectorId") -> int:
    """A Qualys connector id: digits only."""
    text = value.strip() if isinstance(value, str) else None
    if not text or not is_qualys_id(text):
        raise PropertyError(name, "must be a Qualys connector id (digits)")
    return int(text)


@dataclass(frozen=True)
class ActivationProperties:
    """The properties of ``Custom::QualysConnectorActivation``."""

    connector_id: int
    role_arn: str
    wait_for_first_sync: bool = False

    FIELDS = frozenset({"ConnectorId", "RoleArn", "WaitForFirstSync"})

    @classmethod
    def parse(cls, given: object) -> ActivationProperties:
        """Check every rule."""
        raw = _check_known(given, cls.FIELDS)
        if raw.get("ConnectorId") in (None, ""):
            raise PropertyError("ConnectorId", "is required")
        connector_id = parse_connector_id(raw.get("ConnectorId"))
        role_arn = _role_arn(raw, "RoleArn", required=True)
        assert role_arn is not None  # required
        return cls(
            connector_id=connector_id,
            role_arn=role_arn,
            wait_for_first_sync=_boolean(raw, "WaitForFirstSync", default=False),
        )
