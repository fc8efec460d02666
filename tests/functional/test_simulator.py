"""The Qualys simulator spoken to over raw HTTP (requests + lxml), independent of the provider."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
import requests
from lxml import etree
from lxml.builder import E

from sandbox.iam_check import MotoRoleChecker
from sandbox.qualys import Fault, QualysSimulator, SimConnector, SyncOutcome
from sandbox.qualys.models import RUN_FREQUENCIES
from sandbox.qualys.store import NO_ROLE_ERROR
from sandbox.qualys.wire.render import oversized_response

AUTH = ("qualys-user", "qualys-password")
VERSIONS = ["2.0", "3.0"]
ROLE = "arn:aws:iam::123456789012:role/QualysRole"
OTHER_ROLE = "arn:aws:iam::123456789012:role/OtherRole"
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
    stream: bool = False,
) -> requests.Response:
    path = f"/qps/rest/{version}/{operation}/am/awsassetdataconnector"
    if connector_id is not None:
        path += f"/{connector_id}"
    if method is None:
        method = "GET" if operation == "get" else "POST"
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": "text/xml", "X-Requested-With": "test"}
    return requests.request(
        method,
        sim.base_url + path,
        data=data,
        auth=auth,
        headers=headers,
        timeout=timeout,
        stream=stream,
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


def apps_of(element: etree._Element) -> list[tuple[str | None, str | None]]:
    """The (name, identifier) of each app, in the list/QList/set shape Qualys answers with."""
    path = "connectorAppInfos/list/ConnectorAppInfoQList/set/ConnectorAppInfo"
    return [(e.findtext("name"), e.findtext("identifier")) for e in element.iterfind(path)]


def apps_xml(*apps: tuple[str, str | None], action: str = "set") -> Any:
    """connectorAppInfos as requests send it: one ConnectorAppInfoQList per app."""
    qlists = []
    for name, identifier in apps:
        parts = [E.name(name)] + ([E.identifier(identifier)] if identifier else [])
        qlists.append(E.ConnectorAppInfoQList(E.set(E.ConnectorAppInfo(*parts))))
    return E.connectorAppInfos(getattr(E, action)(*qlists))


def stored(sim: QualysSimulator, connector_id: int) -> SimConnector:
    connector = sim.connector(connector_id)
    assert connector is not None
    return connector


def wait_for_state(
    sim: QualysSimulator, connector_id: int, state: str, within: float = TIMEOUT
) -> float:
    """Poll over the API until the connector shows `state`; the seconds it took."""
    started = time.monotonic()
    while get_state(sim, connector_id) != state:
        assert time.monotonic() - started < within, f"never reached {state}"
        time.sleep(0.01)
    return time.monotonic() - started


def reset_in_chain(error: BaseException) -> bool:
    """Whether a TCP reset caused this error (requests nests it in its args)."""
    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        # errno tells a reset from http.client's RemoteDisconnected, a subclass without one.
        if isinstance(item, ConnectionResetError) and item.errno == errno.ECONNRESET:
            return True
        if isinstance(item, BaseException):
            pending += [*item.args, item.__cause__, item.__context__]
    return False


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
    assert apps_of(connector) == ([("AI", None)] if version == "3.0" else [])
    assert connector.findtext("useForCloudView") == (None if version == "3.0" else "false")
    flags = (connector.findtext("isGovCloudConfigured"), connector.findtext("isChinaConfigured"))
    assert flags == ("false", "false")


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
def test_a_search_that_finds_nothing_has_no_data_nor_has_more_records(
    sim: QualysSimulator, version: str
) -> None:
    sim.seed(name="other")
    response = call(sim, "search", version=version, body=filters_xml(("name", "EQUALS", "none")))
    assert response.status_code == 200
    root = parse(response)
    assert (root.findtext("responseCode"), root.findtext("count")) == ("SUCCESS", "0")
    assert root.find("data") is None
    assert root.find("hasMoreRecords") is None


@pytest.mark.parametrize("version", VERSIONS)
def test_run_starts_a_sync_of_an_enabled_connector_and_rejects_a_disabled_one(
    version: str,
) -> None:
    with QualysSimulator(sync_queue_seconds=TIMEOUT) as sim:
        enabled = sim.seed(name="enabled", arn=ROLE, connector_state="FINISHED_SUCCESS")
        disabled = sim.seed(name="disabled", disabled=True)
        response = call(sim, "run", version=version, connector_id=enabled.id)
        assert code(response) == "SUCCESS"
        assert ids_of(response) == [enabled.id]
        assert sim.connector(enabled.id) == replace(enabled, connector_state="QUEUED")
        refused = call(sim, "run", version=version, connector_id=disabled.id)
        assert code(refused) == "INVALID_REQUEST"
        assert "connector is disabled" in error_message(refused)
        assert stored(sim, disabled.id) == disabled


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
        ("runFrequency 61", "3.0", [E.name("x"), E.runFrequency("61")], "runFrequency"),
        ("runFrequency 300", "3.0", [E.name("x"), E.runFrequency("300")], "runFrequency"),
        ("runFrequency 1441", "3.0", [E.name("x"), E.runFrequency("1441")], "runFrequency"),
        ("runFrequency text", "3.0", [E.name("x"), E.runFrequency("often")], "runFrequency"),
        ("apps on 2.0", "2.0", [E.name("x"), apps_xml(("AI", ROLE))], "connectorAppInfos"),
        ("unknown app", "3.0", [E.name("x"), apps_xml(("WAS", ROLE))], "ConnectorAppInfo name"),
        (
            "app without name",
            "3.0",
            [
                E.name("x"),
                E.connectorAppInfos(
                    E.set(E.ConnectorAppInfoQList(E.set(E.ConnectorAppInfo(E.identifier(ROLE)))))
                ),
            ],
            "ConnectorAppInfo name",
        ),
        (
            "app list without set",
            "3.0",
            [E.name("x"), E.connectorAppInfos(E.set(E.ConnectorAppInfoQList()))],
            "ConnectorAppInfoQList needs",
        ),
        ("removing AI", "3.0", [E.name("x"), apps_xml(("AI", None), action="remove")], "AI"),
        ("useForCloudView on 3.0", "3.0", [E.name("x"), E.useForCloudView("true")], "useForCloud"),
        (
            "GovCloud and China",
            "3.0",
            [E.name("x"), E.isGovCloudConfigured("true"), E.isChinaConfigured("true")],
            "cannot both be true",
        ),
        ("isChinaConfigured maybe", "2.0", [E.name("x"), E.isChinaConfigured("y")], "isChina"),
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


def test_every_run_frequency_qualys_accepts_is_stored_and_returned(sim: QualysSimulator) -> None:
    for minutes in RUN_FREQUENCIES:
        connector_id = create(sim, E.name(f"every-{minutes}"), E.runFrequency(str(minutes)))
        returned = connector_of(call(sim, "get", connector_id=connector_id))
        assert returned.findtext("runFrequency") == str(minutes)
    update = request_xml(E.runFrequency("1440"))
    assert code(call(sim, "update", connector_id=connector_id, body=update)) == "SUCCESS"
    refused = call(sim, "update", connector_id=connector_id, body=request_xml(E.runFrequency("90")))
    assert code(refused) == "INVALID_REQUEST"
    assert "runFrequency" in error_message(refused)
    assert stored(sim, connector_id).run_frequency == 1440


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


# --- connector states and syncs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "children", "state"),
    [
        ("disabled", [E.disabled("true"), E.arn(ROLE)], "DISABLED"),
        ("enabled with a role", [E.disabled("false"), E.arn(ROLE)], "QUEUED"),
        ("enabled without a role", [], "QUEUED"),
    ],
)
def test_a_new_connector_is_disabled_or_queued_and_its_role_is_not_checked(
    case: str, children: list[Any], state: str
) -> None:
    checked: list[SimConnector] = []

    def checker(connector: SimConnector) -> str | None:
        checked.append(connector)
        return "Unable to assume role"

    with QualysSimulator(role_checker=checker) as sim:
        response = call(sim, "create", body=request_xml(E.name(case), *children))
        created = connector_of(response)
        assert created.findtext("connectorState") == state, case
        assert created.find("lastError") is None, case
        connector_id = int(str(created.findtext("id")))
        assert get_state(sim, connector_id) == state, "it waits for a run"
        assert checked == [], case


def test_enabling_queues_and_disabling_shows_disabled_without_a_role_check(
    sim: QualysSimulator,
) -> None:
    checked: list[SimConnector] = []

    def checker(connector: SimConnector) -> str | None:
        checked.append(connector)
        return "Unable to assume role"

    sim.role_checker = checker
    connector_id = create(sim, E.name("two-step"), E.disabled("true"))
    activate = request_xml(E.arn(ROLE), E.disabled("false"))
    assert code(call(sim, "update", connector_id=connector_id, body=activate)) == "SUCCESS"
    enabled = connector_of(call(sim, "get", connector_id=connector_id))
    assert enabled.findtext("connectorState") == "QUEUED"
    assert enabled.findtext("awsAccountId") == "123456789012"
    assert checked == []
    again = request_xml(E.description("enabled twice"), E.disabled("false"))
    assert code(call(sim, "update", connector_id=connector_id, body=again)) == "SUCCESS"
    assert get_state(sim, connector_id) == "QUEUED"
    disable = request_xml(E.disabled("true"))
    assert code(call(sim, "update", connector_id=connector_id, body=disable)) == "SUCCESS"
    assert get_state(sim, connector_id) == "DISABLED"
    assert checked == []


def test_a_sync_is_queued_then_processing_then_checks_the_role_when_it_ends() -> None:
    checked: list[SimConnector] = []

    def checker(connector: SimConnector) -> str | None:
        checked.append(connector)
        return None

    with QualysSimulator(role_checker=checker, sync_queue_seconds=0.3, sync_seconds=0.3) as sim:
        connector_id = create(sim, E.name("sync"), E.arn(ROLE))
        started = time.monotonic()
        assert code(call(sim, "run", connector_id=connector_id)) == "SUCCESS"
        assert get_state(sim, connector_id) == "QUEUED"
        wait_for_state(sim, connector_id, "PROCESSING")
        assert time.monotonic() - started >= 0.3
        assert checked == [], "the role is checked when the sync ends"
        # The role changes while the sync runs: Qualys assumes the one it has at the end.
        update = request_xml(E.arn(OTHER_ROLE))
        assert code(call(sim, "update", connector_id=connector_id, body=update)) == "SUCCESS"
        wait_for_state(sim, connector_id, "FINISHED_SUCCESS")
        assert time.monotonic() - started >= 0.6
        assert [c.arn for c in checked] == [OTHER_ROLE]
        finished = connector_of(call(sim, "get", connector_id=connector_id))
        assert finished.findtext("lastSync")
        assert finished.findtext("nextSync")
        assert finished.find("lastError") is None
        assert len(checked) == 1, "one check per sync, however often it is read"


@pytest.mark.parametrize(
    ("case", "arn", "verdict", "state", "last_error"),
    [
        ("role usable", ROLE, None, "FINISHED_SUCCESS", None),
        (
            "role unusable",
            ROLE,
            "Unable to assume role: denied",
            "ERROR",
            "Unable to assume role: denied",
        ),
        ("outcome: success", ROLE, SyncOutcome.success(), "FINISHED_SUCCESS", None),
        (
            "outcome: errors",
            ROLE,
            SyncOutcome.errors("eu-west-3: denied"),
            "FINISHED_ERRORS",
            "eu-west-3: denied",
        ),
        ("outcome: failed", ROLE, SyncOutcome.failed("no trust"), "ERROR", "no trust"),
        ("no role", None, None, "ERROR", NO_ROLE_ERROR),
    ],
)
def test_a_sync_ends_with_the_role_checkers_verdict(
    case: str,
    arn: str | None,
    verdict: str | SyncOutcome | None,
    state: str,
    last_error: str | None,
) -> None:
    with QualysSimulator(role_checker=lambda _c: verdict, sync_seconds=0) as sim:
        connector_id = create(sim, *([E.name(case)] + ([E.arn(arn)] if arn else [])))
        assert code(call(sim, "run", connector_id=connector_id)) == "SUCCESS", case
        result = connector_of(call(sim, "get", connector_id=connector_id))
        assert result.findtext("connectorState") == state, case
        assert result.findtext("lastError") == last_error, case
        ran = state != "ERROR"  # lastSync: a sync that ran, with or without errors
        assert (result.findtext("lastSync") is not None) == ran, case
        assert result.findtext("nextSync") is not None, case


def test_a_failed_sync_clears_on_the_next_good_one(sim: QualysSimulator) -> None:
    sim.role_checker = lambda _c: "Unable to assume role"
    connector_id = create(sim, E.name("retry"), E.arn(ROLE))
    call(sim, "run", connector_id=connector_id)
    wait_for_state(sim, connector_id, "ERROR")
    sim.role_checker = None  # the role has propagated
    call(sim, "run", connector_id=connector_id)
    wait_for_state(sim, connector_id, "FINISHED_SUCCESS")
    assert stored(sim, connector_id).last_error is None


def test_scripted_syncs_end_as_scripted_then_the_role_checker_decides() -> None:
    with QualysSimulator(sync_seconds=0) as sim:
        connector_id = create(sim, E.name("scripted"), E.arn(ROLE))
        sim.script_sync(SyncOutcome.errors("Some regions failed"), times=2)
        results = []
        for _ in range(3):
            call(sim, "run", connector_id=connector_id)
            connector = stored(sim, connector_id)
            results.append((connector.connector_state, connector.last_error))
        assert results == [
            ("FINISHED_ERRORS", "Some regions failed"),
            ("FINISHED_ERRORS", "Some regions failed"),
            ("FINISHED_SUCCESS", None),
        ]
        with pytest.raises(ValueError, match="times"):
            sim.script_sync(SyncOutcome.success(), times=0)
        with pytest.raises(ValueError, match="error text"):
            SyncOutcome("FINISHED_ERRORS")
        with pytest.raises(ValueError, match="FINISHED_SUCCESS"):
            SyncOutcome("RUNNING")


def test_run_during_a_sync_keeps_it_and_disabling_ends_it() -> None:
    with QualysSimulator(sync_queue_seconds=0.2, sync_seconds=TIMEOUT) as sim:
        connector_id = create(sim, E.name("busy"), E.arn(ROLE))
        call(sim, "run", connector_id=connector_id)
        wait_for_state(sim, connector_id, "PROCESSING")
        assert code(call(sim, "run", connector_id=connector_id)) == "SUCCESS"
        assert get_state(sim, connector_id) == "PROCESSING", "not queued again"
        disable = request_xml(E.disabled("true"))
        assert code(call(sim, "update", connector_id=connector_id, body=disable)) == "SUCCESS"
        assert get_state(sim, connector_id) == "DISABLED"
        enable = request_xml(E.disabled("false"))
        assert code(call(sim, "update", connector_id=connector_id, body=enable)) == "SUCCESS"
        assert get_state(sim, connector_id) == "QUEUED", "the ended sync does not come back"


def test_a_seeded_connector_keeps_its_state_until_a_run(sim: QualysSimulator) -> None:
    seeded = sim.seed(name="seeded", arn=ROLE, connector_state="ERROR", last_error="old")
    time.sleep(0.25)  # longer than a default sync
    assert get_state(sim, seeded.id) == "ERROR"
    call(sim, "run", connector_id=seeded.id)
    assert get_state(sim, seeded.id) == "PROCESSING"
    wait_for_state(sim, seeded.id, "FINISHED_SUCCESS")
    assert stored(sim, seeded.id).last_error is None


def test_search_and_count_filter_on_the_state_as_of_now() -> None:
    with QualysSimulator(sync_seconds=0.2) as sim:
        connector_id = create(sim, E.name("scan"), E.arn(ROLE))
        call(sim, "run", connector_id=connector_id)
        processing = filters_xml(("connectorState", "EQUALS", "PROCESSING"))
        assert ids_of(call(sim, "search", body=processing)) == [connector_id]
        time.sleep(0.25)
        finished = filters_xml(("connectorState", "EQUALS", "FINISHED_SUCCESS"))
        assert parse(call(sim, "count", body=finished)).findtext("count") == "1"
        assert ids_of(call(sim, "search", body=finished)) == [connector_id]


def test_sync_on_enable_starts_a_sync_without_a_run() -> None:
    with QualysSimulator(sync_on_enable=True, sync_seconds=0.1) as sim:
        disabled = create(sim, E.name("later"), E.arn(ROLE), E.disabled("true"))
        assert get_state(sim, disabled) == "DISABLED"
        enabled = create(sim, E.name("now"), E.arn(ROLE))
        wait_for_state(sim, enabled, "FINISHED_SUCCESS")
        call(sim, "update", connector_id=disabled, body=request_xml(E.disabled("false")))
        wait_for_state(sim, disabled, "FINISHED_SUCCESS")


# --- apps, account types, descriptions ------------------------------------------------------


CSPM = [("AI", ROLE), ("CI", ROLE), ("CSA", ROLE)]


@pytest.mark.parametrize(
    ("case", "children", "expected"),
    [
        ("no apps, no role", [], [("AI", None)]),
        ("no apps: AI with the role", [E.arn(ROLE)], [("AI", ROLE)]),
        ("AI only", [E.arn(ROLE), apps_xml(("AI", ROLE))], [("AI", ROLE)]),
        ("CSPM", [E.arn(ROLE), apps_xml(*CSPM)], CSPM),
        ("CSPM, AI left out", [E.arn(ROLE), apps_xml(("CSA", ROLE), ("CI", ROLE))], CSPM),
        (
            "identifier other than arn",
            [E.arn(ROLE), apps_xml(("AI", OTHER_ROLE))],
            [("AI", OTHER_ROLE)],
        ),
        ("identifier missing", [E.arn(ROLE), apps_xml(("CI", None))], [("AI", ROLE), ("CI", ROLE)]),
    ],
)
def test_apps_are_stored_and_returned_as_qualys_lists_them(
    sim: QualysSimulator,
    case: str,
    children: list[Any],
    expected: list[tuple[str, str | None]],
) -> None:
    connector_id = create(sim, E.name(case), E.disabled("true"), *children)
    assert apps_of(connector_of(call(sim, "get", connector_id=connector_id))) == expected, case
    names = [name for name, _ in expected]
    assert list(stored(sim, connector_id).application_names) == names, case
    on_2 = connector_of(call(sim, "get", version="2.0", connector_id=connector_id))
    assert on_2.find("connectorAppInfos") is None, case


@pytest.mark.parametrize(
    ("case", "edit", "expected"),
    [
        ("set AI only", apps_xml(("AI", ROLE)), ["AI"]),
        ("remove CSA", apps_xml(("CSA", None), action="remove"), ["AI", "CI"]),
        ("add is idempotent", apps_xml(("CI", ROLE), action="add"), ["AI", "CI", "CSA"]),
        ("update is set", apps_xml(("CI", ROLE), action="update"), ["AI", "CI"]),
    ],
)
def test_updates_change_the_apps(
    sim: QualysSimulator, case: str, edit: Any, expected: list[str]
) -> None:
    connector_id = create(sim, E.name(case), E.arn(ROLE), apps_xml(*CSPM))
    assert code(call(sim, "update", connector_id=connector_id, body=request_xml(edit))) == "SUCCESS"
    returned = apps_of(connector_of(call(sim, "get", connector_id=connector_id)))
    assert [name for name, _ in returned] == expected, case


def test_removing_ai_is_refused_and_changes_nothing(sim: QualysSimulator) -> None:
    connector_id = create(sim, E.name("ai"), E.arn(ROLE), apps_xml(*CSPM))
    edit = request_xml(apps_xml(("AI", None), ("CI", None), action="remove"))
    refused = call(sim, "update", connector_id=connector_id, body=edit)
    assert code(refused) == "INVALID_REQUEST"
    assert "always on" in error_message(refused)
    assert stored(sim, connector_id).application_names == ("AI", "CI", "CSA")


@pytest.mark.parametrize("value", ["true", "false"])
def test_use_for_cloud_view_is_stored_and_returned_on_2_0(sim: QualysSimulator, value: str) -> None:
    connector_id = create(sim, E.name("cv"), E.useForCloudView(value), version="2.0")
    returned = connector_of(call(sim, "get", version="2.0", connector_id=connector_id))
    assert returned.findtext("useForCloudView") == value
    assert stored(sim, connector_id).use_for_cloud_view is (value == "true")
    flipped = "false" if value == "true" else "true"
    update = request_xml(E.useForCloudView(flipped))
    call(sim, "update", version="2.0", connector_id=connector_id, body=update)
    again = connector_of(call(sim, "get", version="2.0", connector_id=connector_id))
    assert again.findtext("useForCloudView") == flipped
    on_3 = connector_of(call(sim, "get", connector_id=connector_id))
    assert on_3.find("useForCloudView") is None


GOV_ACCOUNT = "111111111111"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("case", "flags", "account_type", "qualys_account"),
    [
        ("no flags", [], "GLOBAL", "805950163170"),
        (
            "both false",
            [("isGovCloudConfigured", "false"), ("isChinaConfigured", "false")],
            "GLOBAL",
            "805950163170",
        ),
        ("GovCloud", [("isGovCloudConfigured", "true")], "GOVCLOUD", GOV_ACCOUNT),
        ("China", [("isChinaConfigured", "true")], "CHINA", None),
    ],
)
def test_the_account_type_comes_from_the_create_flags(
    version: str,
    case: str,
    flags: list[tuple[str, str]],
    account_type: str,
    qualys_account: str | None,
) -> None:
    with QualysSimulator(gov_cloud_qualys_account_id=GOV_ACCOUNT) as sim:
        # The partition of the ARN does not decide: only the flags do.
        arn = "arn:aws-us-gov:iam::123456789012:role/R" if account_type == "GLOBAL" else ROLE
        children = [getattr(E, flag)(value) for flag, value in flags]
        connector_id = create(sim, E.name(case), E.arn(arn), *children, version=version)
        returned = connector_of(call(sim, "get", version=version, connector_id=connector_id))
        returned_flags = [
            returned.findtext(f) for f in ("isGovCloudConfigured", "isChinaConfigured")
        ]
        expected_flags = [str(account_type == kind).lower() for kind in ("GOVCLOUD", "CHINA")]
        assert returned_flags == expected_flags, case
        assert returned.findtext("qualysAwsAccountId") == qualys_account, case
        assert stored(sim, connector_id).account_type == account_type, case
        same = request_xml(*[getattr(E, flag)(value) for flag, value in flags], E.name("kept"))
        assert code(call(sim, "update", connector_id=connector_id, body=same)) == "SUCCESS", case


@pytest.mark.parametrize(
    ("case", "created_as", "update"),
    [
        ("Global to GovCloud", [], [E.isGovCloudConfigured("true")]),
        ("Global to China", [], [E.isChinaConfigured("true")]),
        ("GovCloud to Global", [E.isGovCloudConfigured("true")], [E.isGovCloudConfigured("false")]),
        ("China to GovCloud", [E.isChinaConfigured("true")], [E.isGovCloudConfigured("true")]),
    ],
)
def test_the_account_type_cannot_change(
    sim: QualysSimulator, case: str, created_as: list[Any], update: list[Any]
) -> None:
    connector_id = create(sim, E.name(case), *created_as)
    before = stored(sim, connector_id)
    body = request_xml(E.description("changed"), *update)
    refused = call(sim, "update", connector_id=connector_id, body=body)
    assert code(refused) == "INVALID_REQUEST", case
    assert "account type cannot change" in error_message(refused), case
    assert stored(sim, connector_id) == before, case


def test_every_account_type_can_report_its_own_qualys_account_or_none() -> None:
    accounts = {"GLOBAL": "222222222222", "GOVCLOUD": "333333333333", "CHINA": "444444444444"}
    flags = {
        "GLOBAL": [],
        "GOVCLOUD": [E.isGovCloudConfigured("true")],
        "CHINA": [E.isChinaConfigured("true")],
    }
    with QualysSimulator(
        qualys_account_id=accounts["GLOBAL"],
        gov_cloud_qualys_account_id=accounts["GOVCLOUD"],
        china_qualys_account_id=accounts["CHINA"],
    ) as sim:
        for kind, children in flags.items():
            created = connector_of(call(sim, "create", body=request_xml(E.name(kind), *children)))
            assert created.findtext("qualysAwsAccountId") == accounts[kind], kind
        assert sim.seed(account_type="CHINA").qualys_aws_account_id == accounts["CHINA"]
    with QualysSimulator(
        report_qualys_account_id=False, gov_cloud_qualys_account_id=accounts["GOVCLOUD"]
    ) as hidden:
        for kind, children in flags.items():
            created = connector_of(
                call(hidden, "create", body=request_xml(E.name(kind), *children))
            )
            assert created.find("qualysAwsAccountId") is None, kind


@pytest.mark.parametrize(
    ("account_type", "caller"),
    [("GLOBAL", "805950163170"), ("GOVCLOUD", GOV_ACCOUNT), ("CHINA", "805950163170")],
)
def test_moto_role_checker_assumes_from_the_qualys_account_of_the_type(
    account_type: str, caller: str
) -> None:
    checker = MotoRoleChecker("805950163170", gov_cloud_account_id=GOV_ACCOUNT)
    connector = SimConnector(id=1, name="x", arn=ROLE, account_type=account_type)
    assert checker.caller_account(connector) == caller


@pytest.mark.parametrize(
    ("limit", "sent", "kept"),
    [
        (None, "d" * 2000, "d" * 2000),
        (10, "0123456789", "0123456789"),
        (10, "0123456789abc", "0123456789"),
        (5, "ü€ü€ü€", "ü€ü€ü"),
    ],
)
def test_description_limit_cuts_longer_descriptions_silently(
    limit: int | None, sent: str, kept: str
) -> None:
    with QualysSimulator(description_limit=limit) as sim:
        created = call(sim, "create", body=request_xml(E.name("d"), E.description(sent)))
        assert code(created) == "SUCCESS"
        assert connector_of(created).findtext("description") == kept
        connector_id = int(str(connector_of(created).findtext("id")))
        update = request_xml(E.description(sent + "x"))
        assert code(call(sim, "update", connector_id=connector_id, body=update)) == "SUCCESS"
        expected = kept if limit is not None else sent + "x"
        assert (
            connector_of(call(sim, "get", connector_id=connector_id)).findtext("description")
            == expected
        )


def test_description_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="description_limit"):
        QualysSimulator(description_limit=0)


# --- scope -------------------------------------------------------------------------------


def hide_by_flag(sim: QualysSimulator, connector_id: int) -> None:
    sim.hide(connector_id)


def hide_by_scope(sim: QualysSimulator, connector_id: int) -> None:
    sim.scope = lambda connector: connector.id != connector_id


@pytest.mark.parametrize("hide", [hide_by_flag, hide_by_scope], ids=["hide", "scope"])
def test_out_of_scope_connectors_are_not_found_nor_listed_but_still_exist(
    sim: QualysSimulator, hide: Callable[[QualysSimulator, int], None]
) -> None:
    orphan = create(sim, E.name("team"), E.arn(ROLE))
    mine = create(sim, E.name("team"), E.arn(ROLE))
    hide(sim, orphan)
    assert not sim.visible(orphan)
    assert sim.visible(mine)
    before = stored(sim, orphan)
    by_id = [
        call(sim, "get", connector_id=orphan),
        call(sim, "update", connector_id=orphan, body=request_xml(E.name("x"))),
        call(sim, "run", connector_id=orphan),
        call(sim, "delete", connector_id=orphan),
    ]
    assert [code(r) for r in by_id] == ["OBJECT_NOT_FOUND"] * 4
    team = ("name", "EQUALS", "team")
    assert ids_of(call(sim, "search")) == [mine]
    assert ids_of(call(sim, "search", body=filters_xml(team))) == [mine]
    assert parse(call(sim, "count")).findtext("count") == "1"
    bulk = request_xml(
        E.description("bulk"),
        extra=[E.filters(E.Criteria("team", field="name", operator="EQUALS"))],
    )
    assert ids_of(call(sim, "update", body=bulk)) == [mine]
    assert ids_of(call(sim, "delete", body=filters_xml(team))) == [mine]
    assert [c.id for c in sim.connectors()] == [orphan], "the orphan is still there"
    assert stored(sim, orphan) == before


def test_a_hidden_connector_is_flagged_and_can_be_revealed(sim: QualysSimulator) -> None:
    connector_id = create(sim, E.name("orphan"), E.disabled("true"))
    assert sim.hide(connector_id).hidden
    assert [c.hidden for c in sim.connectors()] == [True]
    revealed = sim.reveal(connector_id)
    assert not revealed.hidden
    assert connector_of(call(sim, "get", connector_id=connector_id)).findtext("name") == "orphan"
    with pytest.raises(KeyError):
        sim.visible(42)


# --- rate and concurrency limits -----------------------------------------------------------


def limited_answers(sim: QualysSimulator) -> list[requests.Response]:
    """One answer of each kind, the last a blocked one (the simulator's rate limit is 1)."""
    return [
        call(sim, "search"),
        call(sim, "search", auth=("qualys-user", "wrong")),
        call(sim, "search", auth=None),
        requests.get(sim.base_url + "/nowhere", timeout=TIMEOUT),
        call(sim, "get", connector_id=1, method="POST"),
        call(sim, "search"),
    ]


@pytest.mark.parametrize("status", [409, 429])
def test_by_default_no_answer_carries_a_limit_header(status: int) -> None:
    with QualysSimulator(rate_limit=1, rate_window=30, throttle_status=status) as sim:
        responses = limited_answers(sim)
        assert responses[-1].status_code == status
        assert code(responses[-1]) == "LIMIT_EXCEEDED"
        for response in responses:
            present = [h for h in LIMIT_HEADERS if h in response.headers]
            assert present == [], f"{response.status_code}: {present}"
        assert ("Retry-After" in responses[-1].headers) == (status == 429)


def test_limit_headers_option_puts_the_six_headers_on_every_answer() -> None:
    with QualysSimulator(rate_limit=1, rate_window=30, limit_headers=True) as sim:
        responses = limited_answers(sim)
        for response in responses:
            missing = [h for h in LIMIT_HEADERS if h not in response.headers]
            assert missing == [], f"{response.status_code}: {missing}"
        assert responses[0].headers["X-Concurrency-Limit-Running"] == "1"
        assert responses[-1].status_code == 409


@pytest.mark.parametrize(
    ("status", "retry_after", "has_retry_after"),
    [(409, True, False), (429, True, True), (429, False, False)],
)
def test_rate_limit_blocks_without_carrying_out(
    status: int, retry_after: bool, has_retry_after: bool
) -> None:
    with QualysSimulator(
        rate_limit=2,
        rate_window=30,
        throttle_status=status,
        limit_headers=True,
        retry_after=retry_after,
    ) as sim:
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
        assert 29 <= int(blocked.headers["X-RateLimit-ToWait-Sec"]) <= 30
        assert blocked.headers.get("Retry-After") in (("29", "30") if has_retry_after else (None,))
        assert sim.connectors() == []
        assert sim.requests[-1].status == status


def test_first_blocked_answer_can_lack_to_wait() -> None:
    with QualysSimulator(
        rate_limit=1, rate_window=30, omit_first_to_wait=True, limit_headers=True
    ) as sim:
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


@pytest.mark.parametrize("limit_headers", [False, True])
def test_concurrency_limit_blocks_calls_beyond_the_limit(limit_headers: bool) -> None:
    inside, release = threading.Event(), threading.Event()

    def slow_role_check(connector: SimConnector) -> str | None:
        inside.set()
        release.wait(TIMEOUT)
        return None

    with (
        QualysSimulator(
            concurrency_limit=1,
            role_checker=slow_role_check,
            sync_seconds=0,
            limit_headers=limit_headers,
        ) as sim,
        ThreadPoolExecutor(1) as pool,
    ):
        connector = sim.seed(name="slow", arn=ROLE)
        slow = pool.submit(call, sim, "run", connector_id=connector.id)
        assert inside.wait(TIMEOUT), "the first call is running"
        blocked = call(sim, "create", body=request_xml(E.name("blocked"), E.disabled("true")))
        release.set()
        assert code(slow.result(timeout=TIMEOUT)) == "SUCCESS"
        assert [c.name for c in sim.connectors()] == ["slow"], "a blocked call is not carried out"
    assert blocked.status_code == 409
    assert code(blocked) == "LIMIT_EXCEEDED"
    assert "Concurrency" in error_message(blocked)
    if limit_headers:
        assert blocked.headers["X-Concurrency-Limit-Limit"] == "1"
        assert blocked.headers["X-Concurrency-Limit-Running"] == "1"
        assert blocked.headers["X-RateLimit-ToWait-Sec"] == "0", "ToWait is the rate window's"
    else:
        assert [h for h in LIMIT_HEADERS if h in blocked.headers] == []


def test_latency_keeps_calls_running_so_simultaneous_calls_are_limited() -> None:
    started = time.monotonic()
    with QualysSimulator(concurrency_limit=1, latency=0.3) as sim, ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(call, sim, "search") for _ in range(3)]
        statuses = sorted(f.result(timeout=TIMEOUT).status_code for f in futures)
    assert statuses[0] == 200
    assert statuses[-1] == 409
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("latency", "slow", "fast"),
    [
        ({"search": 0.4}, ["search"], ["count", "get", "create"]),
        ({"*": 0.4, "get": 0.0}, ["search", "count"], ["get"]),
    ],
)
def test_latency_can_differ_per_operation(
    latency: dict[str, float], slow: list[str], fast: list[str]
) -> None:
    with QualysSimulator(latency=latency) as sim:
        for operation in slow + fast:
            connector_id = 1 if operation == "get" else None
            body = request_xml(E.name("x")) if operation == "create" else b""
            started = time.monotonic()
            call(sim, operation, connector_id=connector_id, body=body)
            elapsed = time.monotonic() - started
            assert (elapsed >= 0.4) == (operation in slow), f"{operation}: {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("latency", "message"),
    [(-1.0, "negative"), ({"search": -0.1}, "negative"), ({"purge": 1.0}, "purge")],
)
def test_latency_misuse_raises_value_error(latency: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QualysSimulator(latency=latency)


# --- faults --------------------------------------------------------------------------------


def test_http_fault_answers_raw_and_skips_the_operation(sim: QualysSimulator) -> None:
    sim.inject("create", Fault.http(503, headers={"X-RateLimit-ToWait-Sec": "7"}, body="busy"))
    response = call(sim, "create", body=request_xml(E.name("x"), E.disabled("true")))
    assert (response.status_code, response.text) == (503, "busy")
    assert response.headers["X-RateLimit-ToWait-Sec"] == "7"
    assert "X-Concurrency-Limit-Limit" not in response.headers, "no limit headers by default"
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


@pytest.mark.parametrize(
    ("fault", "created", "reset"),
    [
        (Fault.drop(), 0, False),
        (Fault.drop(process=True), 1, False),
        (Fault.reset(), 0, True),
        (Fault.reset(process=True), 1, True),
    ],
    ids=["drop", "drop after", "reset", "reset after"],
)
def test_drop_and_reset_faults_end_the_connection_without_answer(
    sim: QualysSimulator, fault: Fault, created: int, reset: bool
) -> None:
    sim.inject("create", fault)
    with pytest.raises(requests.ConnectionError) as caught:
        call(sim, "create", body=request_xml(E.name("dropped"), E.disabled("true")))
    assert reset_in_chain(caught.value) == reset, repr(caught.value)
    assert len(sim.connectors()) == created
    assert sim.requests[-1].status == 0
    assert code(call(sim, "search")) == "SUCCESS", "the simulator serves on"


def test_trickle_sends_headers_at_once_then_a_byte_per_pause(sim: QualysSimulator) -> None:
    sim.inject("create", Fault.trickle(0.3))
    started = time.monotonic()
    body = request_xml(E.name("trickled"), E.disabled("true"))
    with call(sim, "create", body=body, stream=True) as response:
        assert time.monotonic() - started < 0.25, "status and headers come at once"
        assert response.status_code == 200
        length = int(response.headers["Content-Length"])
        assert [c.name for c in sim.connectors()] == ["trickled"], "carried out first"
        first = response.raw.read(1)
        assert time.monotonic() - started < 0.25, "the first byte too"
        second = response.raw.read(1)
        assert time.monotonic() - started >= 0.3, "the next one a pause later"
    assert first + second == b"<?"
    assert length > 100
    assert sim.requests[-1].status == 200


def test_a_trickled_body_arrives_whole(sim: QualysSimulator) -> None:
    sim.inject("count", Fault.trickle(0.001))
    response = call(sim, "count")
    assert parse(response).findtext("count") == "0"
    assert len(response.content) == int(response.headers["Content-Length"])


def test_stop_is_prompt_with_a_trickle_in_flight() -> None:
    sim = QualysSimulator().start()
    sim.inject("search", Fault.trickle(30))
    response = call(sim, "search", stream=True)
    assert response.raw.read(1) == b"<"
    started = time.monotonic()
    sim.stop()
    with pytest.raises(requests.RequestException):
        _ = response.content  # the connection ends short of Content-Length
    response.close()
    assert time.monotonic() - started < 3


def test_oversized_answer_is_a_valid_streamed_search_answer(sim: QualysSimulator) -> None:
    size = 8 * 1024 * 1024
    sim.inject("search", Fault.oversized(size))
    response = call(sim, "search", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    assert int(response.headers["Content-Length"]) == len(response.content) == size
    root = parse(response)
    assert root.findtext("responseCode") == "SUCCESS"
    ids = [int(str(e.text)) for e in root.iterfind("data/AwsAssetDataConnector/id")]
    assert len(ids) == int(str(root.findtext("count"))) > 1000
    assert len(set(ids)) == len(ids)
    assert sim.connectors() == []
    assert code(call(sim, "search")) == "SUCCESS", "one answer only"


@pytest.mark.parametrize("size", [4 * 1024, 1_000_003, 64 * 1024 * 1024])
def test_oversized_body_is_made_in_small_chunks_of_exactly_the_size(size: int) -> None:
    lengths = [len(chunk) for chunk in oversized_response("3.0", size)]
    assert sum(lengths) == size
    assert max(lengths) <= 256 * 1024, "never the whole body at once"


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
        ("no trickle pause", lambda sim: Fault.trickle(0)),
        ("long trickle pause", lambda sim: Fault.trickle(61)),
        ("tiny oversized", lambda sim: Fault.oversized(100)),
        ("huge oversized", lambda sim: Fault.oversized(2**31)),
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


def test_seed_takes_apps_and_account_type_and_modify_ends_a_sync() -> None:
    with QualysSimulator(sync_seconds=TIMEOUT, china_qualys_account_id="444444444444") as sim:
        cspm = sim.seed(name="cspm", arn=ROLE, applications={"AI": None, "CI": ROLE})
        assert cspm.applications == (("AI", None), ("CI", ROLE))
        named = sim.seed(name="named", applications=["AI", "CSA"], account_type="CHINA")
        assert named.applications == (("AI", None), ("CSA", None))
        assert named.qualys_aws_account_id == "444444444444"
        returned = connector_of(call(sim, "get", connector_id=cspm.id))
        assert apps_of(returned) == [("AI", ROLE), ("CI", ROLE)]
        call(sim, "run", connector_id=cspm.id)
        assert stored(sim, cspm.id).connector_state == "PROCESSING"
        sim.modify(cspm.id, connector_state="ERROR", last_error="set by the test")
        assert get_state(sim, cspm.id) == "ERROR"
        call(sim, "run", connector_id=named.id)
        sim.modify(named.id, disabled=True)
        assert stored(sim, named.id).connector_state == "PROCESSING", "as modified: no rules"
        sim.modify(named.id, connector_state="DISABLED")
        assert get_state(sim, named.id) == "DISABLED"


def test_base_url_needs_a_running_simulator() -> None:
    sim = QualysSimulator()
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    with sim:
        assert sim.base_url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        sim.start()


def test_a_rotated_password_replaces_the_old_one() -> None:
    with QualysSimulator(users={"api": "old-pass"}) as rotated:
        seeded = rotated.seed(name="rotated")
        url = f"{rotated.base_url}/qps/rest/3.0/get/am/awsassetdataconnector/{seeded.id}"
        headers = {"X-Requested-With": "test"}

        rotated.set_password("api", "new-pass")

        old = requests.get(url, auth=("api", "old-pass"), headers=headers, timeout=TIMEOUT)
        new = requests.get(url, auth=("api", "new-pass"), headers=headers, timeout=TIMEOUT)
        assert (old.status_code, new.status_code) == (401, 200)
        with pytest.raises(ValueError, match="no user"):
            rotated.set_password("nobody", "x")


def test_answers_go_out_without_waiting_for_the_clients_delayed_ack(sim: QualysSimulator) -> None:
    # Headers and body are two writes; with Nagle's algorithm the body would wait for the
    # client's delayed ACK (about 40 ms a call on loopback), which the bench would count
    # against the provider.
    with requests.Session() as session:
        path = "/qps/rest/3.0/count/am/awsassetdataconnector"
        assert session.post(sim.base_url + path, auth=AUTH, timeout=TIMEOUT).ok
        server = sim._running()
        with server._open_lock:
            sockets = list(server._open)
        assert sockets, "the keep-alive connection should still be open"
        for connection in sockets:
            assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_burst_of_connections_is_accepted_as_a_real_server_would(sim: QualysSimulator) -> None:
    # Two hundred cold containers connect at once in an organisation's rollout; a listen
    # backlog of 5 (socketserver's default) drops their SYNs into second-long retries.
    host, port = sim.base_url.removeprefix("http://").rsplit(":", 1)
    count = 150
    release = threading.Barrier(count)

    def connect() -> None:
        release.wait()
        with socket.create_connection((host, int(port)), timeout=0.8):
            pass

    with ThreadPoolExecutor(count) as pool:
        results = [pool.submit(connect) for _ in range(count)]
    failures = [f.exception() for f in results if f.exception() is not None]
    assert failures == []
