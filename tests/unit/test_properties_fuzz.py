"""Property-based tests of the resource property parser.

Whatever CloudFormation (or anyone) sends, ``ConnectorProperties.parse`` and
``ActivationProperties.parse`` either return values that keep every documented rule or
raise ``PropertyError``; never another exception. The rules are restated here from the
README's property tables, in ASCII only, so that a parser that loosens a rule fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from provider.errors import PropertyError
from provider.properties import (
    ActivationProperties,
    ConnectorProperties,
    parse_connector_id,
)

# Database-free and reproducible, as Hypothesis's own "ci" profile: no example database, the
# same examples on every run, no per-example deadline on a loaded machine (its caches go
# outside the tree: see tests/conftest.py).
FUZZ = settings(database=None, deadline=None, derandomize=True)

# --- the documented rules, restated ---------------------------------------------------

MODULES = ("VM", "PC", "SCA", "CLOUDVIEW", "CERTVIEW")
FREQUENCIES = (60, 120, 180, 240, 360, 480, 720, 1440)
REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}", re.ASCII)
EXTERNAL_ID = re.compile(r"[A-Za-z0-9+=,.@:/_-]{2,1224}", re.ASCII)
ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}", re.ASCII)
ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# XML 1.0's Char production leaves these out (and the surrogates, category Cs).
NOT_XML = "".join(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])) + "\ufffe\uffff"
CLOUDFORMATION_KEYS = ("ServiceToken", "ServiceTimeout")

# --- strategies -----------------------------------------------------------------------

xml_characters = st.characters(exclude_categories=["Cs"], exclude_characters=NOT_XML)
any_characters = st.characters()
"""Every code point, lone surrogates and control characters included."""
MARKUP_AND_SPACES = "&<>]\"';#\r\n\t \u00a0\u2028\x85\u3000"
xml_text = st.text(st.sampled_from(MARKUP_AND_SPACES) | xml_characters, max_size=24)
"""Any text XML 1.0 can carry, with a bias towards markup, line ends and other spaces."""
unicode_digit = st.characters(categories=("Nd", "No"), exclude_characters="0123456789") | (
    st.sampled_from("٠٣۴߀१²³¹⁰₃０１９𝟘𝟙")
)
"""A digit of any script but ASCII: Arabic-Indic, Devanagari, superscript, fullwidth..."""
unicode_digits = st.tuples(
    st.text("0123456789", max_size=5), unicode_digit, st.text("0123456789", max_size=5)
).map("".join)
"""Digits with at least one that is not ASCII, where ASCII digits would be accepted."""

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)  # json.loads caps digits anyway
    | st.floats()
    | st.text(any_characters, max_size=30)
)
json_lists = st.lists(json_scalars, max_size=3)
json_values = st.one_of(
    json_scalars,
    json_lists,
    st.dictionaries(st.text(max_size=8), json_scalars, max_size=3),
    st.lists(json_lists | st.dictionaries(st.text(max_size=8), json_lists, max_size=2), max_size=2),
)
"""Anything json.loads could return."""
junk = st.one_of(st.just(""), json_scalars, json_lists, json_values)
"""A value of the wrong shape or content for any property."""

REGIONS = ("eu-west-1", "us-east-1", "us-gov-west-1", "cn-north-1", "us-isob-east-1", "ap-se-10")
ROLE_NAME_CHARACTERS = "ABCXYZabcxyz0189+=,.@_/-"
EXTERNAL_ID_CHARACTERS = ROLE_NAME_CHARACTERS + ":"
valid_role_arns = st.builds(
    "arn:{}:iam::{:012d}:role/{}".format,
    st.sampled_from(["aws", "aws-cn", "aws-us-gov", "aws-iso-b"]),
    st.integers(0, 10**12 - 1),
    st.text(ROLE_NAME_CHARACTERS, min_size=1, max_size=20),
)
valid_regions = st.sampled_from(REGIONS) | st.builds(
    "{}{}-{}-{}".format,
    st.text("abcz", min_size=2, max_size=2),
    st.sampled_from(["", "-gov", "-iso", "-isob"]),
    st.text("abcz", min_size=1, max_size=5),
    st.integers(0, 99),
)
booleans = st.sampled_from([True, False, "true", "false", " True ", "FALSE", "", None])


def items_of(elements: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """A list property as CloudFormation sends it: a list of strings or a comma string,
    with blanks and spaces around the items."""
    padded = elements | elements.map(" {} ".format) | st.just("")
    lists = st.lists(padded, max_size=3)
    return lists | lists.map(",".join)


VALID_CONNECTOR: dict[str, st.SearchStrategy[Any]] = {
    "ConnectorName": xml_text.filter(str.strip),  # not blank
    "Description": xml_text | st.text(xml_characters, max_size=20).map(lambda s: "d" * 680 + s),
    "AllRegions": booleans,
    "Regions": items_of(valid_regions),
    "ActivationModules": items_of(
        st.sampled_from(MODULES) | st.sampled_from(MODULES).map(str.lower)
    ),
    "RunFrequencyMinutes": st.sampled_from(FREQUENCIES).flatmap(
        lambda f: st.sampled_from([f, str(f), f" {f} "])
    ),
    "DefaultTagIds": items_of(st.integers(0, 10**19 - 1).map(str)),
    "ExternalId": st.text(EXTERNAL_ID_CHARACTERS, min_size=2, max_size=60),
    "Applications": st.sampled_from(["AI", "ai", "AI,CI,CSA", "csa, ci ,AI", ["AI", "CI", "CSA"]]),
    "RoleArn": valid_role_arns,
    "ServiceToken": st.just("arn:aws:lambda:eu-west-1:123456789012:function:provider"),
    "ServiceTimeout": st.just("600"),
}
NEAR_MISSES: dict[str, st.SearchStrategy[Any]] = {
    "ConnectorName": st.text(any_characters, max_size=260)
    | st.text(st.sampled_from(NOT_XML) | xml_characters, min_size=1)
    | st.text(" \t\n\r\x85\u3000"),
    "Description": st.text(any_characters, max_size=20).map(lambda s: "d" * 695 + s)
    | st.text(st.sampled_from(NOT_XML) | xml_characters, min_size=1),
    "Regions": items_of(st.text(max_size=12) | st.sampled_from(["EU-WEST-1", "eu-west-\u0661"])),
    "ActivationModules": items_of(st.text(max_size=9) | st.sampled_from(["vm2", "\u017fca"])),
    "RunFrequencyMinutes": st.integers(-5, 2000).map(str) | unicode_digits | st.floats(),
    "DefaultTagIds": st.lists(unicode_digits | st.integers(-1, 10**21).map(str), min_size=1).map(
        lambda ids: ["1", *ids]
    ),
    "ExternalId": st.text(max_size=12),
    "Applications": items_of(st.sampled_from(["AI", "CI", "CSA", "XX", "ci", "a\u0131"])),
    "RoleArn": st.text(max_size=20)
    | valid_role_arns.map(lambda arn: arn.replace("::", ":"))
    | unicode_digits.map("arn:aws:iam::{:0>12}:role/R".format),
}
VALID_ACTIVATION: dict[str, st.SearchStrategy[Any]] = {
    "ConnectorId": st.integers(0, 10**19 - 1).flatmap(
        lambda n: st.sampled_from([str(n), f" {n} ", f"{n:019d}"])
    ),
    "RoleArn": valid_role_arns,
    "WaitForFirstSync": booleans,
    "ServiceToken": VALID_CONNECTOR["ServiceToken"],
}
NEAR_MISSES_ACTIVATION: dict[str, st.SearchStrategy[Any]] = {
    "ConnectorId": unicode_digits
    | st.integers(-(10**21), 10**21).map(str)
    | st.sampled_from(["0x1f", "1e3", "1_000", "+1"]),
    "RoleArn": NEAR_MISSES["RoleArn"],
}
KEY_LOOKALIKES = ("connectorName", "ConnectorName ", "Region", "Tags", "ServiceTokens", "")
unknown_keys = st.dictionaries(
    st.sampled_from(KEY_LOOKALIKES) | st.text(max_size=12), json_scalars, min_size=1, max_size=2
)


TRUE = st.sampled_from([True, "true", " True ", "", None])  # "" and None: the default
FALSE = st.sampled_from([False, "false", "FALSE "])
regions_given = st.lists(valid_regions, min_size=1, max_size=3)
REGION_CHOICES: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"AllRegions": TRUE}),
    st.fixed_dictionaries(
        {"AllRegions": FALSE, "Regions": regions_given | regions_given.map(",".join)}
    ),
)
"""AllRegions and Regions as a template sets them together."""
APPLICATION_CHOICES: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"RoleArn": valid_role_arns}),
    st.fixed_dictionaries({"Applications": st.sampled_from(["AI", " ai", ["AI", ""]])}),
    st.fixed_dictionaries(
        {
            "Applications": st.sampled_from(["AI,CI,CSA", "csa, ci ,AI", ["CI", "AI", "CSA"]]),
            "RoleArn": valid_role_arns,
        }
    ),
)
"""Applications and RoleArn as a template sets them together: a role with CSPM."""
CONNECTOR_TOGETHER = st.tuples(REGION_CHOICES, APPLICATION_CHOICES).map(
    lambda pair: {**pair[0], **pair[1]}
)
TOGETHER_KEYS = frozenset({"AllRegions", "Regions", "Applications", "RoleArn"})
NOTHING_TOGETHER: st.SearchStrategy[dict[str, Any]] = st.just({})


def properties(
    valid: dict[str, st.SearchStrategy[Any]],
    near_misses: dict[str, st.SearchStrategy[Any]],
    required: tuple[str, ...],
    together: st.SearchStrategy[dict[str, Any]] = NOTHING_TOGETHER,
    together_keys: frozenset[str] = frozenset(),
) -> st.SearchStrategy[object]:
    """Resource properties of every kind: valid ones (the required keys, any or all of the
    others, and ``together_keys``, which depend on one another, as ``together`` sets them);
    valid ones but for one property, a near miss or junk, so that every rule is reached;
    ones where any property may be valid, a near miss or junk; ones with an unknown key;
    and JSON values that are not objects at all."""
    independent = st.fixed_dictionaries(
        {k: valid[k] for k in required},
        optional={k: v for k, v in valid.items() if k not in required and k not in together_keys},
    )
    everything = st.fixed_dictionaries(
        {k: v for k, v in valid.items() if k in required or k not in together_keys}
    )
    good = st.tuples(independent, together).map(lambda pair: {**pair[0], **pair[1]})
    complete = st.tuples(everything, together).map(lambda pair: {**pair[0], **pair[1]})
    wrong = {k: near_misses.get(k, junk) | junk for k in valid}
    one_wrong = st.one_of(
        [
            st.tuples(good | complete, st.just(k), wrong[k]).map(
                lambda case: {**case[0], case[1]: case[2]}
            )
            for k in sorted(valid)
        ]
    )
    mixed = st.fixed_dictionaries({}, optional={k: valid[k] | wrong[k] for k in valid})
    with_unknown = st.tuples(good | mixed, unknown_keys).map(lambda pair: {**pair[1], **pair[0]})
    return st.one_of(good, complete, one_wrong, mixed, with_unknown, json_values)


# --- tests ----------------------------------------------------------------------------


def check_connector_rules(props: ConnectorProperties, raw: dict[str, Any]) -> None:
    """Every rule of the README's Custom::QualysConnector table holds for ``props``."""
    assert set(raw) <= ConnectorProperties.FIELDS | set(CLOUDFORMATION_KEYS)
    name = props.connector_name
    assert name == raw["ConnectorName"]  # kept exactly
    assert 1 <= len(name) <= 255
    assert name.strip()
    assert not any(c in NOT_XML for c in name)
    assert props.description == (raw.get("Description") or "")
    assert len(props.description) <= 700
    assert not any(c in NOT_XML for c in props.description)
    assert isinstance(props.all_regions, bool)
    assert all(REGION.fullmatch(r) for r in props.regions)
    assert len(set(props.regions)) == len(props.regions)
    assert bool(props.regions) is not props.all_regions
    assert props.activation_modules
    assert set(props.activation_modules) <= set(MODULES)
    assert props.run_frequency_minutes in FREQUENCIES
    assert props.run_frequency_given is (raw.get("RunFrequencyMinutes") not in (None, ""))
    if not props.run_frequency_given:
        assert props.run_frequency_minutes == 240
    raw_tags = raw.get("DefaultTagIds")
    if props.default_tag_ids:
        tags = raw_tags.split(",") if isinstance(raw_tags, str) else raw_tags
        assert isinstance(tags, list)
        assert all(ASCII_DIGITS.fullmatch(t.strip()) for t in tags if t.strip())
    assert all(isinstance(t, int) and 0 <= t < 10**19 for t in props.default_tag_ids)
    assert props.external_id is None or EXTERNAL_ID.fullmatch(props.external_id)
    assert props.applications in {("AI",), ("AI", "CI", "CSA")}
    assert props.role_arn is None or ROLE_ARN.fullmatch(props.role_arn)
    if props.applications != ("AI",):
        assert props.role_arn is not None


@settings(FUZZ, max_examples=1300)
@given(
    properties(VALID_CONNECTOR, NEAR_MISSES, ("ConnectorName",), CONNECTOR_TOGETHER, TOGETHER_KEYS)
)
@example({"ConnectorName": "aws-1", "DefaultTagIds": ["12", "\u0663"]})
@example({"ConnectorName": "aws-1", "RunFrequencyMinutes": "\u0662\u0664\u0660"})
@example({"ConnectorName": "aws-1", "RoleArn": "arn:aws:iam::12345678901\u0663:role/R"})
@example({"ConnectorName": "aws-1", "Description": "a\x00b", "Regions": {"eu-west-1": 1}})
def test_connector_properties_are_valid_or_a_property_error(raw: object) -> None:
    """For any JSON-like input, ConnectorProperties.parse returns properties that keep every
    documented rule, or raises PropertyError; no other exception."""
    try:
        props = ConnectorProperties.parse(raw)
    except PropertyError:
        event("refused")
        return
    event("accepted")
    assert isinstance(raw, dict)
    check_connector_rules(props, raw)


@settings(FUZZ, max_examples=700)
@given(properties(VALID_ACTIVATION, NEAR_MISSES_ACTIVATION, ("ConnectorId", "RoleArn")))
def test_activation_properties_are_valid_or_a_property_error(raw: object) -> None:
    """For any JSON-like input, ActivationProperties.parse returns an id read from ASCII
    digits and a role ARN of the documented shape, or raises PropertyError; nothing else."""
    try:
        props = ActivationProperties.parse(raw)
    except PropertyError:
        event("refused")
        return
    event("accepted")
    assert isinstance(raw, dict)
    assert set(raw) <= ActivationProperties.FIELDS | set(CLOUDFORMATION_KEYS)
    raw_id = raw["ConnectorId"]
    assert isinstance(raw_id, str)
    assert ASCII_DIGITS.fullmatch(raw_id.strip())
    assert props.connector_id == int(raw_id.strip())
    assert 0 <= props.connector_id < 10**19
    assert ROLE_ARN.fullmatch(props.role_arn)
    assert props.role_arn == raw["RoleArn"].strip()
    assert isinstance(props.wait_for_first_sync, bool)


@settings(FUZZ, max_examples=400)
@given(st.one_of(json_values, unicode_digits, st.from_regex(r"\s*[0-9]{1,20}\s*", fullmatch=True)))
def test_connector_ids_are_ascii_digits_or_a_property_error(value: object) -> None:
    """parse_connector_id reads a long from 1 up in ASCII digits (spaces around allowed) and
    refuses everything else with PropertyError."""

    def is_id(text: object) -> bool:
        return (
            isinstance(text, str)
            and re.fullmatch(r"[0-9]{1,19}", text.strip(), re.ASCII) is not None
            and 0 < int(text.strip()) < 2**63
        )

    try:
        connector_id = parse_connector_id(value)
    except PropertyError:
        assert not is_id(value)
        return
    assert isinstance(value, str)
    assert is_id(value)
    assert connector_id == int(value.strip())


@settings(FUZZ, max_examples=2500)
@given(
    name=st.text(xml_characters, min_size=1, max_size=255).filter(str.strip),
    description=st.none() | st.text(xml_characters, max_size=700),
)
@example(name='ACME & <Sons> "prod" ü ]]> \r\n\t', description=" \r ")
@example(name=" leading and trailing ", description="\n")
@example(name="x" * 255, description="y" * 700)
def test_any_valid_connector_name_and_description_are_kept_exactly(
    name: str, description: str | None
) -> None:
    """Any text XML 1.0 can carry, not blank and at most 255 characters, is a valid
    ConnectorName and is kept character for character; so is any Description up to 700."""
    raw: dict[str, Any] = {"ConnectorName": name}
    if description is not None:
        raw["Description"] = description
    props = ConnectorProperties.parse(raw)
    assert props.connector_name == name
    assert props.description == (description or "")


ROLE = "arn:aws:iam::123456789012:role/QualysRole"
DIGIT_FIELDS: dict[str, Any] = {
    "DefaultTagIds": lambda digits: ConnectorProperties.parse(
        {"ConnectorName": "aws-1", "DefaultTagIds": ["1", digits]}
    ),
    "RunFrequencyMinutes": lambda digits: ConnectorProperties.parse(
        {"ConnectorName": "aws-1", "RunFrequencyMinutes": digits}
    ),
    "RoleArn account id": lambda digits: ConnectorProperties.parse(
        {"ConnectorName": "aws-1", "RoleArn": f"arn:aws:iam::{digits.rjust(12, '0')}:role/R"}
    ),
    "ConnectorId": lambda digits: ActivationProperties.parse(
        {"ConnectorId": digits, "RoleArn": ROLE}
    ),
    "activation RoleArn account id": lambda digits: ActivationProperties.parse(
        {"ConnectorId": "42", "RoleArn": f"arn:aws:iam::{digits.rjust(12, '0')}:role/R"}
    ),
    "parse_connector_id": parse_connector_id,
}


@settings(FUZZ, max_examples=1200)
@given(field=st.sampled_from(sorted(DIGIT_FIELDS)), digits=unicode_digits)
@example(field="RunFrequencyMinutes", digits="\uff12\uff14\uff10")
@example(field="RunFrequencyMinutes", digits="٢٤٠")
@example(field="DefaultTagIds", digits="¹²")
@example(field="ConnectorId", digits="\uff11\uff12\uff13")
@example(field="RoleArn account id", digits="12345678901²")
def test_unicode_digits_are_never_taken_for_ascii_digits(field: str, digits: str) -> None:
    """Where ASCII digits are required (tag ids, run frequency, the account id in a role
    ARN, connector ids), digits of any other script are refused with PropertyError."""
    with pytest.raises(PropertyError):
        DIGIT_FIELDS[field](digits)


@settings(FUZZ, max_examples=50)
@given(
    st.tuples(
        st.text(xml_characters, max_size=10).map(lambda s: "aws-" + s),
        st.characters(categories=["Cs"]),
        st.text(xml_characters, max_size=10),
    ).map("".join)
)
@example("aws-\ud800")
def test_a_name_xml_cannot_carry_is_a_property_error(name: str) -> None:
    """A ConnectorName or Description holding a lone surrogate (JSON can carry "\\ud800",
    XML cannot) is refused with PropertyError, like the XML-illegal control characters."""
    with pytest.raises(PropertyError, match="ConnectorName"):
        ConnectorProperties.parse({"ConnectorName": name})


@settings(FUZZ, max_examples=20)
@given(module=st.sampled_from(MODULES), spelling=st.sampled_from([str.lower, str.title]))
def test_activation_modules_differing_only_in_case_are_one_module(
    module: str, spelling: Callable[[str], str]
) -> None:
    """ActivationModules are case-insensitive, so two spellings of one module are that
    module once, as two equal spellings are."""
    props = ConnectorProperties.parse(
        {"ConnectorName": "aws-1", "ActivationModules": [module, spelling(module)]}
    )
    assert props.activation_modules == (module,)
