"""XML building and parsing of the Connector API, on files and round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from provider.qualys import codec
from provider.qualys.errors import QualysResponseError
from provider.qualys.models import ApiVersion, ConnectorChanges, Criterion, Operator

FIXTURES = Path(__file__).parent.parent / "fixtures" / "qualys"
SPECIAL = 'ACME & <Sons> "prod" ü'


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_full_v3_connector_is_read_field_by_field() -> None:
    response = codec.parse_response(fixture("connector_v3.xml"))

    assert response.ok
    assert response.count == 1
    (connector,) = response.connectors
    assert connector.id == 1234567
    assert connector.name == SPECIAL
    assert connector.description is not None
    assert connector.description.endswith("logical:QualysConnector]")
    assert connector.arn == "arn:aws:iam::123456789012:role/QualysRole"
    assert connector.external_id == "b64+ext=id,with.@:/_-chars"
    assert connector.aws_account_id == "123456789012"
    assert connector.qualys_aws_account_id == "805950163170"
    assert connector.all_regions is False
    assert connector.regions == ("eu-west-1", "us-east-1")
    assert connector.disabled is False
    assert connector.activation_modules == ("VM", "PC")
    assert connector.default_tag_ids == (42, 43)
    assert connector.run_frequency == 240
    assert connector.state == "FINISHED_SUCCESS"
    assert connector.last_sync == "2026-11-27T10:00:00Z"
    assert connector.is_deleted is False


def test_missing_optional_elements_are_none_or_empty() -> None:
    (connector,) = codec.parse_response(fixture("connector_minimal.xml")).connectors

    assert connector.id == 99
    assert connector.qualys_aws_account_id is None
    assert connector.disabled is None
    assert connector.state is None
    assert connector.regions == ()
    assert connector.activation_modules == ()
    assert connector.run_frequency is None


def test_search_page_reports_more_records_and_last_id() -> None:
    response = codec.parse_response(fixture("search_page.xml"))

    assert response.has_more_records is True
    assert response.last_id == 11
    assert [c.id for c in response.connectors] == [10, 11]
    assert response.connectors[1].last_error == "Unable to assume role"


def test_update_echo_is_a_connector_with_only_an_id() -> None:
    (connector,) = codec.parse_response(fixture("update_echo.xml")).connectors

    assert connector.id == 1234567
    assert connector.name is None


def test_real_unauthorized_capture_keeps_message_and_resolution() -> None:
    response = codec.parse_response(fixture("error_unauthorized.xml"))

    assert not response.ok
    assert response.response_code == "UNAUTHORIZED"
    assert response.error_message == (
        "You are not authorized to access the application through the API."
    )
    assert response.error_resolution is not None
    assert response.error_resolution.startswith("If you think this is an error")


def test_entities_are_not_expanded_and_external_entities_not_loaded() -> None:
    (connector,) = codec.parse_response(fixture("billion_laughs.xml")).connectors

    assert connector.name is None or "lol" not in connector.name
    assert connector.description is None or "root:" not in connector.description


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("empty", b""),
        ("whitespace", b"  \n"),
        ("not xml", b"Service temporarily unavailable"),
        ("html page", (FIXTURES / "html_error.html").read_bytes()),
        ("truncated", fixture("connector_v3.xml")[:300]),
        ("other root", b"<SimpleReturn><response>x</response></SimpleReturn>"),
        ("no responseCode", b"<ServiceResponse><count>1</count></ServiceResponse>"),
        (
            "connector without id",
            (
                b"<ServiceResponse><responseCode>SUCCESS</responseCode><data>"
                b"<AwsAssetDataConnector><name>x</name></AwsAssetDataConnector></data>"
                b"</ServiceResponse>"
            ),
        ),
        (
            "non-numeric id",
            (
                b"<ServiceResponse><responseCode>SUCCESS</responseCode><data>"
                b"<AwsAssetDataConnector><id>abc</id></AwsAssetDataConnector></data>"
                b"</ServiceResponse>"
            ),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_unreadable_answers_raise_response_error(case: str, body: bytes) -> None:
    with pytest.raises(QualysResponseError):
        codec.parse_response(body)


def test_oversized_answer_is_refused_before_parsing() -> None:
    with pytest.raises(QualysResponseError, match="more than any response"):
        codec.parse_response(b" " * (codec.MAX_RESPONSE_BYTES + 1))


def _connector_element(body: bytes) -> etree._Element:
    root = etree.fromstring(body)
    assert root.tag == "ServiceRequest"
    element = root.find("data/AwsAssetDataConnector")
    assert element is not None
    return element


def test_create_request_escapes_text_and_round_trips_it() -> None:
    body = codec.create_request(
        ConnectorChanges(name=SPECIAL, description=SPECIAL + "\n]]>", disabled=True),
        ApiVersion.V3,
    )

    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    element = _connector_element(body)
    assert element.findtext("name") == SPECIAL
    assert element.findtext("description") == SPECIAL + "\n]]>"
    assert element.findtext("disabled") == "true"


def test_create_request_carries_every_field_on_v3() -> None:
    changes = ConnectorChanges(
        name="aws-123456789012",
        description="d",
        external_id="ext-1",
        all_regions=False,
        regions=["eu-west-1", "us-east-2"],
        disabled=True,
        activation_modules=["VM", "PC"],
        default_tag_ids=[7, 8],
        run_frequency=360,
    )
    element = _connector_element(codec.create_request(changes, ApiVersion.V3))

    assert element.findtext("externalId") == "ext-1"
    assert element.findtext("allRegions") == "false"
    assert [e.text for e in element.iterfind("endpoints/add/AwsEndpointSimple/regionCode")] == [
        "eu-west-1",
        "us-east-2",
    ]
    assert [e.text for e in element.iterfind("activation/set/ActivationModule")] == ["VM", "PC"]
    assert [e.text for e in element.iterfind("defaultTags/set/TagSimple/id")] == ["7", "8"]
    assert element.findtext("runFrequency") == "360"
    assert element.find("arn") is None


def test_run_frequency_is_left_out_on_v2() -> None:
    element = _connector_element(
        codec.create_request(ConnectorChanges(name="n", run_frequency=240), ApiVersion.V2)
    )

    assert element.find("runFrequency") is None


def test_all_regions_true_sends_no_endpoints() -> None:
    element = _connector_element(
        codec.create_request(
            ConnectorChanges(name="n", all_regions=True, regions=["eu-west-1"]), ApiVersion.V3
        )
    )

    assert element.findtext("allRegions") == "true"
    assert element.find("endpoints") is None


def test_update_request_holds_only_the_fields_to_change_and_replaces_regions() -> None:
    element = _connector_element(
        codec.update_request(
            ConnectorChanges(
                arn="arn:aws:iam::1:role/r", disabled=False, all_regions=False, regions=["a-b-1"]
            ),
            ApiVersion.V3,
        )
    )

    assert [child.tag for child in element] == ["arn", "allRegions", "endpoints", "disabled"]
    assert element.find("endpoints/set") is not None


def test_create_request_needs_a_name() -> None:
    with pytest.raises(ValueError, match="name"):
        codec.create_request(ConnectorChanges(description="x"), ApiVersion.V3)


def test_search_request_has_criteria_and_limit() -> None:
    body = codec.search_request(
        [Criterion.equals("name", SPECIAL), Criterion("id", Operator.GREATER, "10")], limit=50
    )
    root = etree.fromstring(body)

    criteria = root.findall("filters/Criteria")
    assert [(c.get("field"), c.get("operator"), c.text) for c in criteria] == [
        ("name", "EQUALS", SPECIAL),
        ("id", "GREATER", "10"),
    ]
    assert root.findtext("preferences/limitResults") == "50"


def test_search_request_without_criteria_has_no_filters() -> None:
    root = etree.fromstring(codec.search_request([], limit=100))

    assert root.find("filters") is None


@pytest.mark.parametrize("limit", [0, 1001])
def test_search_limit_outside_1_to_1000_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        codec.search_request([], limit=limit)


# --- applications, account type, ids ----------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/qualys"


def test_cspm_apps_are_sent_one_list_each_with_the_role_as_identifier_on_v3() -> None:
    body = codec.create_request(
        ConnectorChanges(name="n", arn=ROLE, applications=("AI", "CI", "CSA")), ApiVersion.V3
    )

    root = etree.fromstring(body)
    infos = root.findall("data/AwsAssetDataConnector/connectorAppInfos/set/ConnectorAppInfoQList")
    assert [i.findtext("set/ConnectorAppInfo/name") for i in infos] == ["AI", "CI", "CSA"]
    assert {i.findtext("set/ConnectorAppInfo/identifier") for i in infos} == {ROLE}
    assert root.find("data/AwsAssetDataConnector/useForCloudView") is None


@pytest.mark.parametrize(
    ("apps", "expected"), [(("AI",), "false"), (("AI", "CI", "CSA"), "true")], ids=["ai", "cspm"]
)
def test_apps_become_use_for_cloud_view_on_v2(apps: tuple[str, ...], expected: str) -> None:
    body = codec.update_request(ConnectorChanges(arn=ROLE, applications=apps), ApiVersion.V2)

    root = etree.fromstring(body)
    assert root.findtext("data/AwsAssetDataConnector/useForCloudView") == expected
    assert root.find("data/AwsAssetDataConnector/connectorAppInfos") is None


def test_apps_without_the_role_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="role ARN"):
        codec.update_request(ConnectorChanges(applications=("AI",)), ApiVersion.V3)


@pytest.mark.parametrize(
    ("changes", "gov", "china"),
    [
        (ConnectorChanges(name="n", gov_cloud=True, china=False), "true", "false"),
        (ConnectorChanges(name="n", gov_cloud=False, china=True), "false", "true"),
        (ConnectorChanges(name="n"), None, None),
    ],
    ids=["govcloud", "china", "unsaid"],
)
def test_the_account_type_is_sent_at_create(
    changes: ConnectorChanges, gov: str | None, china: str | None
) -> None:
    created = etree.fromstring(codec.create_request(changes, ApiVersion.V3))
    updated = etree.fromstring(codec.update_request(changes, ApiVersion.V3))

    element = created.find("data/AwsAssetDataConnector")
    assert element is not None
    assert element.findtext("isGovCloudConfigured") == gov
    assert element.findtext("isChinaConfigured") == china
    assert updated.find("data/AwsAssetDataConnector/isGovCloudConfigured") is None


def test_apps_and_account_type_are_read_back() -> None:
    (connector,) = codec.parse_response(fixture("connector_v3.xml")).connectors

    assert connector.applications == ("AI",)
    assert connector.gov_cloud is False


def _answer(connector_xml: str) -> bytes:
    return (
        "<ServiceResponse><responseCode>SUCCESS</responseCode><data><AwsAssetDataConnector>"
        f"{connector_xml}</AwsAssetDataConnector></data></ServiceResponse>"
    ).encode()


@pytest.mark.parametrize(
    ("case", "connector_xml"),
    [
        pytest.param("arabic-indic id", "<id>١٢٣</id>", id="arabic-indic-id"),
        pytest.param("superscript id", "<id>²</id>", id="superscript-id"),
        pytest.param(
            "arabic-indic frequency", "<id>1</id><runFrequency>٢٤٠</runFrequency>", id="frequency"
        ),
    ],
)
def test_ids_in_answers_are_ascii_digits_or_unreadable(case: str, connector_xml: str) -> None:
    with pytest.raises(QualysResponseError, match="non-numeric"):
        codec.parse_response(_answer(connector_xml))


def test_a_tag_id_that_is_not_ascii_digits_is_skipped_not_a_crash() -> None:
    body = _answer(
        "<id>7</id><defaultTags><list><TagSimple><id>²</id></TagSimple>"
        "<TagSimple><id>12</id></TagSimple></list></defaultTags>"
    )

    (connector,) = codec.parse_response(body).connectors

    assert connector.default_tag_ids == (12,)
