"""Building the ServiceResponse envelopes the simulator answers with."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

from lxml import etree

from sandbox.qualys.models import DEFAULT_RUN_FREQUENCY, SimConnector

XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


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
    _leaf(element, "allRegions", _boolean(connector.all_regions))
    if connector.regions:
        endpoints = etree.SubElement(etree.SubElement(element, "endpoints"), "list")
        for region in connector.regions:
            _leaf(etree.SubElement(endpoints, "AwsEndpointSimple"), "regionCode", region)
    _leaf(element, "disabled", _boolean(connector.disabled))
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
    else:
        _leaf(element, "useForCloudView", _boolean(connector.use_for_cloud_view))
    _leaf(element, "connectorState", connector.connector_state)
    _optional(element, "lastSync", connector.last_sync)
    _optional(element, "nextSync", connector.next_sync)
    _optional(element, "lastError", connector.last_error)
    _leaf(element, "isGovCloudConfigured", _boolean(connector.account_type == "GOVCLOUD"))
    _leaf(element, "isChinaConfigured", _boolean(connector.account_type == "CHINA"))
    _leaf(element, "isDeleted", "false")
    if version == "3.0":
        _version3_extras(element, connector)
    return element


def _version3_extras(element: etree._Element, connector: SimConnector) -> None:
    # Fields a client does not ask for, nested `list`s included: clients must skip them.
    _leaf(element, "isRemediationEnabled", "false")
    # One ConnectorAppInfoQList per app, as requests send them; the role ARN stands in for an
    # identifier the request left out.
    infos = etree.SubElement(etree.SubElement(element, "connectorAppInfos"), "list")
    for name, identifier in connector.applications:
        app_set = etree.SubElement(etree.SubElement(infos, "ConnectorAppInfoQList"), "set")
        info = etree.SubElement(app_set, "ConnectorAppInfo")
        _leaf(info, "name", name)
        _optional(info, "identifier", identifier or connector.arn)
    _leaf(element, "isCPSEnabled", "false")
    _leaf(element, "cloudviewUuid", str(uuid.uuid5(uuid.NAMESPACE_OID, str(connector.id))))
    _leaf(element, "isAttachedToOrgConnector", "false")


def truncated_response(version: str) -> bytes:
    """A SUCCESS envelope that stops in the middle of a connector."""
    sample = SimConnector(id=1, name="truncated", connector_state="DISABLED", disabled=True)
    whole = success_response(version=version, count=1, connectors=[sample])
    return whole[: whole.index(b"<name>") + len(b"<name>tru")]


_BULK_FIRST_ID = 1_000_000_000
_BULK_ID = b"<id>1000000000</id>"
_CHUNK_BYTES = 64 * 1024


def oversized_response(version: str, size_bytes: int) -> Iterator[bytes]:
    """A well-formed SUCCESS search answer of exactly ``size_bytes``, as a stream of chunks.

    Its length is known up front, so the answer can carry a Content-Length, and its many
    connectors are made as they are sent, so the simulator never holds the whole body.
    """
    sample = SimConnector(
        id=_BULK_FIRST_ID,
        name="bulk",
        arn="arn:aws:iam::123456789012:role/QualysRole",
        aws_account_id="123456789012",
        connector_state="FINISHED_SUCCESS",
    )

    def parts(count: int) -> tuple[bytes, bytes, bytes]:
        whole = success_response(version=version, count=count, connectors=[sample], has_more=False)
        start = whole.index(b"<AwsAssetDataConnector>")
        end = whole.index(b"</AwsAssetDataConnector>") + len(b"</AwsAssetDataConnector>")
        return whole[:start], whole[start:end], whole[end:]

    prefix, record, suffix = parts(0)
    guess = max(0, (size_bytes - len(prefix) - len(suffix)) // len(record))
    prefix, _, _ = parts(guess)
    count = max(0, (size_bytes - len(prefix) - len(suffix)) // len(record))
    prefix, _, _ = parts(count)  # fewer digits than the guess at most: the filler makes up
    filler = size_bytes - len(prefix) - count * len(record) - len(suffix)
    if count == 0 or filler < 0 or count > 9 * _BULK_FIRST_ID:
        raise ValueError(f"an oversized answer cannot be {size_bytes} bytes")

    def chunks() -> Iterator[bytes]:
        yield prefix
        per_chunk = max(1, _CHUNK_BYTES // len(record))
        for first in range(0, count, per_chunk):
            yield b"".join(
                record.replace(_BULK_ID, b"<id>%d</id>" % (_BULK_FIRST_ID + n))
                for n in range(first, min(count, first + per_chunk))
            )
        yield b" " * filler + suffix

    return chunks()


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


def _boolean(value: bool) -> str:  # noqa: FBT001 - a formatter, not a flag
    return "true" if value else "false"


def _optional(parent: etree._Element, tag: str, text: str | None) -> None:
    if text is not None:
        _leaf(parent, tag, text)


def _serialize(root: etree._Element) -> bytes:
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", pretty_print=True)
