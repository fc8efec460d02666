"""Property-based tests of the Connector API codec.

Requests carry any text XML 1.0 can hold and the parser reads it back exactly; the parser
turns any bytes at all into a ``ServiceResponse`` or a ``QualysResponseError``, never
another exception.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from provider.properties import ConnectorProperties
from provider.qualys import codec
from provider.qualys.errors import QualysResponseError
from provider.qualys.models import ApiVersion, ConnectorChanges, Criterion, Operator

T = TypeVar("T")

# Database-free and reproducible, as Hypothesis's own "ci" profile: no example database, the
# same examples on every run, no per-example deadline on a loaded machine (its caches go
# outside the tree: see tests/conftest.py).
FUZZ = settings(database=None, deadline=None, derandomize=True)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "qualys"
FIXTURE_BYTES = tuple(path.read_bytes() for path in sorted(FIXTURES.iterdir()))
CONNECTOR = re.compile(
    rb"<\?xml[^>]*\?>\s*<ServiceRequest><data>"
    rb"(<AwsAssetDataConnector>.*</AwsAssetDataConnector>|<AwsAssetDataConnector/>)"
    rb"</data></ServiceRequest>\s*",
    re.DOTALL,
)
"""A create or update body: one connector element and nothing else around it."""

# --- strategies -----------------------------------------------------------------------

# XML 1.0's Char production leaves these out (and the surrogates, category Cs).
NOT_XML = "".join(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])) + "\ufffe\uffff"
xml_characters = st.characters(exclude_categories=["Cs"], exclude_characters=NOT_XML)
MARKUP = "&<>]\"';#"
"""Characters a careless serializer would get wrong: ``]]>``, ``&amp;``, ``&#13;``..."""
SPACES_AND_LINE_ENDS = "\r\n\t \u00a0\u2028\x85"
xml_text = st.text(st.sampled_from(MARKUP + SPACES_AND_LINE_ENDS) | xml_characters, max_size=16)
"""Any text XML 1.0 can carry, with a bias towards markup, line ends and other spaces."""
SPACES = "".join(c for c in map(chr, range(0x110000)) if c.isspace() and c not in NOT_XML)
"""The white space str.strip() removes that XML can carry: ASCII and Unicode spaces."""
exact_text = xml_text.map(lambda text: text.strip() or "&")
"""Any XML text that does not start or end with white space (see the xfail below)."""
spaces = st.text(SPACES, min_size=1, max_size=3)
padded_text = st.one_of(
    st.tuples(spaces, exact_text).map("".join),
    st.tuples(exact_text, spaces).map("".join),
    st.tuples(spaces, exact_text, spaces).map("".join),
)
"""Exact text with white space at its start, its end or both."""
qualys_ids = st.integers(0, 10**19 - 1)
"""What QUALYS_ID reads: up to 19 ASCII digits."""
id_texts = st.builds(
    "{0}{1}{2}{0}".format,
    st.sampled_from(["", " ", "\n\t"]),
    st.sampled_from(["", "00"]),
    qualys_ids,
).filter(lambda text: len(text.strip()) <= 19)
"""A connector id as Qualys could write it: ASCII digits, leading zeros, white space."""
unicode_digit = st.characters(categories=("Nd", "No"), exclude_characters="0123456789")
unicode_digits = st.tuples(
    st.text("0123456789", max_size=5), unicode_digit, st.text("0123456789", max_size=5)
).map("".join)
"""Digits with at least one that is not ASCII: Arabic-Indic, superscript, fullwidth..."""


# --- (a) requests and responses round trip ------------------------------------------


def answer_with(request: bytes, connector_id: str) -> bytes:
    """The ServiceResponse Qualys would send back for a create or update ``request``: the
    request's connector element, verbatim, with an ``<id>`` added."""
    match = CONNECTOR.fullmatch(request)
    assert match is not None, request
    element = match.group(1)
    if element == b"<AwsAssetDataConnector/>":
        element = b"<AwsAssetDataConnector></AwsAssetDataConnector>"
    opening = b"<AwsAssetDataConnector>"
    element = opening + b"<id>" + connector_id.encode() + b"</id>" + element[len(opening) :]
    return (
        b"<?xml version='1.0' encoding='UTF-8'?>\n<ServiceResponse>"
        b"<responseCode>SUCCESS</responseCode><count>1</count><data>"
        + element
        + b"</data></ServiceResponse>"
    )


def optional(values: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    """``values`` or None (the field left out of the request)."""
    return st.none() | values


def connector_changes(text: st.SearchStrategy[str]) -> st.SearchStrategy[ConnectorChanges]:
    """ConnectorChanges whose every text field is drawn from ``text``, or left out; the
    apps only with an ARN, their identifier."""
    texts = st.lists(text, max_size=2)
    changes = st.builds(
        ConnectorChanges,
        name=text,
        description=optional(text),
        arn=optional(text),
        external_id=optional(text),
        all_regions=optional(st.booleans()),
        regions=optional(texts),
        disabled=optional(st.booleans()),
        activation_modules=optional(texts),
        default_tag_ids=optional(st.lists(qualys_ids, max_size=2)),
        run_frequency=optional(st.integers(0, 10**6)),
        applications=optional(texts),
        gov_cloud=optional(st.booleans()),
        china=optional(st.booleans()),
    )
    return changes.map(lambda c: c if c.arn else dataclasses.replace(c, applications=None))


def round_trip(
    changes: ConnectorChanges, version: ApiVersion, *, creating: bool, connector_id: str
) -> None:
    """Build the request, answer it as Qualys would, parse the answer, compare."""
    build = codec.create_request if creating else codec.update_request
    response = codec.parse_response(answer_with(build(changes, version), connector_id))
    assert response.ok
    assert response.count == 1
    (connector,) = response.connectors
    assert connector.id == int(connector_id)
    assert connector.name == changes.name
    assert connector.description == changes.description
    assert connector.external_id == changes.external_id
    assert connector.arn == changes.arn
    assert connector.all_regions == changes.all_regions
    sends_regions = changes.all_regions is False and changes.regions is not None
    assert connector.regions == (tuple(changes.regions or ()) if sends_regions else ())
    assert connector.disabled == changes.disabled
    assert connector.activation_modules == tuple(changes.activation_modules or ())
    assert connector.default_tag_ids == tuple(changes.default_tag_ids or ())
    v3 = version is ApiVersion.V3
    assert connector.run_frequency == (changes.run_frequency if v3 else None)
    assert connector.applications == (tuple(changes.applications or ()) if v3 else ())
    assert connector.gov_cloud == (changes.gov_cloud if creating else None)
    assert connector.china == (changes.china if creating else None)


@settings(FUZZ, max_examples=1100)
@given(
    changes=connector_changes(exact_text),
    version=st.sampled_from(ApiVersion),
    creating=st.booleans(),
    connector_id=id_texts,
)
@example(
    changes=ConnectorChanges(
        name='ACME & <Sons> "prod" ü\r\n]]>',
        description="[qualys-cfn:0123456789abcdef:Conn] line 1\r\nline 2\rline 3 &#13;",
        external_id="a+b=c,d.e@f:g/h_i-j",
        arn="arn:aws:iam::123456789012:role/R",
        all_regions=False,
        regions=["eu-west-1", "us-gov-west-1"],
        default_tag_ids=[0, 9_999_999_999_999_999_999],
        applications=["AI", "CI", "CSA"],
    ),
    version=ApiVersion.V3,
    creating=True,
    connector_id="0001234567",
)
def test_requests_round_trip_exactly_through_an_answer(
    changes: ConnectorChanges, version: ApiVersion, creating: bool, connector_id: str
) -> None:
    """Any name, description, external id, ARN, regions, modules and apps XML can carry
    (without white space at either end), any tag ids and any ASCII-digit connector id come
    back exactly when Qualys echoes the connector element of a create or update."""
    round_trip(changes, version, creating=creating, connector_id=connector_id)


@settings(FUZZ, max_examples=50)
@given(name=padded_text, description=padded_text)
@example(name="aws-1 ", description="text\n")
def test_names_with_white_space_at_the_ends_round_trip_exactly(name: str, description: str) -> None:
    """A ConnectorName or Description with white space at either end, which the property
    parser accepts and keeps, comes back from Qualys's echo as it was sent."""
    props = ConnectorProperties.parse({"ConnectorName": name, "Description": description})
    changes = ConnectorChanges(name=props.connector_name, description=props.description)
    round_trip(changes, ApiVersion.V3, creating=True, connector_id="1")


# --- (b) any bytes: a ServiceResponse or QualysResponseError --------------------------


def fragments() -> tuple[bytes, ...]:
    """Tags, text and declarations cut out of the real answers in tests/fixtures/qualys."""
    pieces = {
        piece for body in FIXTURE_BYTES for piece in re.split(rb"(<[^<>]*>)", body) if piece.strip()
    }
    extra = (
        b"<?xml version='1.0' encoding='UTF-16'?>",
        b"<?xml version='1.0' encoding='latin-1'?>",
        b"<?xml version='1.1'?>",
        b"<!DOCTYPE a [<!ENTITY e 'x'>]>",
        b"<!DOCTYPE a SYSTEM 'http://127.0.0.1:9/x.dtd'>",
        b"&e;",
        b"&#0;",
        b"&#x110000;",
        b"<![CDATA[",
        b"]]>",
        b"<x:ServiceResponse xmlns:x='urn:x'>",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
    )
    return tuple(sorted(pieces)) + extra


FRAGMENTS = fragments()
ENCODINGS = ("utf-8", "utf-16", "utf-16-le", "utf-32")
texts_as_bytes = st.tuples(st.text(max_size=20), st.sampled_from(ENCODINGS)).map(
    lambda pair: pair[0].encode(pair[1], errors="surrogatepass")
)
xmlish = st.lists(st.sampled_from(FRAGMENTS) | texts_as_bytes, max_size=10).map(b"".join)
"""Bytes pieced together from real answers, declarations, entities and stray text."""
truncated = st.tuples(st.sampled_from(FIXTURE_BYTES), st.integers(0, 2200)).map(
    lambda pair: pair[0][: pair[1]]
)
"""A real answer cut short anywhere."""


MUTATIONS = ("replace", "insert", "delete", "repeat")


def mutate(body: bytes, edits: list[tuple[int, str, int, bytes]]) -> bytes:
    """``body`` with each edit (where, what, how many bytes, new bytes) applied in turn."""
    changed = bytearray(body)
    for where, what, size, new in edits:
        at = where % (len(changed) + 1)
        if what == "delete":
            del changed[at : at + size]
        elif what == "repeat":
            changed[at:at] = changed[at : at + size] * 2
        else:
            changed[at : at + (len(new) if what == "replace" else 0)] = new
    return bytes(changed)


mutated = st.builds(
    mutate,
    st.sampled_from(FIXTURE_BYTES),
    st.lists(
        st.tuples(
            st.integers(0, 2200),
            st.sampled_from(MUTATIONS),
            st.integers(1, 64),
            st.binary(min_size=1, max_size=4) | st.sampled_from(FRAGMENTS),
        ),
        min_size=1,
        max_size=6,
    ),
)
"""A real answer with a few bytes replaced, inserted, deleted or repeated."""


def nest(depth: int, tag: bytes) -> bytes:
    """A connector holding ``depth`` nested ``tag`` elements."""
    return (
        b"<ServiceResponse><responseCode>SUCCESS</responseCode><data><AwsAssetDataConnector>"
        b"<id>1</id>"
        + (b"<" + tag + b">") * depth
        + (b"</" + tag + b">") * depth
        + b"</AwsAssetDataConnector></data></ServiceResponse>"
    )


NESTING_TAGS = (b"a", b"defaultTags", b"TagSimple", b"AwsAssetDataConnector", b"endpoints")
nested = st.builds(nest, st.integers(1, 3000), st.sampled_from(NESTING_TAGS))
"""Elements nested as deep as any answer and far deeper (RecursionError, depth limits)."""


Fields = list[tuple[str, str]]


def envelope(
    code: str | None,
    fields: Fields,
    error: str | None,
    connectors: list[tuple[Fields, list[str]]],
    encoding: str,
) -> bytes:
    """A well-formed ServiceResponse with these children, connectors and tag ids."""
    root = etree.Element("ServiceResponse")
    if code is not None:
        etree.SubElement(root, "responseCode").text = code
    for tag, text in fields:
        etree.SubElement(root, tag).text = text
    if error is not None:
        details = etree.SubElement(root, "responseErrorDetails")
        etree.SubElement(details, "errorMessage").text = error
    data = etree.SubElement(root, "data")
    for connector_fields, tag_ids in connectors:
        connector = etree.SubElement(data, "AwsAssetDataConnector")
        for tag, text in connector_fields:
            etree.SubElement(connector, tag).text = text
        tags = etree.SubElement(etree.SubElement(connector, "defaultTags"), "list")
        for tag_id in tag_ids:
            etree.SubElement(etree.SubElement(tags, "TagSimple"), "id").text = tag_id
    body = etree.tostring(root, encoding=encoding)
    assert isinstance(body, bytes)
    return body


field_values = st.one_of(
    qualys_ids.map(str),
    unicode_digits,
    st.sampled_from(["", " ", "true", "FALSE", "-1", "1e3", "0x10", "9" * 20]),
    xml_text,
)
ROOT_FIELDS = ("responseCode", "count", "hasMoreRecords", "lastId")
CONNECTOR_FIELDS = ("id", "name", "runFrequency", "allRegions", "disabled", "isDeleted")
envelopes = st.builds(
    envelope,
    optional(st.sampled_from(["SUCCESS", "OBJECT_NOT_FOUND"]) | xml_text),
    st.lists(st.tuples(st.sampled_from(ROOT_FIELDS), field_values), max_size=4),
    optional(xml_text),
    st.lists(
        st.tuples(
            st.lists(st.tuples(st.sampled_from(CONNECTOR_FIELDS), field_values), max_size=4),
            st.lists(field_values, max_size=2),
        ),
        max_size=2,
    ),
    st.sampled_from(["UTF-8", "UTF-16", "ASCII"]),
)
"""Well-formed ServiceResponses whose counts, ids, flags and texts are anything."""


any_bytes = st.one_of(st.binary(max_size=200), xmlish, truncated, mutated, nested, envelopes)


@settings(FUZZ, max_examples=1600)
@given(any_bytes)
@example(b"")
@example(b"\x00")
@example(b"<ServiceResponse/>")
@example(b"<ServiceResponse><responseCode>SUCCESS</responseCode><count>\xd9\xa3</count>")
@example(b"<?xml version='1.0' encoding='no-such-codec'?><ServiceResponse/>")
def test_any_bytes_are_a_service_response_or_a_qualys_response_error(body: bytes) -> None:
    """parse_response reads any bytes into a ServiceResponse whose numbers are ASCII-digit
    ids, or raises QualysResponseError; never ValueError, UnicodeDecodeError, an lxml
    error, RecursionError or anything else."""
    try:
        response = codec.parse_response(body)
    except QualysResponseError:
        event("QualysResponseError")
        return
    event("ServiceResponse")
    assert response.response_code
    assert response.response_code == response.response_code.strip()
    assert response.count is None or 0 <= response.count < 10**19
    assert response.last_id is None or 0 <= response.last_id < 10**19
    assert isinstance(response.has_more_records, bool)
    for connector in response.connectors:
        assert 0 <= connector.id < 10**19
        assert all(0 <= tag < 10**19 for tag in connector.default_tag_ids)
        assert connector.run_frequency is None or connector.run_frequency >= 0


ANSWER = (
    "<ServiceResponse><responseCode>SUCCESS</responseCode>"
    "<count>{count}</count><lastId>{lastId}</lastId><data><AwsAssetDataConnector>"
    "<id>{id}</id><runFrequency>{runFrequency}</runFrequency><defaultTags><list>"
    "<TagSimple><id>7</id></TagSimple><TagSimple><id>{tag}</id></TagSimple>"
    "</list></defaultTags></AwsAssetDataConnector></data></ServiceResponse>"
)


@settings(FUZZ, max_examples=1000)
@given(
    field=st.sampled_from(["count", "lastId", "id", "runFrequency", "tag"]), digits=unicode_digits
)
@example(field="count", digits="\u0663")
@example(field="id", digits="\u00b9\u00b2")
@example(field="tag", digits="\uff14\uff12")
def test_numbers_in_unicode_digits_are_never_read_as_numbers(field: str, digits: str) -> None:
    """A count, lastId, connector id or runFrequency written in digits of another script
    is refused with QualysResponseError; a tag id so written is skipped, as ever."""
    values = {"count": "1", "lastId": "1", "id": "1", "runFrequency": "240", "tag": "8"}
    body = ANSWER.format_map({**values, field: digits}).encode()
    if field == "tag":
        (connector,) = codec.parse_response(body).connectors
        assert connector.default_tag_ids == (7,)
    else:
        with pytest.raises(QualysResponseError, match="non-numeric"):
            codec.parse_response(body)


# --- (c) search criteria round trip -----------------------------------------------------

REQUEST_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@settings(FUZZ, max_examples=600)
@given(
    criteria=st.lists(
        st.builds(Criterion, field=xml_text, operator=st.sampled_from(Operator), value=xml_text),
        max_size=4,
    ),
    limit=st.integers(1, 1000),
)
@example(criteria=[Criterion.equals("name", ' ACME & <Sons> "prod"\r\n\t ')], limit=1)
def test_search_criteria_round_trip_exactly(criteria: list[Criterion], limit: int) -> None:
    """Any field and value text XML can carry, white space included, reaches Qualys exactly
    in a search request, with its operator and the page size."""
    root = etree.fromstring(codec.search_request(criteria, limit=limit), REQUEST_PARSER)
    sent = [
        Criterion(e.get("field", ""), Operator(e.get("operator")), e.text or "")
        for e in root.iterfind("filters/Criteria")
    ]
    assert sent == criteria
    assert root.findtext("preferences/limitResults") == str(limit)
