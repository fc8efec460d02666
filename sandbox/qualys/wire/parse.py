"""Parsing ServiceRequest bodies into typed requests, refusing what Qualys would refuse."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from lxml import etree

from sandbox.qualys.errors import InvalidRequestError
from sandbox.qualys.models import ACTIVATION_MODULES, APPLICATIONS, RUN_FREQUENCIES
from sandbox.qualys.wire.requests import (
    DEFAULT_LIMIT_RESULTS,
    UNSET,
    CollectionEdit,
    ConnectorChanges,
    Criterion,
    SearchRequest,
    Unset,
)

T = TypeVar("T")

NAME_MAX = 255
EXTERNAL_ID = re.compile(r"[A-Za-z0-9+=,.@:/_-]{2,1224}")
ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII)
REGION_CODE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d")
LIMIT_RESULTS_RANGE = (1, 1000)

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
_SCALAR_FIELDS = (
    "name",
    "description",
    "arn",
    "externalId",
    "allRegions",
    "disabled",
    "isGovCloudConfigured",
    "isChinaConfigured",
)
_COLLECTION_FIELDS = ("endpoints", "activation", "defaultTags")
# What each version adds: 3.0 has the run frequency and the apps, 2.0 one CloudView flag.
_VERSION_FIELDS = {"2.0": ("useForCloudView",), "3.0": ("runFrequency", "connectorAppInfos")}
_READ_ONLY_FIELDS = (
    "id",
    "awsAccountId",
    "qualysAwsAccountId",
    "connectorState",
    "lastSync",
    "nextSync",
    "lastError",
    "isDeleted",
)
_COLLECTION_ACTIONS = {"set": "set", "update": "set", "add": "add", "remove": "remove"}


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
    writable = (*_SCALAR_FIELDS, *_COLLECTION_FIELDS, *_VERSION_FIELDS[version])
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
        applications=tuple(
            CollectionEdit(edit.action, tuple(app for apps in edit.items for app in apps))
            for edit in collection("connectorAppInfos", "ConnectorAppInfoQList", _app_list)
        ),
        use_for_cloud_view=scalar("useForCloudView", _boolean),
        gov_cloud=scalar("isGovCloudConfigured", _boolean),
        china=scalar("isChinaConfigured", _boolean),
    )


def _name(text: str) -> str:
    if not 1 <= len(text) <= NAME_MAX:
        raise InvalidRequestError(f"name must be 1 to {NAME_MAX} characters, not {len(text)}.")
    return text


def _arn(text: str) -> str | None:
    return _cleared_or_matching(
        text,
        ROLE_ARN,
        f"arn must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), not {text!r}.",
    )


def _external_id(text: str) -> str | None:
    return _cleared_or_matching(
        text,
        EXTERNAL_ID,
        "externalId must be 2 to 1224 characters of letters, digits and +=,.@:/_-.",
    )


def _cleared_or_matching(text: str, pattern: re.Pattern[str], problem: str) -> str | None:
    """None for an empty text, which clears the field; the text when it matches ``pattern``."""
    if not text:
        return None
    if not pattern.fullmatch(text):
        raise InvalidRequestError(problem)
    return text


def _run_frequency(text: str) -> int:
    if not text.isdigit() or int(text) not in RUN_FREQUENCIES:
        allowed = ", ".join(str(minutes) for minutes in RUN_FREQUENCIES)
        raise InvalidRequestError(f"runFrequency must be one of {allowed} minutes, not {text!r}.")
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


def _app_list(element: etree._Element) -> tuple[tuple[str, str | None], ...]:
    """The apps of one ConnectorAppInfoQList: its ``set`` of ConnectorAppInfo elements."""
    members = _children(element, ("set",)).get("set")
    if members is None:
        raise InvalidRequestError("ConnectorAppInfoQList needs a set of ConnectorAppInfo.")
    _no_text(members)
    apps: list[tuple[str, str | None]] = []
    for info in members:
        if _tag(info) != "ConnectorAppInfo":
            raise InvalidRequestError(
                f"ConnectorAppInfoQList/set accepts ConnectorAppInfo, not {info.tag}."
            )
        parts = _children(info, ("name", "identifier"))
        name_element = parts.get("name")
        name = _text(name_element).strip() if name_element is not None else ""
        if name not in APPLICATIONS:
            raise InvalidRequestError(
                f"ConnectorAppInfo name must be one of {', '.join(APPLICATIONS)}, not {name!r}."
            )
        identifier = parts.get("identifier")
        apps.append((name, (_text(identifier).strip() or None) if identifier is not None else None))
    return tuple(apps)


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
