"""The Qualys simulator spoken to over raw HTTP (requests + lxml), independent of the provider."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
import requests
from lxml import etree
from lxml.builder import E

from sandbox.qualys import Fault, QualysSimulator, SimConnector

AUTH = ("qualys-user", "qualys-password")
VERSIONS = ["2.0", "3.0"]
ROLE = "arn:aws:iam::123456789012:role/QualysRole"
SPECIAL_NAME = 'ACME & <Sons> "prod" ü'
LIMIT_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Window-Sec",
    "X-RateLimit-Remaining",
    "X-RateLimit-ToWait-Sec",
    "X-Concurrency-Limit-Limit",
    "X-Concurrency-Limit-Running",
)
TIMEOUT = 5.0


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[QualysSimulator]:
    with QualysSimulator() as simulator:
        yield simulator


def call(
    sim: QualysSimulator,
    operation: str,
    *,
    version: str = "3.0",
    connector_id: int | None = None,
    body: bytes | str = b"",
    method: str | None = None,
    auth: tuple[str, str] | None = AUTH,
    timeout: float = TIMEOUT,
) -> requests.Response:
    path = f"/qps/rest/{version}/{operation}/am/awsassetdataconnector"
    if connector_id is not None:
        path += f"/{connector_id}"
    if method is None:
        method = "GET" if operation == "get" else "POST"
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": "text/xml", "X-Requested-With": "test"}
    return requests.request(
        method, sim.base_url + path, data=data, auth=auth, headers=headers, timeout=timeout
    )


def parse(response: requests.Response) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(response.content, parser)
    assert root.tag == "ServiceResponse"
    return root


def code(response: requests.Response) -> str:
    return str(parse(response).findtext("responseCode"))


def error_message(response: requests.Response) -> str:
    return str(parse(response).findtext("responseErrorDetails/errorMessage"))


def request_xml(*connector_children: Any, extra: Sequence[Any] = ()) -> bytes:
    """A ServiceRequest with one AwsAssetDataConnector holding these children."""
    document = E.ServiceRequest(*extra, E.data(E.AwsAssetDataConnector(*connector_children)))
    return bytes(etree.tostring(document, xml_declaration=True, encoding="UTF-8"))


def filters_xml(*criteria: tuple[str, str, str], limit: int | None = None) -> bytes:
    parts: list[Any] = [
        E.filters(*(E.Criteria(value, field=field, operator=op) for field, op, value in criteria))
    ]
    if limit is not None:
        parts.append(E.preferences(E.limitResults(str(limit))))
    return bytes(etree.tostring(E.ServiceRequest(*parts)))


def create(sim: QualysSimulator, *children: Any, version: str = "3.0") -> int:
    response = call(sim, "create", version=version, body=request_xml(*children))
    assert code(response) == "SUCCESS", response.text
    return int(str(parse(response).findtext("data/AwsAssetDataConnector/id")))


def connector_of(response: requests.Response) -> etree._Element:
    element = parse(response).find("data/AwsAssetDataConnector")
    assert element is not None, response.text
    return element


def get_state(sim: QualysSimulator, connector_id: int) -> str:
    return str(connector_of(call(sim, "get", connector_id=connector_id)).findtext("connectorState"))


def stored_state(sim: QualysSimulator, connector_id: int) -> str:
    connector = sim.connector(connector_id)
    assert connector is not None
    return connector.connector_state


def ids_of(response: requests.Response) -> list[int]:
    return [int(str(e.text)) for e in parse(response).iterfind("data/AwsAssetDataConnector/id")]


# --- operations on both versions -------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_create_returns_the_full_connector(sim: QualysSimulator, version: str) -> None:
    response = call(
        sim,
        "create",
        version=version,
        body=request_xml(
            E.name("aws-123456789012"),
            E.description("prod"),
            E.externalId("ext-id_1"),
            E.disabled("true"),
            E.activation(E.set(E.ActivationModule("VM"), E.ActivationModule("PC"))),
            E.defaultTags(E.set(E.TagSimple(E.id("42")))),
        ),
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    root = parse(response)
    schema = root.get("{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation")
    assert schema == f"https://qualysapi.qualys.com/qps/xsd/{version}/am/awsassetdataconnector.xsd"
    assert root.findtext("responseCode") == "SUCCESS"
    assert root.findtext("count") == "1"
    connector = connector_of(response)
    assert int(str(connector.findtext("id"))) >= 1_000_001
    assert connector.findtext("name") == "aws-123456789012"
    assert connector.findtext("externalId") == "ext-id_1"
    assert connector.findtext("qualysAwsAccountId") == "805950163170"
    assert connector.findtext("allRegions") == "true"
    assert connector.findtext("disabled") == "true"
    assert connector.findtext("connectorState") == "DISABLED"
    assert [e.text for e in connector.iterfind("activation/list/ActivationModule")] == ["VM", "PC"]
    assert connector.findtext("defaultTags/list/TagSimple/id") == "42"
    run_frequency = connector.findtext("runFrequency")
    assert run_frequency == ("240" if version == "3.0" else None)
    assert (connector.find("cloudviewUuid") is not None) == (version == "3.0")


@pytest.mark.parametrize("version", VERSIONS)
def test_get_returns_the_connector_and_unknown_ids_are_not_found(
    sim: QualysSimulator, version: str
) -> None:
    connector_id = create(sim, E.name("one"), E.disabled("true"), version=version)
    found = call(sim, "get", version=version, connector_id=connector_id)
    assert connector_of(found).findtext("name") == "one"
    missing = call(sim, "get", version=version, connector_id=42)
    assert missing.status_code == 200
    assert code(missing) == "OBJECT_NOT_FOUND"


@pytest.mark.parametrize(("version", "method"), [("2.0", "POST"), ("3.0", "PUT")])
def test_update_changes_only_given_fields_and_echoes_the_id(
    sim: QualysSimulator, version: str, method: str
) -> None:
    connector_id = create(sim, E.name("old"), E.description("kept"), E.disabled("true"))
    response = call(
        sim,
        "update",
        version=version,
        connector_id=connector_id,
        method=method,
        body=request_xml(E.name("new")),
    )
    assert code(response) == "SUCCESS"
    assert parse(response).findtext("count") == "1"
    assert ids_of(response) == [connector_id]
    assert connector_of(response).findtext("name") is None, "an update echoes only the id"
    stored = sim.connector(connector_id)
    assert stored is not None
    assert (stored.name, stored.description, stored.disabled) == ("new", "kept", True)


@pytest.mark.parametrize("version", VERSIONS)
def test_update_and_delete_of_unknown_ids_are_not_found(sim: QualysSimulator, version: str) -> None:
    update = call(sim, "update", version=version, connector_id=7, body=request_xml(E.name("x")))
    assert code(update) == "OBJECT_NOT_FOUND"
    delete = call(sim, "delete", version=version, connector_id=7)
    assert code(delete) == "OBJECT_NOT_FOUND"
    run = call(sim, "run", version=version, connector_id=7)
    assert code(run) == "OBJECT_NOT_FOUND"


@pytest.mark.parametrize("version", VERSIONS)
def test_delete_removes_the_connector_and_echoes_its_id(sim: QualysSimulator, version: str) -> None:
    keep = create(sim, E.name("keep"), E.disabled("true"))
    gone = create(sim, E.name("gone"), E.disabled("true"))
    response = call(sim, "delete", version=version, connector_id=gone)
    assert code(response) == "SUCCESS"
    assert ids_of(response) == [gone]
    assert [c.id for c in sim.connectors()] == [keep]


@pytest.mark.parametrize("version", VERSIONS)
def test_search_and_count_without_body_cover_every_connector(
    sim: QualysSimulator, version: str
) -> None:
    ids = [create(sim, E.name(f"c{n}"), E.disabled("true")) for n in range(3)]
    search = call(sim, "search", version=version)
    root = parse(search)
    assert root.findtext("count") == "3"
    assert root.findtext("hasMoreRecords") == "false"
    assert root.find("lastId") is None
    assert ids_of(search) == ids
    count = parse(call(sim, "count", version=version))
    assert count.findtext("count") == "3"
    assert count.find("data") is None


@pytest.mark.parametrize("version", VERSIONS)
def test_run_queues_an_enabled_connector_and_rejects_a_disabled_one(
    sim: QualysSimulator, version: str
) -> None:
    enabled = sim.seed(name="enabled", arn=ROLE, connector_state="FINISHED_SUCCESS")
    disabled = sim.seed(name="disabled", disabled=True)
    response = call(sim, "run", version=version, connector_id=enabled.id)
    assert code(response) == "SUCCESS"
    assert ids_of(response) == [enabled.id]
    assert sim.connector(enabled.id) == replace(enabled, connector_state="QUEUED")
    refused = call(sim, "run", version=version, connector_id=disabled.id)
    assert code(refused) == "INVALID_REQUEST"
    assert "disabled" in error_message(refused)


@pytest.mark.parametrize("version", VERSIONS)
def test_update_many_changes_every_match(sim: QualysSimulator, version: str) -> None:
    first = create(sim, E.name("team-a"), E.disabled("true"))
    second = create(sim, E.name("team-a"), E.disabled("true"))
    other = create(sim, E.name("team-b"), E.disabled("true"))
    body = request_xml(
        E.description("bulk"),
        extra=[E.filters(E.Criteria("team-a", field="name", operator="EQUALS"))],
    )
    response = call(sim, "update", version=version, body=body)
    assert code(response) == "SUCCESS"
    assert ids_of(response) == [first, second]
    assert [c.description for c in sim.connectors()] == ["bulk", "bulk", None]
    assert sim.connector(other) is not None


@pytest.mark.parametrize(
    ("case", "criteria"),
    [
        ("no filters", None),
        ("NOT EQUALS", E.filters(E.Criteria("x", field="name", operator="NOT EQUALS"))),
    ],
)
def test_update_many_rejects_missing_filters_and_not_equals(
    sim: QualysSimulator, case: str, criteria: Any
) -> None:
    create(sim, E.name("x"), E.disabled("true"))
    extra = [] if criteria is None else [criteria]
    response = call(sim, "update", body=request_xml(E.description("no"), extra=extra))
    assert code(response) == "INVALID_REQUEST", case
    assert sim.connectors()[0].description is None, case


def test_delete_many_deletes_matches_only_and_needs_filters(sim: QualysSimulator) -> None:
    doomed = [create(sim, E.name(f"temp-{n}"), E.disabled("true")) for n in range(2)]
    kept = create(sim, E.name("prod"), E.disabled("true"))
    response = call(sim, "delete", body=filters_xml(("name", "CONTAINS", "temp-")))
    assert code(response) == "SUCCESS"
    assert ids_of(response) == doomed
    assert [c.id for c in sim.connectors()] == [kept]
    assert code(call(sim, "delete")) == "INVALID_REQUEST"
    assert [c.id for c in sim.connectors()] == [kept]


def test_names_are_not_unique(sim: QualysSimulator) -> None:
    first = create(sim, E.name("same"), E.disabled("true"))
    second = create(sim, E.name("same"), E.disabled("true"))
    assert second > first


def test_collections_follow_set_add_remove_and_update(sim: QualysSimulator) -> None:
    connector_id = create(
        sim,
        E.name("regions"),
        E.disabled("true"),
        E.endpoints(E.add(E.AwsEndpointSimple(E.regionCode("eu-west-1")))),
        E.activation(E.set(E.ActivationModule("VM"))),
    )
    created = sim.connector(connector_id)
    assert created is not None
    assert (created.all_regions, created.regions) == (False, ("eu-west-1",))
    changes = request_xml(
        E.endpoints(
            E.add(
                E.AwsEndpointSimple(E.regionCode("us-east-1")),
                E.AwsEndpointSimple(E.regionCode("us-gov-west-1")),
            ),
            E.remove(E.AwsEndpointSimple(E.regionCode("eu-west-1"))),
        ),
        E.activation(E.update(E.ActivationModule("PC"), E.ActivationModule("SCA"))),
        E.defaultTags(E.add(E.TagSimple(E.id("7"), E.name("seven")))),
    )
    assert code(call(sim, "update", connector_id=connector_id, body=changes)) == "SUCCESS"
    updated = sim.connector(connector_id)
    assert updated is not None
    assert updated.regions == ("us-east-1", "us-gov-west-1")
    assert updated.activation_modules == ("PC", "SCA")
    assert updated.default_tag_ids == (7,)
    listed = connector_of(call(sim, "get", connector_id=connector_id))
    regions = [e.text for e in listed.iterfind("endpoints/list/AwsEndpointSimple/regionCode")]
    assert regions == ["us-east-1", "us-gov-west-1"]


def test_xml_specials_and_non_ascii_round_trip(sim: QualysSimulator) -> None:
    description = "line one\nline two ]]> <![CDATA[ & ' \" ü €"
    connector_id = create(sim, E.name(SPECIAL_NAME), E.description(description), E.disabled("true"))
    fetched = connector_of(call(sim, "get", connector_id=connector_id))
    assert fetched.findtext("name") == SPECIAL_NAME
    assert fetched.findtext("description") == description
    found = call(sim, "search", body=filters_xml(("name", "EQUALS", SPECIAL_NAME)))
    assert ids_of(found) == [connector_id]


def test_report_qualys_account_id_false_omits_the_element() -> None:
    with QualysSimulator(report_qualys_account_id=False) as sim:
        connector_id = create(sim, E.name("x"), E.disabled("true"))
        assert (
            connector_of(call(sim, "get", connector_id=connector_id)).find("qualysAwsAccountId")
            is None
        )


# --- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "method", "path", "status"),
    [
        ("unknown path", "POST", "/qps/rest/3.0/search/am/hostasset", 404),
        ("unknown version", "POST", "/qps/rest/4.0/search/am/awsassetdataconnector", 404),
        ("unknown operation", "POST", "/qps/rest/3.0/purge/am/awsassetdataconnector", 404),
        ("get without id", "GET", "/qps/rest/3.0/get/am/awsassetdataconnector", 404),
        ("create with id", "POST", "/qps/rest/3.0/create/am/awsassetdataconnector/5", 404),
        ("non-numeric id", "GET", "/qps/rest/3.0/get/am/awsassetdataconnector/abc", 404),
        ("get by POST", "POST", "/qps/rest/3.0/get/am/awsassetdataconnector/5", 405),
        ("search by GET", "GET", "/qps/rest/3.0/search/am/awsassetdataconnector", 405),
        ("delete by DELETE", "DELETE", "/qps/rest/3.0/delete/am/awsassetdataconnector/5", 405),
    ],
)
def test_unknown_paths_are_404_and_wrong_methods_405(
    sim: QualysSimulator, case: str, method: str, path: str, status: int
) -> None:
    response = requests.request(method, sim.base_url + path, auth=AUTH, timeout=TIMEOUT)
    assert response.status_code == status, case
    assert sim.requests[-1].status == status, case


def test_body_over_one_mebibyte_is_rejected_with_413(sim: QualysSimulator) -> None:
    response = call(sim, "search", body=b" " * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert sim.requests[-1].status == 413


# --- authentication ------------------------------------------------------------------------


def test_missing_credentials_answer_200_auth_credentials_needed(sim: QualysSimulator) -> None:
    response = call(sim, "search", auth=None)
    assert response.status_code == 200
    assert code(response) == "AUTH_CREDENTIALS_NEEDED"
    assert sim.requests[-1].username is None


@pytest.mark.parametrize(
    ("case", "authorization"),
    [
        ("wrong password", "Basic cXVhbHlzLXVzZXI6d3Jvbmc="),
        ("unknown user", "Basic bm9ib2R5OnF1YWx5cy1wYXNzd29yZA=="),
        ("not base64", "Basic !!!"),
        ("bearer token", "Bearer abc"),
    ],
)
def test_bad_credentials_answer_401(sim: QualysSimulator, case: str, authorization: str) -> None:
    response = requests.post(
        sim.base_url + "/qps/rest/3.0/create/am/awsassetdataconnector",
        data=request_xml(E.name("never")),
        headers={"Authorization": authorization},
        timeout=TIMEOUT,
    )
    assert response.status_code == 401, case
    assert sim.connectors() == [], case
    recorded = sim.requests[-1]
    assert (recorded.status, recorded.headers["authorization"]) == (401, "<redacted>"), case


def test_user_without_api_access_gets_unauthorized() -> None:
    users = {"qualys-user": "qualys-password", "reader": "pw"}
    with QualysSimulator(users=users, unauthorized_users=["reader"]) as sim:
        response = call(sim, "create", body=request_xml(E.name("x")), auth=("reader", "pw"))
        assert response.status_code == 200
        assert code(response) == "UNAUTHORIZED"
        assert error_message(response) == (
            "You are not authorized to access the application through the API."
        )
        assert sim.connectors() == []
        assert sim.requests[-1].username == "reader"


def test_unauthorized_users_must_be_known_users() -> None:
    with pytest.raises(ValueError, match="ghost"):
        QualysSimulator(unauthorized_users=["ghost"])


def test_requests_are_recorded_with_redacted_authorization(sim: QualysSimulator) -> None:
    body = request_xml(E.name("rec"), E.disabled("true"))
    call(sim, "create", version="2.0", body=body)
    [recorded] = sim.requests
    assert (recorded.method, recorded.path) == (
        "POST",
        "/qps/rest/2.0/create/am/awsassetdataconnector",
    )
    assert (recorded.api_version, recorded.operation, recorded.connector_id) == (
        "2.0",
        "create",
        None,
    )
    assert recorded.headers["AUTHORIZATION"] == "<redacted>"
    assert recorded.headers["x-requested-with"] == "test"
    assert (recorded.body, recorded.status, recorded.username) == (body, 200, "qualys-user")
    assert "qualys-password" not in repr(recorded)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "version", "children", "expected"),
    [
        ("missing name", "3.0", [E.disabled("true")], "name is required"),
        ("empty name", "3.0", [E.name("")], "name must be 1 to 255"),
        ("name too long", "3.0", [E.name("n" * 256)], "name must be 1 to 255"),
        (
            "unknown module",
            "3.0",
            [E.name("x"), E.activation(E.set(E.ActivationModule("WAS")))],
            "ActivationModule",
        ),
        (
            "bad region",
            "3.0",
            [E.name("x"), E.endpoints(E.add(E.AwsEndpointSimple(E.regionCode("mars-1"))))],
            "regionCode",
        ),
        (
            "non-numeric tag",
            "3.0",
            [E.name("x"), E.defaultTags(E.set(E.TagSimple(E.id("x1"))))],
            "TagSimple",
        ),
        ("short external id", "3.0", [E.name("x"), E.externalId("a")], "externalId"),
        ("external id with space", "3.0", [E.name("x"), E.externalId("a b")], "externalId"),
        ("user arn", "3.0", [E.name("x"), E.arn("arn:aws:iam::123456789012:user/bob")], "arn"),
        ("short account in arn", "3.0", [E.name("x"), E.arn("arn:aws:iam::1234:role/r")], "arn"),
        ("unknown field", "3.0", [E.name("x"), E.colour("red")], "colour"),
        ("read-only field", "3.0", [E.name("x"), E.connectorState("RUNNING")], "connectorState"),
        ("runFrequency on 2.0", "2.0", [E.name("x"), E.runFrequency("240")], "runFrequency"),
        ("runFrequency 59", "3.0", [E.name("x"), E.runFrequency("59")], "runFrequency"),
        ("runFrequency 1441", "3.0", [E.name("x"), E.runFrequency("1441")], "runFrequency"),
        ("runFrequency text", "3.0", [E.name("x"), E.runFrequency("often")], "runFrequency"),
        ("disabled maybe", "3.0", [E.name("x"), E.disabled("maybe")], "disabled"),
        (
            "collection verb",
            "3.0",
            [E.name("x"), E.activation(E.list(E.ActivationModule("VM")))],
            "set, add, remove",
        ),
        ("duplicate field", "3.0", [E.name("x"), E.name("y")], "more than once"),
    ],
)
def test_invalid_connector_fields_answer_invalid_request(
    sim: QualysSimulator, case: str, version: str, children: list[Any], expected: str
) -> None:
    response = call(sim, "create", version=version, body=request_xml(*children))
    assert response.status_code == 200, case
    assert code(response) == "INVALID_REQUEST", case
    assert expected in error_message(response), case
    assert sim.connectors() == [], case


def test_valid_edge_values_are_accepted(sim: QualysSimulator) -> None:
    create(
        sim,
        E.name("n" * 255),
        E.externalId("ab"),
        E.arn("arn:aws-us-gov:iam::123456789012:role/path/Role+=,.@-_"),
        E.runFrequency("60"),
        E.endpoints(E.set(E.AwsEndpointSimple(E.regionCode("us-iso-east-1")))),
    )
    create(sim, E.name("x"), E.externalId("e" * 1224), E.runFrequency("1440"), E.disabled("true"))
    assert len(sim.connectors()) == 2


@pytest.mark.parametrize(
    ("case", "body", "expected"),
    [
        ("not xml", b"name=x", "well-formed"),
        ("wrong root", b"<Request><data/></Request>", "ServiceRequest"),
        ("no data", b"<ServiceRequest/>", "AwsAssetDataConnector"),
        ("empty body", b"", "AwsAssetDataConnector"),
        (
            "doctype",
            (
                b'<!DOCTYPE r [<!ENTITY x "y">]><ServiceRequest><data><AwsAssetDataConnector>'
                b"<name>&x;</name></AwsAssetDataConnector></data></ServiceRequest>"
            ),
            "Document type",
        ),
        ("undeclared entity", b"<ServiceRequest><data>&x;</data></ServiceRequest>", "well-formed"),
    ],
)
def test_unusable_bodies_answer_invalid_request(
    sim: QualysSimulator, case: str, body: bytes, expected: str
) -> None:
    response = call(sim, "create", body=body)
    assert code(response) == "INVALID_REQUEST", case
    assert expected in error_message(response), case


@pytest.mark.parametrize(
    ("case", "body", "expected"),
    [
        ("unknown field", filters_xml(("colour", "EQUALS", "red")), "colour"),
        ("unknown operator", filters_xml(("name", "LIKE", "x")), "LIKE"),
        ("GREATER on name", filters_xml(("name", "GREATER", "x")), "GREATER"),
        ("id not a number", filters_xml(("id", "EQUALS", "abc")), "id"),
        ("empty value", filters_xml(("name", "EQUALS", "")), "needs a value"),
        ("limit 0", filters_xml(limit=0), "limitResults"),
        ("limit 1001", filters_xml(limit=1001), "limitResults"),
    ],
)
def test_invalid_search_filters_answer_invalid_request(
    sim: QualysSimulator, case: str, body: bytes, expected: str
) -> None:
    for operation in ("search", "count"):
        response = call(sim, operation, body=body)
        assert code(response) == "INVALID_REQUEST", f"{case} ({operation})"
        assert expected in error_message(response), f"{case} ({operation})"


# --- search operators and paging -----------------------------------------------------------


@pytest.fixture
def population(sim: QualysSimulator) -> dict[str, int]:
    seeded = [
        sim.seed(name="alpha", description="prod [m:1]", arn=ROLE, external_id="e1"),
        sim.seed(name="beta", description="test", disabled=True),
        sim.seed(name="gamma", arn="arn:aws:iam::210987654321:role/R", connector_state="ERROR"),
        sim.seed(name="delta", qualys_aws_account_id="111111111111", disabled=True),
    ]
    return {c.name: c.id for c in seeded}


@pytest.mark.parametrize(
    ("case", "criteria", "expected"),
    [
        ("name equals", [("name", "EQUALS", "beta")], ["beta"]),
        ("name not equals", [("name", "NOT EQUALS", "beta")], ["alpha", "gamma", "delta"]),
        ("name contains", [("name", "CONTAINS", "ta")], ["beta", "delta"]),
        ("name in", [("name", "IN", "alpha, delta,zeta")], ["alpha", "delta"]),
        ("description contains", [("description", "CONTAINS", "[m:1]")], ["alpha"]),
        ("external id", [("externalId", "EQUALS", "e1")], ["alpha"]),
        ("account", [("awsAccountId", "EQUALS", "210987654321")], ["gamma"]),
        ("arn", [("arn", "EQUALS", ROLE)], ["alpha"]),
        ("disabled", [("disabled", "EQUALS", "true")], ["beta", "delta"]),
        ("state", [("connectorState", "IN", "ERROR,DISABLED")], ["beta", "gamma", "delta"]),
        ("qualys account", [("qualysAwsAccountId", "EQUALS", "111111111111")], ["delta"]),
        ("ANDed", [("disabled", "EQUALS", "false"), ("name", "CONTAINS", "a")], ["alpha", "gamma"]),
        ("nothing", [("name", "EQUALS", "omega")], []),
    ],
)
def test_search_operators_select_matching_connectors(
    sim: QualysSimulator,
    population: dict[str, int],
    case: str,
    criteria: list[tuple[str, str, str]],
    expected: list[str],
) -> None:
    response = call(sim, "search", body=filters_xml(*criteria))
    names = [e.text for e in parse(response).iterfind("data/AwsAssetDataConnector/name")]
    assert names == expected, case
    count = call(sim, "count", body=filters_xml(*criteria))
    assert parse(count).findtext("count") == str(len(expected)), case


def test_id_operators_compare_numbers(sim: QualysSimulator, population: dict[str, int]) -> None:
    beta = population["beta"]
    greater = call(sim, "search", body=filters_xml(("id", "GREATER", str(beta))))
    assert ids_of(greater) == [population["gamma"], population["delta"]]
    lesser = call(sim, "search", body=filters_xml(("id", "LESSER", str(beta))))
    assert ids_of(lesser) == [population["alpha"]]
    equals = call(sim, "search", body=filters_xml(("id", "EQUALS", str(beta))))
    assert ids_of(equals) == [beta]


def test_search_pages_with_last_id_and_start_from_id(sim: QualysSimulator) -> None:
    ids = [sim.seed(name=f"page-{n}").id for n in range(7)]
    seen: list[int] = []
    flags: list[str | None] = []
    criteria: list[tuple[str, str, str]] = [("name", "CONTAINS", "page-")]
    for _ in range(5):  # bounded: 7 connectors in pages of 3
        root = parse(call(sim, "search", body=filters_xml(*criteria, limit=3)))
        page = [int(str(e.text)) for e in root.iterfind("data/AwsAssetDataConnector/id")]
        seen += page
        flags.append(root.findtext("hasMoreRecords"))
        if root.findtext("hasMoreRecords") != "true":
            assert root.find("lastId") is None
            break
        assert root.findtext("lastId") == str(page[-1])
        criteria = [("name", "CONTAINS", "page-"), ("id", "GREATER", str(page[-1]))]
    assert seen == ids
    assert flags == ["true", "true", "false"]
    start = bytes(etree.tostring(E.ServiceRequest(E.preferences(E.startFromId(str(ids[5]))))))
    assert ids_of(call(sim, "search", body=start)) == ids[5:]


# --- connector states ----------------------------------------------------------------------


def test_enabling_without_a_role_is_an_error(sim: QualysSimulator) -> None:
    response = call(sim, "create", body=request_xml(E.name("no-role")))
    connector = connector_of(response)
    assert connector.findtext("connectorState") == "ERROR"
    assert connector.findtext("lastError")


def test_activation_follows_the_role_checker_and_reads_advance_the_scan(
    sim: QualysSimulator,
) -> None:
    checked: list[SimConnector] = []

    def cannot_assume(connector: SimConnector) -> str | None:
        checked.append(connector)
        return "Unable to assume role"

    sim.role_checker = cannot_assume
    connector_id = create(sim, E.name("two-step"), E.disabled("true"))
    assert checked == [], "a disabled connector is not checked"
    activate = request_xml(E.arn(ROLE), E.disabled("false"))
    assert code(call(sim, "update", connector_id=connector_id, body=activate)) == "SUCCESS"
    failed = connector_of(call(sim, "get", connector_id=connector_id))
    assert failed.findtext("connectorState") == "ERROR"
    assert failed.findtext("lastError") == "Unable to assume role"
    assert failed.findtext("awsAccountId") == "123456789012"
    assert [c.arn for c in checked] == [ROLE]

    sim.role_checker = None  # the role has propagated
    assert code(call(sim, "update", connector_id=connector_id, body=activate)) == "SUCCESS"
    states = [get_state(sim, connector_id) for _ in range(5)]
    assert states == ["QUEUED", "RUNNING", "PROCESSING", "FINISHED_SUCCESS", "FINISHED_SUCCESS"]
    finished = sim.connector(connector_id)
    assert finished is not None
    assert finished.last_error is None
    assert finished.last_sync is not None
    assert finished.next_sync is not None

    disable = request_xml(E.disabled("true"))
    assert code(call(sim, "update", connector_id=connector_id, body=disable)) == "SUCCESS"
    assert get_state(sim, connector_id) == "DISABLED"


def test_search_advances_states_but_count_does_not(sim: QualysSimulator) -> None:
    connector_id = create(sim, E.name("scan"), E.arn(ROLE))
    assert get_state(sim, connector_id) == "QUEUED"
    call(sim, "count")
    assert stored_state(sim, connector_id) == "RUNNING"
    call(sim, "search")
    assert stored_state(sim, connector_id) == "PROCESSING"


def test_run_rechecks_the_role(sim: QualysSimulator) -> None:
    connector_id = create(sim, E.name("run"), E.arn(ROLE))
    sim.role_checker = lambda connector: "trust policy denies sts:AssumeRole"
    call(sim, "run", connector_id=connector_id)
    stored = sim.connector(connector_id)
    assert stored is not None
    assert (stored.connector_state, stored.last_error) == (
        "ERROR",
        "trust policy denies sts:AssumeRole",
    )


# --- rate and concurrency limits -----------------------------------------------------------


def test_every_response_carries_the_six_limit_headers(sim: QualysSimulator) -> None:
    responses = [
        call(sim, "search"),
        call(sim, "search", auth=("qualys-user", "wrong")),
        call(sim, "search", auth=None),
        requests.get(sim.base_url + "/nowhere", timeout=TIMEOUT),
        call(sim, "get", connector_id=1, method="POST"),
    ]
    for response in responses:
        missing = [h for h in LIMIT_HEADERS if h not in response.headers]
        assert missing == [], f"{response.status_code}: {missing}"
    assert responses[0].headers["X-Concurrency-Limit-Running"] == "1"


@pytest.mark.parametrize("status", [409, 429])
def test_rate_limit_blocks_without_carrying_out(status: int) -> None:
    with QualysSimulator(rate_limit=2, rate_window=30, throttle_status=status) as sim:
        first = call(sim, "search")
        assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == (
            "2",
            "1",
        )
        assert first.headers["X-RateLimit-Window-Sec"] == "30"
        call(sim, "search")
        blocked = call(sim, "create", body=request_xml(E.name("blocked")))
        assert blocked.status_code == status
        assert code(blocked) == "LIMIT_EXCEEDED"
        assert blocked.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(blocked.headers["X-RateLimit-ToWait-Sec"]) <= 30
        assert ("Retry-After" in blocked.headers) == (status == 429)
        assert sim.connectors() == []
        assert sim.requests[-1].status == status


def test_first_blocked_answer_can_lack_to_wait() -> None:
    with QualysSimulator(rate_limit=1, rate_window=30, omit_first_to_wait=True) as sim:
        call(sim, "search")
        first = call(sim, "search")
        second = call(sim, "search")
        assert first.status_code == second.status_code == 409
        assert "X-RateLimit-ToWait-Sec" not in first.headers
        assert "X-RateLimit-ToWait-Sec" in second.headers


def test_rate_window_slides_and_reset_forgets_calls() -> None:
    with QualysSimulator(rate_limit=1, rate_window=0.3) as sim:
        assert call(sim, "search").status_code == 200
        assert call(sim, "search").status_code == 409
        time.sleep(0.35)
        assert call(sim, "search").status_code == 200
        sim.reset()
        assert call(sim, "search").status_code == 200


def test_concurrency_limit_blocks_calls_beyond_the_limit() -> None:
    inside, release = threading.Event(), threading.Event()

    def slow_role_check(connector: SimConnector) -> str | None:
        inside.set()
        release.wait(TIMEOUT)
        return None

    with (
        QualysSimulator(concurrency_limit=1, role_checker=slow_role_check) as sim,
        ThreadPoolExecutor(1) as pool,
    ):
        slow = pool.submit(call, sim, "create", body=request_xml(E.name("slow"), E.arn(ROLE)))
        assert inside.wait(TIMEOUT), "the first call is running"
        blocked = call(sim, "create", body=request_xml(E.name("blocked"), E.disabled("true")))
        release.set()
        assert code(slow.result(timeout=TIMEOUT)) == "SUCCESS"
        assert [c.name for c in sim.connectors()] == ["slow"], "a blocked call is not carried out"
    assert blocked.status_code == 409
    assert code(blocked) == "LIMIT_EXCEEDED"
    assert "Concurrency" in error_message(blocked)
    assert blocked.headers["X-Concurrency-Limit-Limit"] == "1"
    assert blocked.headers["X-Concurrency-Limit-Running"] == "1"
    assert int(blocked.headers["X-RateLimit-ToWait-Sec"]) >= 1


def test_latency_keeps_calls_running_so_simultaneous_calls_are_limited() -> None:
    started = time.monotonic()
    with QualysSimulator(concurrency_limit=1, latency=0.3) as sim, ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(call, sim, "search") for _ in range(3)]
        statuses = sorted(f.result(timeout=TIMEOUT).status_code for f in futures)
    assert statuses[0] == 200
    assert statuses[-1] == 409
    assert time.monotonic() - started >= 0.3


# --- faults --------------------------------------------------------------------------------


def test_http_fault_answers_raw_and_skips_the_operation(sim: QualysSimulator) -> None:
    sim.inject("create", Fault.http(503, headers={"X-RateLimit-ToWait-Sec": "7"}, body="busy"))
    response = call(sim, "create", body=request_xml(E.name("x"), E.disabled("true")))
    assert (response.status_code, response.text) == (503, "busy")
    assert response.headers["X-RateLimit-ToWait-Sec"] == "7"
    assert "X-Concurrency-Limit-Limit" in response.headers
    assert sim.connectors() == []


def test_response_code_fault_answers_200_with_that_code(sim: QualysSimulator) -> None:
    fault = Fault.response_code("OTHER_ERROR", "Internal error", resolution="Retry later")
    sim.inject("search", fault)
    response = call(sim, "search")
    assert response.status_code == 200
    root = parse(response)
    assert root.findtext("responseCode") == "OTHER_ERROR"
    assert root.findtext("responseErrorDetails/errorMessage") == "Internal error"
    assert root.findtext("responseErrorDetails/errorResolution") == "Retry later"


@pytest.mark.parametrize(
    ("case", "fault", "status", "content_type"),
    [
        ("malformed", Fault.malformed(), 200, "application/xml"),
        ("truncated", Fault.truncated(), 200, "application/xml"),
        ("html", Fault.html(), 502, "text/html"),
        ("html 504", Fault.html(504), 504, "text/html"),
    ],
)
def test_unparseable_answers_are_not_xml(
    sim: QualysSimulator, case: str, fault: Fault, status: int, content_type: str
) -> None:
    sim.inject("get", fault)
    response = call(sim, "get", connector_id=1)
    assert response.status_code == status, case
    assert response.headers["Content-Type"].startswith(content_type), case
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)
    if case == "truncated":
        assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        assert b"<responseCode>SUCCESS</responseCode>" in response.content


def test_delay_fault_carries_out_then_answers_late(sim: QualysSimulator) -> None:
    sim.inject("create", Fault.delay(1.0))
    with pytest.raises(requests.ReadTimeout):
        call(sim, "create", body=request_xml(E.name("late"), E.disabled("true")), timeout=0.3)
    assert [c.name for c in sim.connectors()] == ["late"], "created before the answer"


@pytest.mark.parametrize(("process", "created"), [(False, 0), (True, 1)])
def test_drop_fault_closes_without_answer(
    sim: QualysSimulator, process: bool, created: int
) -> None:
    sim.inject("create", Fault.drop(process=process))
    with pytest.raises(requests.ConnectionError):
        call(sim, "create", body=request_xml(E.name("dropped"), E.disabled("true")))
    assert len(sim.connectors()) == created
    assert sim.requests[-1].status == 0
    assert code(call(sim, "search")) == "SUCCESS", "the simulator serves on"


def test_faults_are_consumed_in_order_and_only_by_their_operation(sim: QualysSimulator) -> None:
    sim.inject("get", Fault.response_code("OTHER_ERROR"), times=2)
    sim.inject("*", Fault.response_code("INSUFFICIENT_PERMISSION"))
    sim.inject("get", Fault.response_code("LIMIT_EXCEEDED"))
    codes = [
        code(call(sim, "search")),
        code(call(sim, "get", connector_id=1)),
        code(call(sim, "get", connector_id=1)),
        code(call(sim, "get", connector_id=1)),
        code(call(sim, "count")),
    ]
    assert codes == [
        "INSUFFICIENT_PERMISSION",
        "OTHER_ERROR",
        "OTHER_ERROR",
        "LIMIT_EXCEEDED",
        "SUCCESS",
    ]


def test_faults_apply_after_authentication(sim: QualysSimulator) -> None:
    sim.inject("*", Fault.malformed())
    assert call(sim, "search", auth=("qualys-user", "wrong")).status_code == 401
    assert code(call(sim, "search", auth=None)) == "AUTH_CREDENTIALS_NEEDED"
    assert call(sim, "search").content.startswith(b"Service")


@pytest.mark.parametrize(
    ("case", "build"),
    [
        ("unknown operation", lambda sim: sim.inject("purge", Fault.malformed())),
        ("zero times", lambda sim: sim.inject("get", Fault.malformed(), times=0)),
        ("long delay", lambda sim: Fault.delay(61)),
        ("bad status", lambda sim: Fault.http(99)),
    ],
)
def test_fault_misuse_raises_value_error(sim: QualysSimulator, case: str, build: Any) -> None:
    with pytest.raises(ValueError):
        build(sim)


def test_stop_is_prompt_with_a_delayed_answer_in_flight() -> None:
    sim = QualysSimulator().start()
    sim.inject("search", Fault.delay(30))
    errors: list[BaseException] = []

    def slow_call() -> None:
        try:
            call(sim, "search", timeout=10)
        except requests.RequestException as error:
            errors.append(error)

    worker = threading.Thread(target=slow_call, daemon=True)
    worker.start()
    deadline = time.monotonic() + TIMEOUT
    while not sim.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.stop()
    worker.join(timeout=TIMEOUT)
    assert time.monotonic() - started < 3
    assert not worker.is_alive()
    assert len(errors) == 1, "the client sees the connection close, not an answer"


# --- test controls -------------------------------------------------------------------------


def test_seed_modify_remove_and_reset(sim: QualysSimulator) -> None:
    foreign = sim.seed(name="foreign", arn=ROLE, regions=["eu-west-1"])
    assert foreign.aws_account_id == "123456789012"
    assert foreign.regions == ("eu-west-1",)
    assert foreign.qualys_aws_account_id == "805950163170"
    assert foreign.connector_state == "FINISHED_SUCCESS"
    changed = sim.modify(foreign.id, disabled=True, connector_state="DISABLED", arn=None)
    assert (changed.disabled, changed.aws_account_id) == (True, None)
    assert sim.connector(foreign.id) == changed
    with pytest.raises(TypeError):
        sim.seed(colour="red")
    with pytest.raises(KeyError):
        sim.modify(1, name="x")
    sim.remove(foreign.id)
    assert sim.connector(foreign.id) is None
    with pytest.raises(KeyError):
        sim.remove(foreign.id)
    call(sim, "search")
    sim.inject("*", Fault.malformed())
    sim.seed(name="again")
    sim.reset()
    assert (sim.connectors(), sim.requests) == ([], [])
    assert code(call(sim, "search")) == "SUCCESS", "faults are cleared too"


def test_base_url_needs_a_running_simulator() -> None:
    sim = QualysSimulator()
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    with sim:
        assert sim.base_url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        sim.start()
