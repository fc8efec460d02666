"""The Qualys client against the Qualys simulator: operations, errors, retries, limits, time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
import requests

from conftest import PASSWORD, USERNAME
from provider.deadline import Deadline
from provider.qualys import ApiVersion, Connector, ConnectorChanges, Criterion, Operator
from provider.qualys.auth import StaticCredentials
from provider.qualys.client import QualysClient, RetryPolicy
from provider.qualys.errors import (
    QualysAuthenticationError,
    QualysError,
    QualysForbiddenError,
    QualysInvalidRequestError,
    QualysNotFoundError,
    QualysResponseError,
    QualysThrottledError,
    QualysTimeoutError,
    QualysUnavailableError,
)
from sandbox.qualys import Fault, QualysSimulator, RecordedRequest, SimConnector

ROLE = "arn:aws:iam::123456789012:role/qualys-connector-QualysRole"
SPECIAL_NAME = 'ACME & <Sons> "prod" ü'
NEVER = Deadline.never()
ATTEMPTS = 3
FAST = RetryPolicy(
    attempts=ATTEMPTS, backoff_base=0.05, backoff_cap=0.2, throttle_base=0.05, throttle_cap=0.2
)
"""Short backoff: where waiting is not the point, tests must not wait."""
UNKNOWN_ID = 999_999

ClientFactory = Callable[..., QualysClient]


# --- helpers -------------------------------------------------------------------------------


class RecordingSleep:
    """Sleeps for real and remembers each wait, so tests can check what the client chose."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture(params=[ApiVersion.V2, ApiVersion.V3], ids=lambda v: f"v{v.value}")
def version(request: pytest.FixtureRequest) -> ApiVersion:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Builds clients for a simulator or URL (fast retry policy by default); closes them all."""
    made: list[QualysClient] = []

    def make(
        target: QualysSimulator | str,
        *,
        version: ApiVersion = ApiVersion.V3,
        username: str = USERNAME,
        password: str = PASSWORD,
        retry: RetryPolicy = FAST,
        **options: Any,
    ) -> QualysClient:
        base_url = target if isinstance(target, str) else target.base_url
        client = QualysClient(
            base_url=base_url,
            credentials=StaticCredentials(username, password),
            api_version=version,
            retry=retry,
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(
    qualys: QualysSimulator, make_client: ClientFactory, version: ApiVersion
) -> QualysClient:
    """A client of the conftest simulator, once per API version."""
    return make_client(qualys, version=version)


def calls(sim: QualysSimulator, operation: str) -> list[RecordedRequest]:
    return [r for r in sim.requests if r.operation == operation]


def stored(sim: QualysSimulator, connector_id: int) -> SimConnector:
    connector = sim.connector(connector_id)
    assert connector is not None, f"connector {connector_id} is not in the simulator"
    return connector


def free_port_url() -> str:
    """An http URL on loopback where nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


FULL = ConnectorChanges(
    name=SPECIAL_NAME,
    description="Production account, managed by CloudFormation",
    arn=ROLE,
    external_id="ext-0123456789abcdef",
    all_regions=False,
    regions=("eu-west-1", "us-east-1"),
    disabled=False,
    activation_modules=("VM", "PC"),
    default_tag_ids=(11, 12),
    run_frequency=360,
)


# --- operations on both API versions -------------------------------------------------------


def test_create_sends_every_field_and_qualys_stores_them(
    client: QualysClient, qualys: QualysSimulator, version: ApiVersion
) -> None:
    created = client.create(FULL, deadline=NEVER)

    sim = stored(qualys, created.id)
    on_v3 = version is ApiVersion.V3
    assert (sim.name, sim.description, sim.arn, sim.external_id) == (
        SPECIAL_NAME,
        FULL.description,
        ROLE,
        FULL.external_id,
    )
    assert (sim.all_regions, sim.regions) == (False, ("eu-west-1", "us-east-1"))
    assert sim.disabled is False
    assert sim.activation_modules == ("VM", "PC")
    assert sim.default_tag_ids == (11, 12)
    assert sim.run_frequency == (360 if on_v3 else 240), "runFrequency exists only on 3.0"
    assert (b"<runFrequency>" in calls(qualys, "create")[0].body) is on_v3
    assert sim.aws_account_id == "123456789012"

    assert created.name == SPECIAL_NAME
    assert created.regions == ("eu-west-1", "us-east-1")
    assert created.activation_modules == ("VM", "PC")
    assert created.default_tag_ids == (11, 12)
    assert created.run_frequency == (360 if on_v3 else None)
    assert created.state == "QUEUED"
    assert created.qualys_aws_account_id == sim.qualys_aws_account_id


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            ConnectorChanges(name="all", arn=ROLE, all_regions=True, regions=("eu-west-1",)),
            (True, (), False, "QUEUED"),
            id="all-regions-ignores-explicit-regions",
        ),
        pytest.param(
            ConnectorChanges(name="some", arn=ROLE, all_regions=False, regions=("ap-south-1",)),
            (False, ("ap-south-1",), False, "QUEUED"),
            id="explicit-regions",
        ),
        pytest.param(
            ConnectorChanges(name="off", arn=ROLE, disabled=True),
            (True, (), True, "DISABLED"),
            id="disabled",
        ),
    ],
)
def test_create_stores_regions_and_disabled_as_asked(
    client: QualysClient,
    qualys: QualysSimulator,
    changes: ConnectorChanges,
    expected: tuple[bool, tuple[str, ...], bool, str],
) -> None:
    all_regions, regions, disabled, state = expected
    created = client.create(changes, deadline=NEVER)

    sim = stored(qualys, created.id)
    assert (sim.all_regions, sim.regions, sim.disabled) == (all_regions, regions, disabled)
    assert sim.connector_state == state
    assert (created.all_regions, created.disabled, created.state) == (all_regions, disabled, state)


def test_get_returns_the_connector_as_qualys_stores_it(
    client: QualysClient, qualys: QualysSimulator, version: ApiVersion
) -> None:
    seeded = qualys.seed(
        name=SPECIAL_NAME,
        description="seeded",
        arn=ROLE,
        external_id="ext-seeded",
        all_regions=False,
        regions=("eu-central-1",),
        disabled=True,
        activation_modules=("VM",),
        default_tag_ids=(7,),
        run_frequency=720,
        last_error="Role cannot be assumed",
    )

    got = client.get(seeded.id, deadline=NEVER)

    assert got == Connector(
        id=seeded.id,
        name=SPECIAL_NAME,
        description="seeded",
        arn=ROLE,
        external_id="ext-seeded",
        aws_account_id="123456789012",
        qualys_aws_account_id=seeded.qualys_aws_account_id,
        all_regions=False,
        regions=("eu-central-1",),
        disabled=True,
        activation_modules=("VM",),
        default_tag_ids=(7,),
        run_frequency=720 if version is ApiVersion.V3 else None,
        applications=("AI",) if version is ApiVersion.V3 else (),
        gov_cloud=False,
        china=False,
        state="DISABLED",
        last_error="Role cannot be assumed",
        is_deleted=False,
    )


def test_update_changes_only_the_given_fields(
    client: QualysClient, qualys: QualysSimulator
) -> None:
    created = client.create(FULL, deadline=NEVER)
    before = stored(qualys, created.id)

    client.update(
        created.id,
        ConnectorChanges(description="new description", activation_modules=("CLOUDVIEW",)),
        deadline=NEVER,
    )

    expected = replace(before, description="new description", activation_modules=("CLOUDVIEW",))
    assert stored(qualys, created.id) == expected


def test_update_replaces_regions_and_tags(client: QualysClient, qualys: QualysSimulator) -> None:
    created = client.create(FULL, deadline=NEVER)

    client.update(
        created.id,
        ConnectorChanges(all_regions=False, regions=("ap-south-1",), default_tag_ids=(99,)),
        deadline=NEVER,
    )

    sim = stored(qualys, created.id)
    assert (sim.regions, sim.default_tag_ids) == (("ap-south-1",), (99,))
    assert client.get(created.id, deadline=NEVER).regions == ("ap-south-1",)


@pytest.mark.parametrize(
    ("api_version", "run_frequency"), [(ApiVersion.V2, 240), (ApiVersion.V3, 1440)]
)
def test_update_sends_run_frequency_only_on_3_0(
    qualys: QualysSimulator,
    make_client: ClientFactory,
    api_version: ApiVersion,
    run_frequency: int,
) -> None:
    client = make_client(qualys, version=api_version)
    seeded = qualys.seed(name="frequency", arn=ROLE, run_frequency=240)

    client.update(seeded.id, ConnectorChanges(run_frequency=1440), deadline=NEVER)

    assert stored(qualys, seeded.id).run_frequency == run_frequency


def test_delete_removes_one_connector_and_a_second_delete_is_not_found(
    client: QualysClient, qualys: QualysSimulator
) -> None:
    doomed = qualys.seed(name="doomed")
    kept = qualys.seed(name="kept")

    client.delete(doomed.id, deadline=NEVER)

    assert [c.id for c in qualys.connectors()] == [kept.id]
    with pytest.raises(QualysNotFoundError):
        client.delete(doomed.id, deadline=NEVER)


def test_run_queues_an_enabled_connector(client: QualysClient, qualys: QualysSimulator) -> None:
    seeded = qualys.seed(name="runner", arn=ROLE, connector_state="FINISHED_SUCCESS")

    client.run(seeded.id, deadline=NEVER)

    assert stored(qualys, seeded.id).connector_state in {"QUEUED", "PROCESSING"}, "syncing"
    assert calls(qualys, "run")[0].connector_id == seeded.id


def test_run_on_a_disabled_connector_is_refused_with_qualys_reason(
    client: QualysClient, qualys: QualysSimulator
) -> None:
    seeded = qualys.seed(name="sleeper", arn=ROLE, disabled=True)

    with pytest.raises(QualysInvalidRequestError) as caught:
        client.run(seeded.id, deadline=NEVER)

    assert caught.value.response_code == "INVALID_REQUEST"
    assert caught.value.error_message is not None
    assert "disabled" in caught.value.error_message
    assert "disabled" in str(caught.value)
    assert stored(qualys, seeded.id).connector_state == "DISABLED"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.get(UNKNOWN_ID, deadline=NEVER), id="get"),
        pytest.param(
            lambda c: c.update(UNKNOWN_ID, ConnectorChanges(name="x"), deadline=NEVER),
            id="update",
        ),
        pytest.param(lambda c: c.delete(UNKNOWN_ID, deadline=NEVER), id="delete"),
        pytest.param(lambda c: c.run(UNKNOWN_ID, deadline=NEVER), id="run"),
    ],
)
def test_unknown_connector_id_is_not_found(
    client: QualysClient, qualys: QualysSimulator, call: Callable[[QualysClient], object]
) -> None:
    with pytest.raises(QualysNotFoundError) as caught:
        call(client)

    assert caught.value.response_code == "OBJECT_NOT_FOUND"
    assert str(UNKNOWN_ID) in (caught.value.error_message or "")
    assert len(qualys.requests) == 1, "a definite answer is not retried"


# --- search --------------------------------------------------------------------------------

SEARCH_SEED: dict[str, dict[str, Any]] = {
    "special": {"id": 101, "name": SPECIAL_NAME, "external_id": "ext-special"},
    "almost": {"id": 102, "name": 'ACME & <Sons> "prod"', "disabled": True},
    "plain": {"id": 103, "name": "plain", "external_id": "ext-plain"},
}


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        pytest.param([Criterion.equals("name", SPECIAL_NAME)], ["special"], id="name-equals"),
        pytest.param(
            [Criterion("name", Operator.CONTAINS, "ACME & <Sons>")],
            ["special", "almost"],
            id="name-contains",
        ),
        pytest.param(
            [Criterion("name", Operator.NOT_EQUALS, SPECIAL_NAME)],
            ["almost", "plain"],
            id="name-not-equals",
        ),
        pytest.param([Criterion.equals("disabled", "true")], ["almost"], id="disabled"),
        pytest.param([Criterion.equals("externalId", "ext-plain")], ["plain"], id="external-id"),
        pytest.param([Criterion("id", Operator.IN, "101,103")], ["special", "plain"], id="id-in"),
        pytest.param(
            [
                Criterion("name", Operator.CONTAINS, "ACME"),
                Criterion.equals("disabled", "false"),
            ],
            ["special"],
            id="criteria-are-anded",
        ),
        pytest.param([Criterion.equals("name", "nobody")], [], id="no-match"),
        pytest.param([], ["special", "almost", "plain"], id="no-filter"),
    ],
)
def test_search_applies_the_filters(
    client: QualysClient,
    qualys: QualysSimulator,
    criteria: list[Criterion],
    expected: list[str],
) -> None:
    for fields in SEARCH_SEED.values():
        qualys.seed(**fields)

    found = client.search(criteria, deadline=NEVER)

    assert [c.id for c in found] == [SEARCH_SEED[key]["id"] for key in expected]


def test_search_equals_finds_a_name_with_xml_specials_and_non_ascii_exactly(
    client: QualysClient, qualys: QualysSimulator
) -> None:
    created = client.create(ConnectorChanges(name=SPECIAL_NAME, arn=ROLE), deadline=NEVER)
    client.create(ConnectorChanges(name=SPECIAL_NAME.upper(), arn=ROLE), deadline=NEVER)

    found = client.search([Criterion.equals("name", SPECIAL_NAME)], deadline=NEVER)

    assert [(c.id, c.name) for c in found] == [(created.id, SPECIAL_NAME)]


@pytest.mark.parametrize(
    ("matching", "page_size", "pages"),
    [
        pytest.param(25, 10, 3, id="25-by-10"),
        pytest.param(20, 10, 2, id="exact-multiple"),
        pytest.param(9, 10, 1, id="one-short-page"),
        pytest.param(0, 10, 1, id="none"),
        pytest.param(3, 1, 3, id="one-per-page"),
    ],
)
def test_search_follows_every_page_without_missing_or_repeating_a_connector(
    client: QualysClient, qualys: QualysSimulator, matching: int, page_size: int, pages: int
) -> None:
    expected = []
    for index in range(matching):
        expected.append(qualys.seed(name=f"page-{index:02d}").id)
        qualys.seed(name=f"other-{index:02d}")  # interleaved ids that the filter skips

    found = client.search(
        [Criterion("name", Operator.CONTAINS, "page-")], deadline=NEVER, page_size=page_size
    )

    assert [c.id for c in found] == expected
    assert len(calls(qualys, "search")) == pages


# --- what goes over the wire ---------------------------------------------------------------


def test_requests_carry_basic_auth_and_the_documented_headers(
    client: QualysClient, qualys: QualysSimulator, version: ApiVersion
) -> None:
    created = client.create(ConnectorChanges(name="headers", arn=ROLE), deadline=NEVER)
    client.get(created.id, deadline=NEVER)
    client.search([Criterion.equals("name", "headers")], deadline=NEVER)
    client.update(created.id, ConnectorChanges(description="d"), deadline=NEVER)
    client.run(created.id, deadline=NEVER)
    client.delete(created.id, deadline=NEVER)

    recorded = qualys.requests
    assert [r.operation for r in recorded] == ["create", "get", "search", "update", "run", "delete"]
    for request in recorded:
        what = f"{request.operation} request"
        assert request.username == USERNAME, f"{what} lacks valid Basic credentials"
        assert "Authorization" in request.headers, what
        assert request.headers.get("X-Requested-With"), what
        assert request.headers.get("Content-Type") == "text/xml", what
        assert request.api_version == version.value, what
        assert request.method == ("GET" if request.operation == "get" else "POST"), what
        assert request.status == 200, what


def test_client_forces_tls_verification_on_its_session(qualys: QualysSimulator) -> None:
    session = requests.Session()
    session.verify = False

    client = QualysClient(
        base_url=qualys.base_url, credentials=StaticCredentials(USERNAME, PASSWORD), session=session
    )
    try:
        assert session.verify is True
        client.get(qualys.seed(name="tls").id, deadline=NEVER)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        pytest.param("https://qualysapi.qg2.apps.qualys.eu", True, id="https"),
        pytest.param("http://127.0.0.1:8080", True, id="http-loopback"),
        pytest.param("http://localhost:8080/", True, id="http-localhost"),
        pytest.param("http://qualysapi.qualys.com", False, id="http-remote"),
        pytest.param("http://10.0.0.1:8080", False, id="http-private-address"),
        pytest.param("ftp://qualysapi.qualys.com", False, id="other-scheme"),
        pytest.param("https://user:secret@qualysapi.qualys.com", False, id="credentials-in-url"),
    ],
)
def test_construction_refuses_plain_http_to_a_remote_host(url: str, accepted: bool) -> None:
    if accepted:
        QualysClient(base_url=url, credentials=StaticCredentials(USERNAME, PASSWORD)).close()
    else:
        with pytest.raises(ValueError, match="QUALYS_API_URL"):
            QualysClient(base_url=url, credentials=StaticCredentials(USERNAME, PASSWORD))


# --- authentication and authorization ------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param(USERNAME, "wrong-password", id="wrong-password"),
        pytest.param("somebody-else", PASSWORD, id="unknown-user"),
        pytest.param("", "", id="empty-credentials"),
    ],
)
def test_rejected_credentials_are_an_authentication_error(
    qualys: QualysSimulator,
    make_client: ClientFactory,
    version: ApiVersion,
    username: str,
    password: str,
) -> None:
    client = make_client(qualys, version=version, username=username, password=password)

    with pytest.raises(QualysAuthenticationError) as caught:
        client.get(qualys.seed(name="secret").id, deadline=NEVER)

    assert caught.value.status == 401
    assert PASSWORD not in str(caught.value)
    (request,) = qualys.requests  # not retried
    # The client always sends a Basic header, so Qualys's AUTH_CREDENTIALS_NEEDED (no header
    # at all) cannot be reached through it; the fault matrix below covers that code.
    assert "Authorization" in request.headers


def test_user_without_api_access_is_forbidden(make_client: ClientFactory) -> None:
    with QualysSimulator(users={USERNAME: PASSWORD}, unauthorized_users=[USERNAME]) as sim:
        client = make_client(sim)
        with pytest.raises(QualysForbiddenError) as caught:
            client.create(ConnectorChanges(name="nope"), deadline=NEVER)

        assert caught.value.response_code == "UNAUTHORIZED"
        assert sim.connectors() == []
        assert len(sim.requests) == 1


def test_client_shows_no_password(qualys: QualysSimulator, make_client: ClientFactory) -> None:
    client = make_client(qualys)
    assert PASSWORD not in repr(client)


# --- invalid requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            ConnectorChanges(name="r", all_regions=False, regions=("moon-1",)),
            "regionCode 'moon-1'",
            id="bad-region",
        ),
        pytest.param(
            ConnectorChanges(name="f", run_frequency=10), "runFrequency", id="run-frequency-10"
        ),
        pytest.param(ConnectorChanges(name="a", arn="not-an-arn"), "arn must be", id="bad-arn"),
        pytest.param(ConnectorChanges(name="e", external_id="x"), "externalId", id="external-id"),
        pytest.param(
            ConnectorChanges(name="m", activation_modules=("FOO",)), "ActivationModule", id="module"
        ),
        pytest.param(ConnectorChanges(name="n" * 256), "name must be", id="long-name"),
    ],
)
def test_invalid_field_is_refused_with_qualys_error_message(
    qualys: QualysSimulator, make_client: ClientFactory, changes: ConnectorChanges, message: str
) -> None:
    client = make_client(qualys, version=ApiVersion.V3)

    with pytest.raises(QualysInvalidRequestError) as caught:
        client.create(changes, deadline=NEVER)

    assert caught.value.response_code == "INVALID_REQUEST"
    assert message in (caught.value.error_message or "")
    assert message in str(caught.value), "the reason names Qualys's own message"
    assert qualys.connectors() == []
    assert len(qualys.requests) == 1


# --- failures: how each maps, which are retried --------------------------------------------

ERROR_MATRIX = [
    # id, fault, error class (exact), transient (retried on reads)
    ("http-400", Fault.http(400), QualysInvalidRequestError, False),
    ("http-401", Fault.http(401), QualysAuthenticationError, False),
    ("http-403", Fault.http(403), QualysForbiddenError, False),
    ("http-404", Fault.http(404), QualysError, False),
    ("http-500", Fault.http(500), QualysUnavailableError, True),
    ("http-503", Fault.http(503), QualysUnavailableError, True),
    ("html-502", Fault.html(502), QualysUnavailableError, True),
    ("html-200", Fault.html(200), QualysResponseError, True),
    ("malformed", Fault.malformed(), QualysResponseError, True),
    ("truncated", Fault.truncated(), QualysResponseError, True),
    ("OBJECT_NOT_FOUND", Fault.response_code("OBJECT_NOT_FOUND"), QualysNotFoundError, False),
    ("INVALID_REQUEST", Fault.response_code("INVALID_REQUEST"), QualysInvalidRequestError, False),
    (
        "AUTH_CREDENTIALS_NEEDED",
        Fault.response_code("AUTH_CREDENTIALS_NEEDED"),
        QualysAuthenticationError,
        False,
    ),
    ("UNAUTHORIZED", Fault.response_code("UNAUTHORIZED"), QualysForbiddenError, False),
    (
        "INSUFFICIENT_PERMISSION",
        Fault.response_code("INSUFFICIENT_PERMISSION"),
        QualysForbiddenError,
        False,
    ),
    ("OTHER_ERROR", Fault.response_code("OTHER_ERROR"), QualysUnavailableError, True),
    ("unknown-code", Fault.response_code("BRAND_NEW_CODE"), QualysError, False),
    ("dropped", Fault.drop(), QualysUnavailableError, True),
]


@pytest.mark.parametrize(
    ("fault", "error", "transient"),
    [pytest.param(f, e, t, id=name) for name, f, e, t in ERROR_MATRIX],
)
def test_get_maps_each_failure_to_its_error_and_retries_only_transient_ones(
    qualys: QualysSimulator,
    make_client: ClientFactory,
    fault: Fault,
    error: type[QualysError],
    transient: bool,
) -> None:
    client = make_client(qualys)
    seeded = qualys.seed(name="target")
    qualys.inject("get", fault, times=10)

    with pytest.raises(QualysError) as caught:
        client.get(seeded.id, deadline=NEVER)

    assert type(caught.value) is error
    assert len(calls(qualys, "get")) == (ATTEMPTS if transient else 1)
    if fault.code:
        assert caught.value.response_code == fault.code
        assert caught.value.error_message == fault.message


READ_RECOVERABLE = [
    pytest.param(Fault.http(503), id="http-503"),
    pytest.param(Fault.html(502), id="html-502"),
    pytest.param(Fault.response_code("OTHER_ERROR"), id="OTHER_ERROR"),
    pytest.param(Fault.malformed(), id="malformed"),
    pytest.param(Fault.truncated(), id="truncated"),
    pytest.param(Fault.drop(), id="dropped"),
]


@pytest.mark.parametrize("fault", READ_RECOVERABLE)
@pytest.mark.parametrize("operation", ["get", "search"])
def test_reads_succeed_after_transient_failures_within_the_attempts(
    qualys: QualysSimulator, make_client: ClientFactory, operation: str, fault: Fault
) -> None:
    sleep = RecordingSleep()
    client = make_client(qualys, sleep=sleep)
    seeded = qualys.seed(name="survivor")
    qualys.inject(operation, fault, times=ATTEMPTS - 1)

    if operation == "get":
        assert client.get(seeded.id, deadline=NEVER).name == "survivor"
    else:
        assert [c.id for c in client.search([], deadline=NEVER)] == [seeded.id]

    assert [r.status for r in calls(qualys, operation)][-1] == 200
    assert len(calls(qualys, operation)) == ATTEMPTS
    assert len(sleep.waits) == ATTEMPTS - 1
    assert all(0 < wait <= FAST.backoff_cap for wait in sleep.waits)


WRITE_UNKNOWN_OUTCOME = [
    pytest.param(Fault.http(503), QualysUnavailableError, id="http-503"),
    pytest.param(Fault.html(502), QualysUnavailableError, id="html-502"),
    pytest.param(Fault.response_code("OTHER_ERROR"), QualysUnavailableError, id="OTHER_ERROR"),
    pytest.param(Fault.malformed(), QualysResponseError, id="malformed"),
    pytest.param(Fault.truncated(), QualysResponseError, id="truncated"),
    pytest.param(Fault.html(200), QualysResponseError, id="html-200"),
    pytest.param(Fault.drop(), QualysUnavailableError, id="dropped"),
]
WRITES: dict[str, Callable[[QualysClient, int], object]] = {
    "create": lambda c, _: c.create(ConnectorChanges(name="once", arn=ROLE), deadline=NEVER),
    "delete": lambda c, connector_id: c.delete(connector_id, deadline=NEVER),
    "run": lambda c, connector_id: c.run(connector_id, deadline=NEVER),
}


@pytest.mark.parametrize(("fault", "error"), WRITE_UNKNOWN_OUTCOME)
@pytest.mark.parametrize("operation", list(WRITES))
def test_writes_are_not_resent_after_a_failure_of_unknown_outcome(
    qualys: QualysSimulator,
    make_client: ClientFactory,
    operation: str,
    fault: Fault,
    error: type[QualysError],
) -> None:
    client = make_client(qualys)
    seeded = qualys.seed(name="existing", arn=ROLE)
    qualys.inject(operation, fault, times=10)

    with pytest.raises(QualysError) as caught:
        WRITES[operation](client, seeded.id)

    assert type(caught.value) is error
    assert len(calls(qualys, operation)) == 1


def test_update_is_retried_because_setting_fields_is_idempotent(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys)
    seeded = qualys.seed(name="before", arn=ROLE)
    qualys.inject("update", Fault.drop(process=True))
    qualys.inject("update", Fault.http(503))

    client.update(seeded.id, ConnectorChanges(name="after"), deadline=NEVER)

    assert [r.status for r in calls(qualys, "update")] == [0, 503, 200]
    assert stored(qualys, seeded.id).name == "after"


def test_create_dropped_after_qualys_carried_it_out_is_not_resent(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys)
    qualys.inject("create", Fault.drop(process=True))
    changes = ConnectorChanges(name="made-once", arn=ROLE)

    with pytest.raises(QualysUnavailableError):
        client.create(changes, deadline=NEVER)

    assert len(calls(qualys, "create")) == 1
    (made,) = qualys.connectors()
    # What the caller must do next: look the connector up instead of creating it again.
    found = client.search([Criterion.equals("name", "made-once")], deadline=NEVER)
    assert [c.id for c in found] == [made.id]


CALLS: dict[str, Callable[[QualysClient], object]] = {
    "get": lambda c: c.get(1, deadline=NEVER),
    "create": lambda c: c.create(ConnectorChanges(name="nowhere"), deadline=NEVER),
}


@pytest.mark.parametrize("operation", list(CALLS))
def test_refused_connection_is_unavailable_and_retried_as_nothing_was_sent(
    make_client: ClientFactory, operation: str
) -> None:
    with QualysSimulator(users={USERNAME: PASSWORD}) as sim:
        url = sim.base_url
    sleep = RecordingSleep()
    client = make_client(url, sleep=sleep)
    started = time.monotonic()

    with pytest.raises(QualysUnavailableError) as caught:
        CALLS[operation](client)

    assert type(caught.value) is QualysUnavailableError
    assert len(sleep.waits) == ATTEMPTS - 1, "a refused connection is safe to try again"
    assert time.monotonic() - started < 3.0


def test_unused_port_is_unavailable(make_client: ClientFactory) -> None:
    client = make_client(free_port_url())

    with pytest.raises(QualysUnavailableError, match="could not be reached"):
        client.search([], deadline=NEVER)


def test_wrong_api_path_is_a_qualys_error_naming_the_url_setting(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys.base_url + "/not-qualys")

    with pytest.raises(QualysError, match="QUALYS_API_URL") as caught:
        client.get(1, deadline=NEVER)

    assert caught.value.status == 404
    assert len(qualys.requests) == 1


# --- throttling ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "window"), [pytest.param(409, 2.0, id="409"), pytest.param(429, 1.0, id="429")]
)
def test_rate_limit_waits_the_hinted_time_then_succeeds(
    make_client: ClientFactory, status: int, window: float
) -> None:
    with QualysSimulator(
        users={USERNAME: PASSWORD},
        rate_limit=2,
        rate_window=window,
        throttle_status=status,
        limit_headers=True,
    ) as sim:
        sleep = RecordingSleep()
        client = make_client(sim, sleep=sleep)
        seeded = sim.seed(name="limited")
        client.get(seeded.id, deadline=NEVER)
        client.get(seeded.id, deadline=NEVER)

        started = time.monotonic()
        assert client.get(seeded.id, deadline=NEVER).id == seeded.id
        elapsed = time.monotonic() - started

        assert [r.status for r in sim.requests] == [200, 200, status, 200]
        assert sleep.waits == [window], "the client waits exactly what Qualys hinted"
        assert window - 0.2 <= elapsed <= window + 1.0


def test_429_retry_after_is_honoured_when_to_wait_says_zero(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    # A 429 from a gateway in front of Qualys: Retry-After says 1 s; the rate-limit headers
    # of the admitted call (X-RateLimit-ToWait-Sec: 0) are still on the answer.
    sleep = RecordingSleep()
    client = make_client(qualys, sleep=sleep)
    seeded = qualys.seed(name="gateway")
    qualys.inject("get", Fault.http(429, headers={"Retry-After": "1"}))

    started = time.monotonic()
    client.get(seeded.id, deadline=NEVER)

    assert sleep.waits == [1.0]
    assert time.monotonic() - started >= 0.9


def test_first_blocked_answer_without_to_wait_backs_off_then_waits_the_hint(
    make_client: ClientFactory,
) -> None:
    with QualysSimulator(
        users={USERNAME: PASSWORD},
        rate_limit=1,
        rate_window=1,
        omit_first_to_wait=True,
        limit_headers=True,
    ) as sim:
        sleep = RecordingSleep()
        client = make_client(sim, sleep=sleep)
        seeded = sim.seed(name="limited")
        client.get(seeded.id, deadline=NEVER)

        assert client.get(seeded.id, deadline=NEVER).id == seeded.id

        assert [r.status for r in sim.requests][-1] == 200
        assert 409 in [r.status for r in sim.requests]
        assert sleep.waits[0] <= FAST.throttle_cap, "no hint: a short backoff"
        assert sleep.waits[-1] == 1.0, "then the hint of the next blocked answer"
        assert sum(sleep.waits) <= 2.0


def test_concurrency_limit_is_waited_out_by_both_callers(make_client: ClientFactory) -> None:
    with QualysSimulator(users={USERNAME: PASSWORD}, concurrency_limit=1, latency=0.5) as sim:
        seeded = sim.seed(name="busy")
        clients = [make_client(sim), make_client(sim)]
        start = threading.Barrier(2, timeout=5)

        def get(client: QualysClient) -> int:
            start.wait()
            return client.get(seeded.id, deadline=Deadline.after(20)).id

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(get, clients, timeout=20))

        assert results == [seeded.id, seeded.id]
        statuses = [r.status for r in sim.requests]
        assert statuses.count(200) == 2
        assert 409 in statuses, "the second caller met the concurrency limit"


def test_throttle_wait_past_the_deadline_fails_promptly(make_client: ClientFactory) -> None:
    with QualysSimulator(
        users={USERNAME: PASSWORD}, rate_limit=1, rate_window=30, limit_headers=True
    ) as sim:
        sleep = RecordingSleep()
        client = make_client(sim, sleep=sleep)
        seeded = sim.seed(name="limited")
        client.get(seeded.id, deadline=NEVER)

        started = time.monotonic()
        with pytest.raises(QualysThrottledError) as caught:
            client.get(seeded.id, deadline=Deadline.after(5))

        assert time.monotonic() - started < 1.0, "no wait that the deadline cannot afford"
        assert caught.value.status == 409
        assert sleep.waits == []


def test_a_rate_window_wait_longer_than_the_time_left_says_how_long_qualys_asked(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys)
    seeded = qualys.seed(name="limited")
    qualys.inject("get", Fault.http(409, headers={"X-RateLimit-ToWait-Sec": "1800"}))

    with pytest.raises(QualysThrottledError, match="asked to wait 1800s"):
        client.get(seeded.id, deadline=Deadline.after(60))

    assert len(calls(qualys, "get")) == 1, "no second try that the wait cannot allow"


def test_throttled_create_is_resent_as_qualys_did_not_carry_it_out(
    make_client: ClientFactory,
) -> None:
    with QualysSimulator(
        users={USERNAME: PASSWORD}, rate_limit=1, rate_window=1, limit_headers=True
    ) as sim:
        client = make_client(sim)
        first = client.create(ConnectorChanges(name="first", arn=ROLE), deadline=NEVER)
        second = client.create(ConnectorChanges(name="second", arn=ROLE), deadline=NEVER)

        assert [r.status for r in calls(sim, "create")] == [200, 409, 200]
        assert [c.id for c in sim.connectors()] == [first.id, second.id]


@pytest.mark.parametrize(
    ("operation", "carried_out"),
    [
        pytest.param("create", lambda sim, _: len(sim.connectors()) == 2, id="create"),
        pytest.param("delete", lambda sim, _: sim.connectors() == [], id="delete"),
        pytest.param(
            "run",
            lambda sim, i: stored(sim, i).connector_state in {"QUEUED", "PROCESSING"},
            id="run",
        ),
        pytest.param(
            "update", lambda sim, i: stored(sim, i).description == "throttled", id="update"
        ),
    ],
)
def test_every_throttled_write_is_resent_and_carried_out_once(
    qualys: QualysSimulator,
    make_client: ClientFactory,
    operation: str,
    carried_out: Callable[[QualysSimulator, int], bool],
) -> None:
    client = make_client(qualys)
    seeded = qualys.seed(name="existing", arn=ROLE, connector_state="FINISHED_SUCCESS")
    qualys.inject(operation, Fault.http(409))

    if operation == "update":
        client.update(seeded.id, ConnectorChanges(description="throttled"), deadline=NEVER)
    else:
        WRITES[operation](client, seeded.id)

    assert [r.status for r in calls(qualys, operation)] == [409, 200]
    assert carried_out(qualys, seeded.id), f"{operation} was not carried out"


def test_limit_exceeded_response_code_is_waited_out(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys)
    qualys.inject("create", Fault.response_code("LIMIT_EXCEEDED"))

    created = client.create(ConnectorChanges(name="patient", arn=ROLE), deadline=NEVER)

    assert len(calls(qualys, "create")) == 2
    assert [c.id for c in qualys.connectors()] == [created.id]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"X-RateLimit-ToWait-Sec": "0"}, id="to-wait-0"),
    ],
)
def test_blocked_calls_are_tried_again_until_admitted_never_after_a_fixed_count(
    qualys: QualysSimulator, make_client: ClientFactory, headers: dict[str, str]
) -> None:
    sleep = RecordingSleep()
    client = make_client(qualys, sleep=sleep)
    seeded = qualys.seed(name="blocked")
    qualys.inject("get", Fault.http(409, headers=headers), times=12)

    assert client.get(seeded.id, deadline=NEVER).id == seeded.id

    assert len(calls(qualys, "get")) == 13
    assert all(0 < wait <= FAST.throttle_cap for wait in sleep.waits), "backoff, never 0"


def test_a_block_that_outlasts_the_deadline_fails_by_the_deadline(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys)
    seeded = qualys.seed(name="blocked")
    qualys.inject("get", Fault.http(409), times=10_000)

    started = time.monotonic()
    with pytest.raises(QualysThrottledError, match="until the time ran out"):
        client.get(seeded.id, deadline=Deadline.after(3.0))

    assert time.monotonic() - started <= 3.0


# --- read timeouts and deadlines -----------------------------------------------------------


def test_slow_get_is_retried_after_a_read_timeout_and_succeeds(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys, read_timeout=0.5)
    seeded = qualys.seed(name="slow")
    qualys.inject("get", Fault.delay(3))

    started = time.monotonic()
    assert client.get(seeded.id, deadline=NEVER).id == seeded.id

    assert len(calls(qualys, "get")) == 2
    assert time.monotonic() - started < 2.0


def test_get_slow_on_every_attempt_is_a_timeout_error(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys, read_timeout=0.5)
    seeded = qualys.seed(name="slow")
    qualys.inject("get", Fault.delay(3), times=ATTEMPTS)

    started = time.monotonic()
    with pytest.raises(QualysTimeoutError):
        client.get(seeded.id, deadline=NEVER)

    assert len(calls(qualys, "get")) == ATTEMPTS
    assert time.monotonic() - started < ATTEMPTS * 0.5 + 1.5


def test_slow_create_times_out_once_without_resending(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys, read_timeout=0.5)
    qualys.inject("create", Fault.delay(3))

    started = time.monotonic()
    with pytest.raises(QualysTimeoutError, match="did not answer"):
        client.create(ConnectorChanges(name="slow", arn=ROLE), deadline=NEVER)

    assert time.monotonic() - started < 1.5
    assert len(calls(qualys, "create")) == 1
    # The delay happened after Qualys created it: the outcome is unknown to the caller.
    assert [c.name for c in qualys.connectors()] == ["slow"]


def test_deadline_shorter_than_the_read_timeout_caps_the_call(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys, read_timeout=10.0)
    seeded = qualys.seed(name="slow")
    qualys.inject("get", Fault.delay(5), times=10)

    started = time.monotonic()
    with pytest.raises(QualysTimeoutError):
        client.get(seeded.id, deadline=Deadline.after(1.5))

    assert time.monotonic() - started < 2.2, "the HTTP timeout must not outlast the deadline"
    assert len(calls(qualys, "get")) == 1


def test_deadline_too_short_to_start_a_call_sends_nothing(
    qualys: QualysSimulator, make_client: ClientFactory
) -> None:
    client = make_client(qualys)

    with pytest.raises(QualysTimeoutError, match="No time left"):
        client.create(ConnectorChanges(name="late"), deadline=Deadline.after(0.5))

    assert qualys.requests == []
