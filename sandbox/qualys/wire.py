"""The simulator's XML: parse ServiceRequest bodies into typed requests, build ServiceResponses."""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from lxml import etree

from sandbox.qualys.errors import InvalidRequestError
from sandbox.qualys.models import ACTIVATION_MODULES, DEFAULT_RUN_FREQUENCY, SimConnector

T = TypeVar("T")

XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

NAME_MAX = 255
EXTERNAL_ID = re.compile(r"[A-Za-z0-9+=,.@:/_-]{2,1224}")
ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII)
REGION_CODE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d")
RUN_FREQUENCY_RANGE = (60, 1440)
LIMIT_RESULTS_RANGE = (1, 1000)
DEFAULT_LIMIT_RESULTS = 100

OPERATORS = ("EQUALS", "NOT EQUALS", "CONTAINS", "GREATER", "LESSER", "IN")
SEARCH_FIELDS = (
    "id",
    "name",
    "description",
    "externalId",
    "awsAccountId",
    "arn",
    "disabled",
    "connectorState",
    "qualysAwsAccountId",
)
_SCALAR_FIELDS = ("name", "description", "arn", "externalId", "allRegions", "disabled")
_COLLECTION_FIELDS = ("endpoints", "activation", "defaultTags")
_READ_ONLY_FIELDS = (
    "id",
    "awsAccountId",
    "qualysAwsAccountId",
    "connectorState",
    "lastSync",
    "nextSync",
    "lastError",
    "isGovCloudConfigured",
    "isChinaConfigured",
    "isDeleted",
)
_COLLECTION_ACTIONS = {"set": "set", "update": "set", "add": "add", "remove": "remove"}


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


# --- parsing -------------------------------------------------------------------------------


def parse_document(body: bytes) -> etree._Element | None:
    """The ServiceRequest root of a body, or None when the body is empty."""
    if not body.strip():
        return None
    # A fresh parser per call: lxml parsers must not be shared between threads.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as error:
        raise InvalidRequestError(f"The request body is not well-formed XML: {error}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None:  # set by any DOCTYPE, internal subset or not
        raise InvalidRequestError("Document type declarations are not allowed.")
    if root.tag != "ServiceRequest":
        raise InvalidRequestError(f"The root element must be ServiceRequest, not {root.tag}.")
    return root


def parse_connector_request(
    root: etree._Element | None, *, version: str, allowed: Sequence[str] = ("data",)
) -> tuple[ConnectorChanges, SearchRequest]:
    """The connector changes in `data` (required) and the `filters` when `allowed` has them."""
    children = _children(root, allowed) if root is not None else {}
    data = children.get("data")
    if data is None:
        raise InvalidRequestError(
            "The request must contain ServiceRequest/data/AwsAssetDataConnector."
        )
    connectors = _children(data, ("AwsAssetDataConnector",))
    element = connectors.get("AwsAssetDataConnector")
    if element is None:
        raise InvalidRequestError("ServiceRequest/data must contain one AwsAssetDataConnector.")
    search = _search_from(children)
    return _connector_changes(element, version=version), search


def parse_search_request(
    root: etree._Element | None, *, allowed: Sequence[str] = ("filters", "preferences")
) -> SearchRequest:
    """Filters and preferences of a search-like request; an absent body means no filters."""
    if root is None:
        return SearchRequest()
    return _search_from(_children(root, allowed))


def _children(parent: etree._Element, allowed: Sequence[str]) -> dict[str, etree._Element]:
    """The element children of `parent` by tag, each allowed and at most once."""
    _no_text(parent)
    found: dict[str, etree._Element] = {}
    for child in parent:
        tag = _tag(child)
        if tag not in allowed:
            raise InvalidRequestError(
                f"Unexpected element {tag} in {parent.tag}; allowed: {', '.join(allowed)}."
            )
        if tag in found:
            raise InvalidRequestError(f"Element {tag} appears more than once in {parent.tag}.")
        found[tag] = child
    return found


def _tag(element: etree._Element) -> str:
    if not isinstance(element.tag, str):
        raise InvalidRequestError("Entity references are not allowed.")
    return element.tag


def _no_text(element: etree._Element) -> None:
    if element.text is not None and element.text.strip():
        raise InvalidRequestError(f"Element {element.tag} must not contain text.")
    for child in element:
        if child.tail is not None and child.tail.strip():
            raise InvalidRequestError(f"Element {element.tag} must not contain text.")


def _text(element: etree._Element) -> str:
    """The text of a leaf element ('' when empty)."""
    for child in element:
        raise InvalidRequestError(f"Element {element.tag} must hold text, not {_tag(child)}.")
    return element.text or ""


def _boolean(element: etree._Element) -> bool:
    text = _text(element).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise InvalidRequestError(f"{element.tag} must be true or false, not {text!r}.")


def _connector_changes(element: etree._Element, *, version: str) -> ConnectorChanges:
    writable: tuple[str, ...] = (*_SCALAR_FIELDS, *_COLLECTION_FIELDS)
    if version == "3.0":
        writable = (*writable, "runFrequency")
    fields: dict[str, etree._Element] = {}
    _no_text(element)
    for child in element:
        tag = _tag(child)
        if tag in _READ_ONLY_FIELDS:
            raise InvalidRequestError(f"Field {tag} is set by Qualys and cannot be written.")
        if tag not in writable:
            raise InvalidRequestError(
                f"Unknown field {tag} in AwsAssetDataConnector (API {version})."
            )
        if tag in fields:
            raise InvalidRequestError(f"Field {tag} appears more than once.")
        fields[tag] = child

    def scalar(tag: str, parse: Callable[[etree._Element], T]) -> T | Unset:
        element = fields.get(tag)
        return UNSET if element is None else parse(element)

    def collection(
        tag: str, item_tag: str, parse_item: Callable[[etree._Element], T]
    ) -> tuple[CollectionEdit[T], ...]:
        element = fields.get(tag)
        return () if element is None else _collection(element, item_tag, parse_item)

    return ConnectorChanges(
        name=scalar("name", lambda e: _name(_text(e))),
        description=scalar("description", lambda e: _text(e) or None),
        arn=scalar("arn", lambda e: _arn(_text(e).strip())),
        external_id=scalar("externalId", lambda e: _external_id(_text(e).strip())),
        all_regions=scalar("allRegions", _boolean),
        disabled=scalar("disabled", _boolean),
        run_frequency=scalar("runFrequency", lambda e: _run_frequency(_text(e).strip())),
        regions=collection("endpoints", "AwsEndpointSimple", _region),
        activation_modules=collection("activation", "ActivationModule", _module),
        default_tag_ids=collection("defaultTags", "TagSimple", _tag_id),
    )


def _name(text: str) -> str:
    if not 1 <= len(text) <= NAME_MAX:
        raise InvalidRequestError(f"name must be 1 to {NAME_MAX} characters, not {len(text)}.")
    return text


def _arn(text: str) -> str | None:
    if not text:
        return None
    if not ROLE_ARN.fullmatch(text):
        raise InvalidRequestError(
            f"arn must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), not {text!r}."
        )
    return text


def _external_id(text: str) -> str | None:
    if not text:
        return None
    if not EXTERNAL_ID.fullmatch(text):
        raise InvalidRequestError(
            "externalId must be 2 to 1224 characters of letters, digits and +=,.@:/_-."
        )
    return text


def _run_frequency(text: str) -> int:
    low, high = RUN_FREQUENCY_RANGE
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidRequestError(
            f"runFrequency must be a number of minutes from {low} to {high}, not {text!r}."
        )
    return int(text)


def _collection(
    element: etree._Element, item_tag: str, parse_item: Callable[[etree._Element], T]
) -> tuple[CollectionEdit[T], ...]:
    edits: list[CollectionEdit[T]] = []
    _no_text(element)
    for action_element in element:
        action = _COLLECTION_ACTIONS.get(_tag(action_element))
        if action is None:
            raise InvalidRequestError(
                f"{element.tag} accepts set, add, remove or update, not {action_element.tag}."
            )
        _no_text(action_element)
        items: list[T] = []
        for item in action_element:
            if _tag(item) != item_tag:
                raise InvalidRequestError(
                    f"{element.tag}/{action_element.tag} accepts {item_tag}, not {item.tag}."
                )
            items.append(parse_item(item))
        edits.append(CollectionEdit(action, tuple(items)))
    return tuple(edits)


def _region(element: etree._Element) -> str:
    children = _children(element, ("regionCode",))
    region = children.get("regionCode")
    if region is None:
        raise InvalidRequestError("AwsEndpointSimple needs a regionCode.")
    code = _text(region).strip()
    if not REGION_CODE.fullmatch(code):
        raise InvalidRequestError(f"regionCode {code!r} is not an AWS region code.")
    return code


def _module(element: etree._Element) -> str:
    module = _text(element).strip()
    if module not in ACTIVATION_MODULES:
        raise InvalidRequestError(
            f"ActivationModule must be one of {', '.join(ACTIVATION_MODULES)}, not {module!r}."
        )
    return module


def _tag_id(element: etree._Element) -> int:
    children = _children(element, ("id", "name"))
    tag_id = children.get("id")
    text = _text(tag_id).strip() if tag_id is not None else ""
    if not text.isdigit() or len(text) > 19:
        raise InvalidRequestError(f"TagSimple needs a numeric id, not {text!r}.")
    return int(text)


def _search_from(children: dict[str, etree._Element]) -> SearchRequest:
    criteria: list[Criterion] = []
    filters = children.get("filters")
    if filters is not None:
        _no_text(filters)
        criteria.extend(_criterion(element) for element in filters)
    limit = DEFAULT_LIMIT_RESULTS
    start_from_id: int | None = None
    preferences = children.get("preferences")
    if preferences is not None:
        chosen = _children(preferences, ("limitResults", "startFromId"))
        if (limit_element := chosen.get("limitResults")) is not None:
            text = _text(limit_element).strip()
            low, high = LIMIT_RESULTS_RANGE
            if not text.isdigit() or not low <= int(text) <= high:
                raise InvalidRequestError(
                    f"limitResults must be from {low} to {high}, not {text!r}."
                )
            limit = int(text)
        if (start_element := chosen.get("startFromId")) is not None:
            text = _text(start_element).strip()
            if not text.isdigit():
                raise InvalidRequestError(f"startFromId must be a number, not {text!r}.")
            start_from_id = int(text)
    return SearchRequest(
        criteria=tuple(criteria),
        has_filters=filters is not None,
        limit=limit,
        start_from_id=start_from_id,
    )


def _criterion(element: etree._Element) -> Criterion:
    if _tag(element) != "Criteria":
        raise InvalidRequestError(f"filters accepts Criteria elements, not {element.tag}.")
    field = element.get("field")
    operator = element.get("operator")
    if field not in SEARCH_FIELDS:
        raise InvalidRequestError(
            f"Unsupported Criteria field {field!r}; use one of {', '.join(SEARCH_FIELDS)}."
        )
    if operator not in OPERATORS:
        raise InvalidRequestError(
            f"Unsupported Criteria operator {operator!r}; use one of {', '.join(OPERATORS)}."
        )
    text = _text(element).strip()
    values = tuple(v.strip() for v in text.split(",")) if operator == "IN" else (text,)
    if not all(values):
        raise InvalidRequestError(f"Criteria on {field} needs a value.")
    if operator in ("GREATER", "LESSER") and field != "id":
        raise InvalidRequestError(f"Operator {operator} applies to id only, not {field}.")
    if field == "id" and not all(v.isdigit() for v in values):
        raise InvalidRequestError(f"Criteria on id needs numbers, not {text!r}.")
    if field == "disabled":
        if operator not in ("EQUALS", "NOT EQUALS", "IN"):
            raise InvalidRequestError(f"Operator {operator} does not apply to disabled.")
        if not all(v.lower() in ("true", "false") for v in values):
            raise InvalidRequestError(f"Criteria on disabled needs true or false, not {text!r}.")
    return Criterion(field=field, operator=operator, values=values)


# --- building ------------------------------------------------------------------------------


def success_response(
    *,
    version: str,
    count: int,
    connectors: Sequence[SimConnector] = (),
    ids: Sequence[int] = (),
    has_more: bool | None = None,
    last_id: int | None = None,
) -> bytes:
    """A SUCCESS envelope with full connectors, or id-only connectors, or just a count."""
    root = _envelope(version)
    _leaf(root, "responseCode", "SUCCESS")
    _leaf(root, "count", str(count))
    if has_more is not None:
        _leaf(root, "hasMoreRecords", str(has_more).lower())
    if last_id is not None:
        _leaf(root, "lastId", str(last_id))
    if connectors or ids:
        data = etree.SubElement(root, "data")
        for connector in connectors:
            data.append(connector_element(connector, version=version))
        for connector_id in ids:
            _leaf(etree.SubElement(data, "AwsAssetDataConnector"), "id", str(connector_id))
    return _serialize(root)


def error_response(
    *, version: str, code: str, message: str, resolution: str | None = None
) -> bytes:
    """An error envelope: responseCode plus responseErrorDetails (sent with HTTP 200)."""
    root = _envelope(version)
    _leaf(root, "responseCode", code)
    details = etree.SubElement(root, "responseErrorDetails")
    _leaf(details, "errorMessage", message)
    if resolution is not None:
        _leaf(details, "errorResolution", resolution)
    return _serialize(root)


def connector_element(connector: SimConnector, *, version: str) -> etree._Element:
    """One AwsAssetDataConnector as Qualys returns it, with the version's extra fields."""
    element = etree.Element("AwsAssetDataConnector")
    _leaf(element, "id", str(connector.id))
    _leaf(element, "name", connector.name)
    _optional(element, "description", connector.description)
    _optional(element, "arn", connector.arn)
    _optional(element, "externalId", connector.external_id)
    _optional(element, "awsAccountId", connector.aws_account_id)
    _optional(element, "qualysAwsAccountId", connector.qualys_aws_account_id)
    _leaf(element, "allRegions", str(connector.all_regions).lower())
    if connector.regions:
        endpoints = etree.SubElement(etree.SubElement(element, "endpoints"), "list")
        for region in connector.regions:
            _leaf(etree.SubElement(endpoints, "AwsEndpointSimple"), "regionCode", region)
    _leaf(element, "disabled", str(connector.disabled).lower())
    if connector.activation_modules:
        modules = etree.SubElement(etree.SubElement(element, "activation"), "list")
        for module in connector.activation_modules:
            _leaf(modules, "ActivationModule", module)
    if connector.default_tag_ids:
        tags = etree.SubElement(etree.SubElement(element, "defaultTags"), "list")
        for tag_id in connector.default_tag_ids:
            tag = etree.SubElement(tags, "TagSimple")
            _leaf(tag, "id", str(tag_id))
            _leaf(tag, "name", f"Tag {tag_id}")
    if version == "3.0":
        run_frequency = connector.run_frequency or DEFAULT_RUN_FREQUENCY
        _leaf(element, "runFrequency", str(run_frequency))
    _leaf(element, "connectorState", connector.connector_state)
    _optional(element, "lastSync", connector.last_sync)
    _optional(element, "nextSync", connector.next_sync)
    _optional(element, "lastError", connector.last_error)
    arn_parts = (connector.arn or "").split(":")
    partition = arn_parts[1] if len(arn_parts) > 2 else "aws"
    _leaf(element, "isGovCloudConfigured", str(partition == "aws-us-gov").lower())
    _leaf(element, "isChinaConfigured", str(partition == "aws-cn").lower())
    _leaf(element, "isDeleted", "false")
    if version == "3.0":
        _version3_extras(element, connector)
    return element


def _version3_extras(element: etree._Element, connector: SimConnector) -> None:
    # Fields a client does not ask for, nested `list`s included: clients must skip them.
    _leaf(element, "isRemediationEnabled", "false")
    infos = etree.SubElement(etree.SubElement(element, "connectorAppInfos"), "list")
    app_list = etree.SubElement(etree.SubElement(infos, "ConnectorAppInfoQList"), "list")
    for app in ("AI", "CI", "CSA"):
        info = etree.SubElement(app_list, "ConnectorAppInfo")
        _leaf(info, "name", app)
        _optional(info, "identifier", connector.arn)
    _leaf(element, "isCPSEnabled", "false")
    _leaf(element, "cloudviewUuid", str(uuid.uuid5(uuid.NAMESPACE_OID, str(connector.id))))
    _leaf(element, "isAttachedToOrgConnector", "false")


def truncated_response(version: str) -> bytes:
    """A SUCCESS envelope that stops in the middle of a connector."""
    sample = SimConnector(id=1, name="truncated", connector_state="DISABLED", disabled=True)
    whole = success_response(version=version, count=1, connectors=[sample])
    return whole[: whole.index(b"<name>") + len(b"<name>tru")]


def _envelope(version: str) -> etree._Element:
    root = etree.Element("ServiceResponse", nsmap={"xsi": XSI_NAMESPACE})
    root.set(
        f"{{{XSI_NAMESPACE}}}noNamespaceSchemaLocation",
        f"https://qualysapi.qualys.com/qps/xsd/{version}/am/awsassetdataconnector.xsd",
    )
    return root


def _leaf(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def _optional(parent: etree._Element, tag: str, text: str | None) -> None:
    if text is not None:
        _leaf(parent, tag, text)


def _serialize(root: etree._Element) -> bytes:
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", pretty_print=True)
