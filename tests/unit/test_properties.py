"""Property parsing: CloudFormation's strings become typed values, or a clear error."""

from __future__ import annotations

from typing import Any

import pytest

from provider.errors import PropertyError
from provider.properties import (
    ActivationProperties,
    ConnectorProperties,
    generate_external_id,
    parse_connector_id,
)

BASE: dict[str, Any] = {"ServiceToken": "arn:aws:lambda:...", "ConnectorName": "aws-1"}


def connector(**changes: Any) -> ConnectorProperties:
    return ConnectorProperties.parse({**BASE, **changes})


def test_defaults_follow_the_contract() -> None:
    props = connector()

    assert props.connector_name == "aws-1"
    assert props.description == ""
    assert props.all_regions is True
    assert props.regions == ()
    assert props.activation_modules == ("VM",)
    assert props.run_frequency_minutes == 240
    assert props.run_frequency_given is False
    assert props.default_tag_ids == ()
    assert props.external_id is None


def test_strings_become_typed_values() -> None:
    props = connector(
        Description="d",
        AllRegions="False",
        Regions=["eu-west-1", " us-gov-west-1 ", "eu-west-1"],
        ActivationModules=["vm", "PC", "CloudView"],
        RunFrequencyMinutes="1440",
        DefaultTagIds=["12", "13"],
        ExternalId="a+b=c,d.e@f:g/h_i-j",
        ServiceTimeout="600",
    )

    assert props.all_regions is False
    assert props.regions == ("eu-west-1", "us-gov-west-1")
    assert props.activation_modules == ("VM", "PC", "CLOUDVIEW")
    assert props.run_frequency_minutes == 1440
    assert props.run_frequency_given is True
    assert props.default_tag_ids == (12, 13)
    assert props.external_id == "a+b=c,d.e@f:g/h_i-j"


@pytest.mark.parametrize(
    ("case", "changes", "expected"),
    [
        ("empty list parameter", {"Regions": [""], "DefaultTagIds": [""]}, ((), ())),
        ("comma string", {"AllRegions": "false", "Regions": "eu-west-1,us-east-1"}, None),
        ("boolean true", {"AllRegions": True}, None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_lenient_shapes_cloudformation_can_send(
    case: str, changes: dict[str, Any], expected: Any
) -> None:
    props = connector(**changes)

    if expected is not None:
        assert (props.regions, props.default_tag_ids) == expected, case


RULES = [
    ("name missing", {"ConnectorName": None}, "ConnectorName", "required"),
    ("name empty", {"ConnectorName": ""}, "ConnectorName", "required"),
    ("name blank", {"ConnectorName": "   "}, "ConnectorName", "blank"),
    ("name too long", {"ConnectorName": "x" * 256}, "ConnectorName", "at most 255"),
    ("name not text", {"ConnectorName": ["a"]}, "ConnectorName", "string"),
    ("name control char", {"ConnectorName": "a\x00b"}, "ConnectorName", "control"),
    ("description long", {"Description": "x" * 701}, "Description", "at most 700"),
    ("all regions word", {"AllRegions": "yes"}, "AllRegions", '"true" or "false"'),
    ("regions with all", {"Regions": ["eu-west-1"]}, "Regions", "empty when AllRegions"),
    ("no regions", {"AllRegions": "false"}, "Regions", "at least one"),
    ("blank regions", {"AllRegions": "false", "Regions": [""]}, "Regions", "at least one"),
    ("bad region", {"AllRegions": "false", "Regions": ["Europe"]}, "Regions", "region codes"),
    ("regions not list", {"AllRegions": "false", "Regions": {"a": 1}}, "Regions", "list"),
    ("module unknown", {"ActivationModules": ["VM", "XX"]}, "ActivationModules", "subset"),
    ("frequency word", {"RunFrequencyMinutes": "often"}, "RunFrequencyMinutes", "one of 60,"),
    ("frequency low", {"RunFrequencyMinutes": "59"}, "RunFrequencyMinutes", "not 59"),
    ("frequency high", {"RunFrequencyMinutes": "1441"}, "RunFrequencyMinutes", "not 1441"),
    ("frequency between", {"RunFrequencyMinutes": "300"}, "RunFrequencyMinutes", "720, 1440"),
    ("frequency float", {"RunFrequencyMinutes": "240.5"}, "RunFrequencyMinutes", "one of"),
    ("frequency arabic", {"RunFrequencyMinutes": "٢٤٠"}, "RunFrequencyMinutes", "one of"),
    ("tag not digits", {"DefaultTagIds": ["12a"]}, "DefaultTagIds", "tag ids"),
    ("tag superscript", {"DefaultTagIds": ["²"]}, "DefaultTagIds", "tag ids"),
    ("apps without AI", {"Applications": ["CI", "CSA"]}, "Applications", "AI,CI,CSA"),
    ("apps partial", {"Applications": "AI,CI"}, "Applications", "AI (asset"),
    ("apps unknown", {"Applications": "AI,XX"}, "Applications", "AI (asset"),
    ("cspm without role", {"Applications": "AI,CI,CSA"}, "RoleArn", "Applications"),
    ("role not a role", {"RoleArn": "arn:aws:iam::123456789012:user/x"}, "RoleArn", "role ARN"),
    (
        "role arabic digits",
        {"RoleArn": "arn:aws:iam::١١١١٢٢٢٢٣٣٣٣:role/x"},
        "RoleArn",
        "role ARN",
    ),
    ("external id short", {"ExternalId": "x"}, "ExternalId", "2 to 1224"),
    ("external id chars", {"ExternalId": "has space"}, "ExternalId", "2 to 1224"),
    ("external id long", {"ExternalId": "x" * 1225}, "ExternalId", "at most 1224"),
    ("unknown property", {"ConnectorNmae": "typo"}, "ConnectorNmae", "not supported"),
]


@pytest.mark.parametrize(
    ("case", "changes", "name", "words"), RULES, ids=[rule[0] for rule in RULES]
)
def test_connector_rule_names_property_and_rule(
    case: str, changes: dict[str, Any], name: str, words: str
) -> None:
    raw = {**BASE, **changes}
    raw = {key: value for key, value in raw.items() if value is not None}

    with pytest.raises(PropertyError) as raised:
        ConnectorProperties.parse(raw)

    assert raised.value.property_name == name, case
    assert str(raised.value).startswith(f"Property {name} "), case
    assert words in str(raised.value), case


ACTIVATION = {"ConnectorId": "1000001", "RoleArn": "arn:aws:iam::123456789012:role/Qualys"}


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/Qualys",
        "arn:aws-us-gov:iam::123456789012:role/path/Qualys",
        "arn:aws-cn:iam::123456789012:role/Q+u=a,l.y@s_-",
    ],
)
def test_activation_accepts_role_arns_of_any_partition(arn: str) -> None:
    props = ActivationProperties.parse({**ACTIVATION, "RoleArn": arn})

    assert props == ActivationProperties(connector_id=1000001, role_arn=arn)


ACTIVATION_RULES = [
    ("id missing", {"ConnectorId": None}, "ConnectorId", "required"),
    ("id not digits", {"ConnectorId": "abc"}, "ConnectorId", "digits"),
    ("id negative", {"ConnectorId": "-1"}, "ConnectorId", "digits"),
    ("arn missing", {"RoleArn": None}, "RoleArn", "required"),
    ("arn of a user", {"RoleArn": "arn:aws:iam::123456789012:user/x"}, "RoleArn", "role ARN"),
    ("arn short account", {"RoleArn": "arn:aws:iam::1234:role/x"}, "RoleArn", "role ARN"),
    ("wait not boolean", {"WaitForFirstSync": "yes"}, "WaitForFirstSync", '"true" or "false"'),
    ("unknown", {"Role": "x"}, "Role", "not supported"),
]


@pytest.mark.parametrize(
    ("case", "changes", "name", "words"),
    ACTIVATION_RULES,
    ids=[rule[0] for rule in ACTIVATION_RULES],
)
def test_activation_rule_names_property_and_rule(
    case: str, changes: dict[str, Any], name: str, words: str
) -> None:
    raw = {key: value for key, value in {**ACTIVATION, **changes}.items() if value is not None}

    with pytest.raises(PropertyError) as raised:
        ActivationProperties.parse(raw)

    assert raised.value.property_name == name, case
    assert words in str(raised.value), case


def test_connector_id_parser_names_the_field_it_reads() -> None:
    with pytest.raises(PropertyError, match="PhysicalResourceId"):
        parse_connector_id("stack_QualysConnector_ABCDEFGH", name="PhysicalResourceId")


def test_generated_external_ids_are_40_digits_unique_and_allowed() -> None:
    ids = {generate_external_id() for _ in range(100)}

    assert len(ids) == 100
    for external_id in ids:
        # 40 ASCII digits, the first not 0: an integer of 9 to 90 digits, as older tenants want.
        assert len(external_id) == 40
        assert external_id.isascii()
        assert external_id.isdigit()
        assert external_id[0] != "0"
        assert connector(ExternalId=external_id).external_id == external_id


@pytest.mark.parametrize(
    ("case", "given", "expected"),
    [
        pytest.param("default", None, ("AI",), id="default"),
        pytest.param("asset inventory", "AI", ("AI",), id="asset-inventory"),
        pytest.param("cspm any order", ["csa", "AI", "ci"], ("AI", "CI", "CSA"), id="cspm"),
    ],
)
def test_applications_are_asset_inventory_or_cspm(
    case: str, given: Any, expected: tuple[str, ...]
) -> None:
    changes = {"RoleArn": "arn:aws:iam::123456789012:role/Q"}
    if given is not None:
        changes["Applications"] = given

    props = connector(**changes)

    assert props.applications == expected, case
    assert props.role_arn == "arn:aws:iam::123456789012:role/Q", case


def test_wait_for_first_sync_is_off_unless_asked() -> None:
    assert ActivationProperties.parse(ACTIVATION).wait_for_first_sync is False
    assert ActivationProperties.parse(
        {**ACTIVATION, "WaitForFirstSync": "true"}
    ).wait_for_first_sync


def test_activation_ids_are_ascii_digits_only() -> None:
    with pytest.raises(PropertyError, match="ConnectorId"):
        ActivationProperties.parse({**ACTIVATION, "ConnectorId": "١٢٣"})
