"""Builds Connector API request bodies and reads its responses; pure functions, no I/O.

Requests are built element by element with lxml, so any text (``ACME & <Sons>``) is
escaped by the serializer and never spliced into markup. Responses go through a parser
that resolves no entities, loads no DTD, reaches no network and refuses huge trees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from provider.ids import QUALYS_ID
from provider.qualys.errors import QualysResponseError
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges, Criterion

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Bigger than a full search page of 1,000 connectors; anything larger is not Qualys."""

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


@dataclass(frozen=True)
class ServiceResponse:
    """A parsed ``ServiceResponse``; fields Qualys left out are ``None`` or empty."""

    response_code: str
    connectors: tuple[Connector, ...] = ()
    count: int | None = None
    has_more_records: bool = False
    last_id: int | None = None
    error_message: str | None = None
    error_resolution: str | None = None

    @property
    def ok(self) -> bool:
        """Whether Qualys reported SUCCESS."""
        return self.response_code == "SUCCESS"


# --- requests -------------------------------------------------------------------------


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def _bool(value: bool) -> str:  # noqa: FBT001 - a formatter, not a flag
    return "true" if value else "false"


def _collection(
    parent: etree._Element, tag: str, mode: str, item_tag: str, values: Iterable[str]
) -> None:
    items = _sub(_sub(parent, tag), mode)
    for value in values:
        _sub(items, item_tag, value)


def _tags(parent: etree._Element, tag_ids: Sequence[int]) -> None:
    items = _sub(_sub(parent, "defaultTags"), "set")
    for tag_id in tag_ids:
        _sub(_sub(items, "TagSimple"), "id", str(tag_id))


def _regions(parent: etree._Element, mode: str, regions: Sequence[str]) -> None:
    items = _sub(_sub(parent, "endpoints"), mode)
    for region in regions:
        _sub(_sub(items, "AwsEndpointSimple"), "regionCode", region)


def _applications(parent: etree._Element, names: Sequence[str], identifier: str) -> None:
    # One ConnectorAppInfoQList per app, as Qualys's own v3 clients send them.
    lists = _sub(_sub(parent, "connectorAppInfos"), "set")
    for name in names:
        info = _sub(_sub(_sub(lists, "ConnectorAppInfoQList"), "set"), "ConnectorAppInfo")
        _sub(info, "name", name)
        _sub(info, "identifier", identifier)


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _connector_request(changes: ConnectorChanges, version: ApiVersion, *, creating: bool) -> bytes:
    root = etree.Element("ServiceRequest")
    connector = _sub(_sub(root, "data"), "AwsAssetDataConnector")
    if changes.name is not None:
        _sub(connector, "name", changes.name)
    if changes.description is not None:
        _sub(connector, "description", changes.description)
    if changes.external_id is not None:
        _sub(connector, "externalId", changes.external_id)
    if changes.arn is not None:
        _sub(connector, "arn", changes.arn)
    if changes.all_regions is not None:
        _sub(connector, "allRegions", _bool(changes.all_regions))
        if not changes.all_regions and changes.regions is not None:
            # Qualys's own create scripts add endpoints; an update replaces them.
            _regions(connector, "add" if creating else "set", changes.regions)
    if changes.disabled is not None:
        _sub(connector, "disabled", _bool(changes.disabled))
    if changes.activation_modules is not None:
        _collection(connector, "activation", "set", "ActivationModule", changes.activation_modules)
    if changes.default_tag_ids is not None:
        _tags(connector, changes.default_tag_ids)
    if changes.run_frequency is not None and version is ApiVersion.V3:
        _sub(connector, "runFrequency", str(changes.run_frequency))
    _apps_and_account_type(connector, changes, version, creating=creating)
    return _serialize(root)


def _apps_and_account_type(
    connector: etree._Element, changes: ConnectorChanges, version: ApiVersion, *, creating: bool
) -> None:
    if changes.applications is not None:
        if version is ApiVersion.V2:
            _sub(connector, "useForCloudView", _bool(set(changes.applications) != {"AI"}))
        elif changes.arn is not None:
            _applications(connector, changes.applications, changes.arn)
        else:
            msg = "applications need the role ARN as their identifier"
            raise ValueError(msg)
    # The account type is chosen once, when the connector is made.
    if creating and changes.gov_cloud is not None:
        _sub(connector, "isGovCloudConfigured", _bool(changes.gov_cloud))
    if creating and changes.china is not None:
        _sub(connector, "isChinaConfigured", _bool(changes.china))


def create_request(changes: ConnectorChanges, version: ApiVersion) -> bytes:
    """The body of ``create/am/awsassetdataconnector``."""
    if not changes.name:
        msg = "a connector needs a name"
        raise ValueError(msg)
    return _connector_request(changes, version, creating=True)


def update_request(changes: ConnectorChanges, version: ApiVersion) -> bytes:
    """The body of ``update/am/awsassetdataconnector/<id>``: only the fields to change."""
    return _connector_request(changes, version, creating=False)


def search_request(criteria: Sequence[Criterion], *, limit: int) -> bytes:
    """The body of ``search/am/awsassetdataconnector`` for one page."""
    if not 1 <= limit <= 1000:
        msg = f"limit must be 1 to 1000, not {limit}"
        raise ValueError(msg)
    root = etree.Element("ServiceRequest")
    if criteria:
        filters = _sub(root, "filters")
        for criterion in criteria:
            element = _sub(filters, "Criteria", criterion.value)
            element.set("field", criterion.field)
            element.set("operator", criterion.operator.value)
    _sub(_sub(root, "preferences"), "limitResults", str(limit))
    return _serialize(root)


# --- responses ------------------------------------------------------------------------


def _text(element: etree._Element | None, path: str) -> str | None:
    """A code, number, flag or date: surrounding whitespace is layout, not value."""
    text = _exact_text(element, path)
    return text.strip() or None if text is not None else None


def _exact_text(element: etree._Element | None, path: str) -> str | None:
    """Text a person wrote (a name, a description, an external ID), exactly as stored:
    a name that ends in a space is another name, and look-ups compare names."""
    if element is None:
        return None
    found = element.find(path)
    if found is None or not found.text:
        return None
    return found.text


def _int(value: str | None, what: str) -> int | None:
    # ASCII digits only: int() would also read Arabic-Indic digits, and isdigit() passes "²".
    if value is None:
        return None
    if not QUALYS_ID.fullmatch(value):
        raise QualysResponseError(f"Qualys sent a non-numeric {what}: {value[:40]!r}")
    return int(value)


def _boolean(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() == "true"


def _texts(element: etree._Element, path: str) -> tuple[str, ...]:
    found = (e.text.strip() for e in element.iterfind(path) if e.text is not None)
    return tuple(text for text in found if text)


def parse_connector(element: etree._Element) -> Connector:
    """One ``AwsAssetDataConnector`` element; unknown children are ignored."""
    connector_id = _int(_text(element, "id"), "connector id")
    if connector_id is None:
        raise QualysResponseError("Qualys sent a connector without an id")
    tag_ids = _texts(element, "defaultTags//TagSimple/id")
    return Connector(
        id=connector_id,
        name=_exact_text(element, "name"),
        description=_exact_text(element, "description"),
        arn=_text(element, "arn"),
        external_id=_exact_text(element, "externalId"),
        aws_account_id=_text(element, "awsAccountId"),
        qualys_aws_account_id=_text(element, "qualysAwsAccountId"),
        all_regions=_boolean(_text(element, "allRegions")),
        regions=_texts(element, "endpoints//AwsEndpointSimple/regionCode"),
        disabled=_boolean(_text(element, "disabled")),
        activation_modules=_texts(element, "activation//ActivationModule"),
        default_tag_ids=tuple(int(t) for t in tag_ids if QUALYS_ID.fullmatch(t)),
        run_frequency=_int(_text(element, "runFrequency"), "runFrequency"),
        applications=_texts(element, "connectorAppInfos//ConnectorAppInfo/name"),
        gov_cloud=_boolean(_text(element, "isGovCloudConfigured")),
        china=_boolean(_text(element, "isChinaConfigured")),
        state=_text(element, "connectorState"),
        last_error=_text(element, "lastError"),
        last_sync=_text(element, "lastSync"),
        is_deleted=_boolean(_text(element, "isDeleted")),
    )


def parse_response(body: bytes) -> ServiceResponse:
    """A ``ServiceResponse`` document, or ``QualysResponseError`` for anything else."""
    if len(body) > MAX_RESPONSE_BYTES:
        raise QualysResponseError(f"Qualys answered {len(body)} bytes, more than any response")
    if not body.strip():
        raise QualysResponseError("Qualys answered with an empty body")
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError:
        raise QualysResponseError("Qualys answered with XML that cannot be read") from None
    if root is None or root.tag != "ServiceResponse":
        tag = "nothing" if root is None else repr(str(root.tag)[:40])
        raise QualysResponseError(f"Qualys answered {tag} instead of a ServiceResponse")
    code = _text(root, "responseCode")
    if code is None:
        raise QualysResponseError("Qualys answered a ServiceResponse without a responseCode")
    data = root.find("data")
    connectors = (
        tuple(parse_connector(e) for e in data.iterfind("AwsAssetDataConnector"))
        if data is not None
        else ()
    )
    return ServiceResponse(
        response_code=code,
        connectors=connectors,
        count=_int(_text(root, "count"), "count"),
        has_more_records=_boolean(_text(root, "hasMoreRecords")) is True,
        last_id=_int(_text(root, "lastId"), "lastId"),
        error_message=_text(root, "responseErrorDetails/errorMessage"),
        error_resolution=_text(root, "responseErrorDetails/errorResolution"),
    )
