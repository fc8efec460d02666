"""``Custom::QualysConnector`` decisions, and the routing table, over an in-memory Qualys.

No crhelper, no moto, no HTTP, no sleeping: requests are built directly and sent to
``ConnectorResource`` or ``Lifecycle`` over ``FakeQualys``. The fake numbers connectors
from 1, so the connectors a case seeds are 1, 2, ... and the one Create makes is the next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MethodType
from typing import Final

import pytest
from fakes import QUALYS_ACCOUNT, FakeClock, FakeQualys, Operation, RecordingSleeper

from provider.deadline import Deadline
from provider.errors import (
    ConnectorGoneError,
    OwnershipError,
    PropertyError,
    ProviderError,
    UnsupportedRequestError,
)
from provider.lifecycle import (
    ACTIVATION_TYPE,
    CONNECTOR_TYPE,
    ActivationPolicy,
    ActivationResource,
    ConnectorResource,
    Lifecycle,
    Outcome,
    Request,
)
from provider.markers import marker, owned_by_resource, with_marker
from provider.qualys.errors import (
    QualysError,
    QualysForbiddenError,
    QualysNotFoundError,
    QualysResponseError,
    QualysThrottledError,
    QualysTimeoutError,
    QualysUnavailableError,
)
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges

STACK: Final = (
    "arn:aws:cloudformation:eu-west-1:123456789012:stack/member/"
    "0f9e9f60-cb3a-11ef-9d6c-0a7c5f3e1b2d"
)
RECREATED_STACK: Final = (
    "arn:aws:cloudformation:eu-west-1:123456789012:stack/member/"
    "7a1b2c3d-cb3a-11ef-9d6c-0a7c5f3e1b2d"
)
"""A stack of the same name, deleted and created again: a new StackId."""
GOVCLOUD_STACK: Final = (
    "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/member/"
    "0f9e9f60-cb3a-11ef-9d6c-0a7c5f3e1b2d"
)
CHINA_STACK: Final = (
    "arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/member/"
    "0f9e9f60-cb3a-11ef-9d6c-0a7c5f3e1b2d"
)
GOVCLOUD_QUALYS_ACCOUNT: Final = "123412341234"
LOGICAL: Final = "QualysConnector"
MARK: Final = marker(STACK, LOGICAL)
NAME: Final = "aws-123456789012"
DESCRIPTION: Final = "Member account created by AWS Control Tower"
PROPERTIES: Final = {"ConnectorName": NAME, "Description": DESCRIPTION}
FALLBACK_ACCOUNT: Final = "999988887777"
"""QUALYS_AWS_ACCOUNT_ID as the provider's setting gives it."""
SEEDED_EXTERNAL_ID: Final = "1111111111111111"
ROLE: Final = "arn:aws:iam::123456789012:role/qualys-connector-QualysRole-1A2B3C4D5E6F"
"""A role in the stack's account (123456789012)."""
OTHER_ACCOUNT_ROLE: Final = "arn:aws:iam::210987654321:role/qualys-connector-QualysRole-9Z8Y7X"
CRHELPER_ID: Final = "member_QualysConnector_A1B2C3D4E5"
"""The PhysicalResourceId crhelper makes up when a Create fails without naming one."""
NEVER: Final = Deadline.never()

Setup = Callable[[FakeQualys], object]


def case(name: str, *values: object) -> pytest.ParameterSet:
    """A table row whose first value, and test id, is its readable name."""
    return pytest.param(name, *values, id=name)


def connector_request(
    request_type: str = "Create",
    *,
    physical_id: str | None = None,
    properties: Mapping[str, str] = PROPERTIES,
    stack: str = STACK,
) -> Request:
    return Request(
        request_type=request_type,
        request_id="5b7a3c9e-request",
        stack_id=stack,
        logical_resource_id=LOGICAL,
        resource_type=CONNECTOR_TYPE,
        physical_resource_id=physical_id,
        properties=properties,
    )


def resource(
    fake: FakeQualys, *, fallback: str | None = None, lookup_reserve: float = 15.0
) -> ConnectorResource:
    return ConnectorResource(
        fake, fallback_qualys_account_id=fallback, lookup_reserve=lookup_reserve
    )


# --- what a case seeds in Qualys -----------------------------------------------------


def seed(
    fake: FakeQualys,
    *,
    stack: str = STACK,
    logical: str = LOGICAL,
    name: str = NAME,
    disabled: bool = True,
    external_id: str | None = SEEDED_EXTERNAL_ID,
) -> Connector:
    """A connector carrying the marker of ``logical`` in ``stack``."""
    return fake.add(
        ConnectorChanges(
            name=name,
            description=with_marker(DESCRIPTION, marker(stack, logical)),
            external_id=external_id,
            disabled=disabled,
            arn=None if disabled else ROLE,
        )
    )


def own(fake: FakeQualys) -> Connector:
    """The connector an earlier delivery of this resource's Create made."""
    return seed(fake)


def foreign(fake: FakeQualys, *, arn: str | None = None) -> Connector:
    """A connector of the same name made by hand: no marker."""
    return fake.add(
        ConnectorChanges(
            name=NAME, description="Made in the Qualys UI", external_id="2222222222", arn=arn
        )
    )


def copied(fake: FakeQualys) -> Connector:
    """A connector of the same name whose description quotes this resource's marker."""
    return fake.add(
        ConnectorChanges(name=NAME, description=f"Set up like {MARK} by hand", external_id="22")
    )


def mismatched(fake: FakeQualys) -> None:
    """Qualys answers the next get with a foreign connector, whatever id was asked."""
    fake.answer_next_get(foreign(fake))


def nothing(fake: FakeQualys) -> None:
    """Qualys holds no connector."""


def terse(fake: FakeQualys) -> None:
    """Qualys answers a create with the id and name only."""
    fake.full_create_answer = False


def unreported(fake: FakeQualys) -> None:
    """Qualys does not report qualysAwsAccountId."""
    fake.qualys_aws_account_id = None


def reports(account: str) -> Setup:
    def setup(fake: FakeQualys) -> None:
        fake.qualys_aws_account_id = account

    return setup


def fails(
    operation: Operation, error: QualysError, *, happened: bool = False, after: int = 0
) -> Setup:
    def setup(fake: FakeQualys) -> None:
        fake.fail_next(operation, error, happened=happened, after=after)

    return setup


def both(*setups: Setup) -> Setup:
    def setup(fake: FakeQualys) -> None:
        for step in setups:
            step(fake)

    return setup


def timeout() -> QualysTimeoutError:
    return QualysTimeoutError("Qualys did not answer within 30 s")


def down() -> QualysUnavailableError:
    return QualysUnavailableError("HTTP 503 from Qualys", status=503)


def unreadable() -> QualysResponseError:
    return QualysResponseError("Qualys answered something that is not XML")


def throttles(operation: Operation, *, after: int = 0) -> Setup:
    """Qualys's limits hold the call of ``operation`` past the deadline: not carried out."""

    def setup(fake: FakeQualys) -> None:
        fake.throttle_next(operation, after=after)

    return setup


def gone() -> QualysNotFoundError:
    return QualysNotFoundError("Connector not found", response_code="OBJECT_NOT_FOUND")


# --- Create --------------------------------------------------------------------------


def test_create_when_absent_makes_one_disabled_marked_connector() -> None:
    fake = FakeQualys()

    result = resource(fake).create(connector_request(), NEVER)

    assert fake.calls == [("create", NAME), ("search", f"name EQUALS {NAME}")]
    stored = fake.connectors[1]
    assert stored.disabled is True, "a new connector is created disabled"
    assert stored.arn is None, "the role is set by the activation, not here"
    assert stored.description == with_marker(DESCRIPTION, MARK)
    assert owned_by_resource(stored, STACK, LOGICAL)
    assert (stored.gov_cloud, stored.china) == (None, None), "a commercial (Global) connector"
    assert stored.external_id, "an external ID is generated"
    assert result.outcome is Outcome.CREATED
    assert result.physical_resource_id == "1"
    assert result.data == {
        "ConnectorId": "1",
        "ConnectorName": NAME,
        "ExternalId": stored.external_id,
        "QualysAwsAccountId": QUALYS_ACCOUNT,
    }
    assert (result.connector_name, result.connector_id, result.state) == (NAME, "1", "DISABLED")


def test_create_writes_the_given_external_id() -> None:
    fake = FakeQualys()

    result = resource(fake).create(
        connector_request(properties={**PROPERTIES, "ExternalId": "3333333333333333"}), NEVER
    )

    assert fake.connectors[1].external_id == "3333333333333333"
    assert result.data["ExternalId"] == "3333333333333333"


def test_create_delivered_twice_answers_the_same_and_leaves_one_connector() -> None:
    fake = FakeQualys()
    connectors = resource(fake)

    first = connectors.create(connector_request(), NEVER)
    second = connectors.create(connector_request(), NEVER)

    assert second == first
    assert fake.count("create") == 2, "each delivery creates, then looks"
    assert list(fake.connectors) == [1], "the later delivery removed its own duplicate"


@pytest.mark.parametrize(
    ("case", "setup", "expected_id"),
    [
        case("absent: created", nothing, 1),
        case("own connector found: a second delivery, its new one removed", own, 1),
        case("two own connectors: the oldest is used, the others removed", both(own, own), 1),
        case("foreign connector of the same name: not adopted", foreign, 2),
        case(
            "marker of a recreated stack of the same name: not adopted",
            lambda fake: seed(fake, stack=RECREATED_STACK),
            2,
        ),
        case(
            "marker of another resource of this stack: not adopted",
            lambda fake: seed(fake, logical="OtherConnector"),
            2,
        ),
        case("marker copied into a foreign description: not adopted", copied, 2),
        case(
            "marker of a logical id that extends this one: not adopted",
            lambda fake: seed(fake, logical=f"{LOGICAL}2"),
            2,
        ),
        case(
            "timeout after the create happened: found by look-up, not repeated",
            fails("create", timeout(), happened=True),
            1,
        ),
        case(
            "connection dropped after the create happened: found, not repeated",
            fails("create", down(), happened=True),
            1,
        ),
        case(
            "unreadable answer after the create happened: found, not repeated",
            fails("create", unreadable(), happened=True),
            1,
        ),
        case("terse create answer: the look-up has the rest", terse, 1),
        case("look-up after the create throttled: the new connector", throttles("search"), 1),
        case(
            "look-up after the create forbidden: the new connector",
            fails("search", QualysForbiddenError("UNAUTHORIZED", status=403)),
            1,
        ),
        case("terse answer to a delivery after a foreign one", both(terse, foreign), 2),
    ],
)
def test_create_finds_or_makes_exactly_one_own_connector(
    case: str, setup: Setup, expected_id: int
) -> None:
    fake = FakeQualys()
    setup(fake)
    before = dict(fake.connectors)

    result = resource(fake).create(connector_request(), NEVER)

    assert result.outcome is Outcome.CREATED, case
    assert result.physical_resource_id == str(expected_id), case
    assert fake.count("create") == 1, case
    stored = fake.connectors[expected_id]
    assert stored.external_id, case
    assert result.data == {
        "ConnectorId": str(expected_id),
        "ConnectorName": NAME,
        "ExternalId": stored.external_id,
        "QualysAwsAccountId": QUALYS_ACCOUNT,
    }, case
    own_left = [i for i, c in fake.connectors.items() if owned_by_resource(c, STACK, LOGICAL)]
    assert own_left == [expected_id], f"{case}: exactly one connector of this resource stays"
    others = {i: c for i, c in before.items() if not owned_by_resource(c, STACK, LOGICAL)}
    assert {i: fake.connectors[i] for i in others} == others, (
        f"{case}: other connectors are left as they were"
    )


def test_a_duplicate_that_cannot_be_removed_is_named_in_a_warning() -> None:
    fake = FakeQualys()
    own(fake)
    fake.fail_next("delete", QualysForbiddenError("INSUFFICIENT_PERMISSION", status=200))

    result = resource(fake).create(connector_request(), NEVER)

    assert result.physical_resource_id == "1", "the oldest is still the answer"
    assert result.warning is not None
    assert "Duplicate connector 2" in result.warning
    assert list(fake.connectors) == [1, 2]


@pytest.mark.parametrize(
    ("case", "setup", "fallback", "expected"),
    [
        case("reported, no setting", nothing, None, QUALYS_ACCOUNT),
        case("not reported: the setting", unreported, FALLBACK_ACCOUNT, FALLBACK_ACCOUNT),
        case(
            "not reported, terse create answer: the setting",
            both(unreported, terse),
            FALLBACK_ACCOUNT,
            FALLBACK_ACCOUNT,
        ),
        case(
            "reported and the setting differ: reported wins",
            nothing,
            FALLBACK_ACCOUNT,
            QUALYS_ACCOUNT,
        ),
        case("reported and the setting agree", nothing, QUALYS_ACCOUNT, QUALYS_ACCOUNT),
    ],
)
def test_create_reports_the_account_qualys_assumes_roles_from(
    case: str, setup: Setup, fallback: str | None, expected: str
) -> None:
    fake = FakeQualys()
    setup(fake)

    result = resource(fake, fallback=fallback).create(connector_request(), NEVER)

    assert result.data["QualysAwsAccountId"] == expected, case


@pytest.mark.parametrize(
    ("case", "stack", "written"),
    [
        case("commercial stack: a Global connector", STACK, (None, None)),
        case("GovCloud stack: a GovCloud connector", GOVCLOUD_STACK, (True, None)),
        case("China stack: a China connector", CHINA_STACK, (None, True)),
    ],
)
def test_create_chooses_the_account_type_of_the_stacks_partition(
    case: str, stack: str, written: tuple[bool | None, bool | None]
) -> None:
    fake = FakeQualys(qualys_aws_account_id=GOVCLOUD_QUALYS_ACCOUNT)

    result = resource(fake).create(connector_request(stack=stack), NEVER)

    stored = fake.connectors[1]
    assert (stored.gov_cloud, stored.china) == written, case
    assert result.data["QualysAwsAccountId"] == GOVCLOUD_QUALYS_ACCOUNT, case


@pytest.mark.parametrize(
    ("case", "stack", "reported"),
    [
        case(
            "GovCloud stack, Qualys reports its commercial account", GOVCLOUD_STACK, QUALYS_ACCOUNT
        ),
        case("China stack, Qualys reports its commercial account", CHINA_STACK, QUALYS_ACCOUNT),
        case("GovCloud stack, no account reported, no setting", GOVCLOUD_STACK, None),
    ],
)
def test_create_in_another_partition_refuses_an_account_it_cannot_trust(
    case: str, stack: str, reported: str | None
) -> None:
    fake = FakeQualys(qualys_aws_account_id=reported)

    with pytest.raises(ProviderError) as raised:
        resource(fake).create(connector_request(stack=stack), NEVER)

    assert type(raised.value) is ProviderError, f"{case}: {raised.value!r}"
    assert raised.value.physical_resource_id == "1", case


@pytest.mark.parametrize(
    ("case", "setup", "fallback", "error", "physical_id", "creates", "left"),
    [
        case(
            "timeout, the create did not happen",
            fails("create", timeout()),
            None,
            QualysTimeoutError,
            None,
            1,
            0,
        ),
        case(
            "HTTP 503, the create did not happen",
            fails("create", down()),
            None,
            QualysUnavailableError,
            None,
            1,
            0,
        ),
        case(
            "unreadable answer, the create did not happen",
            fails("create", unreadable()),
            None,
            QualysResponseError,
            None,
            1,
            0,
        ),
        case(
            "timeout after it happened, the look-up fails too: the create's error",
            both(fails("create", timeout(), happened=True), fails("search", down())),
            None,
            QualysTimeoutError,
            None,
            1,
            1,
        ),
        case(
            "timeout after it happened, the look-up throttled: the create's error",
            both(fails("create", timeout(), happened=True), throttles("search")),
            None,
            QualysTimeoutError,
            None,
            1,
            1,
        ),
        case("create throttled", throttles("create"), None, QualysThrottledError, None, 1, 0),
        case(
            "account not reported, no setting",
            unreported,
            None,
            ProviderError,
            "1",
            1,
            1,
        ),
        case(
            "account reported invalid",
            reports("80595016317"),
            None,
            QualysResponseError,
            "1",
            1,
            1,
        ),
        case(
            "account reported invalid, a setting given",
            reports("not-an-account"),
            FALLBACK_ACCOUNT,
            QualysResponseError,
            "1",
            1,
            1,
        ),
        case(
            "second delivery, Qualys reports no externalId",
            lambda fake: seed(fake, external_id=None),
            None,
            QualysResponseError,
            "1",
            1,
            1,
        ),
        case(
            "second delivery, account not reported, no setting",
            both(own, unreported),
            None,
            ProviderError,
            "1",
            1,
            1,
        ),
    ],
)
def test_create_failure_keeps_its_kind_and_names_a_connector_that_exists(  # noqa: PLR0917 - a table row
    case: str,
    setup: Setup,
    fallback: str | None,
    error: type[ProviderError],
    physical_id: str | None,
    creates: int,
    left: int,
) -> None:
    fake = FakeQualys()
    setup(fake)

    with pytest.raises(ProviderError) as raised:
        resource(fake, fallback=fallback).create(connector_request(), NEVER)

    assert type(raised.value) is error, f"{case}: {raised.value!r}"
    assert raised.value.physical_resource_id == physical_id, case
    assert fake.count("create") == creates, case
    assert len(fake.connectors) == left, case


def test_create_keeps_the_look_up_reserve_for_a_create_whose_outcome_is_unknown() -> None:
    clock = FakeClock()

    class SlowCreate(FakeQualys):
        """A create that takes the time left for it, then times out having happened."""

        def create(self, changes: ConnectorChanges, *, deadline: Deadline) -> Connector:
            clock.now += deadline.remaining()
            return super().create(changes, deadline=Deadline.never())

    fake = SlowCreate()
    fake.fail_next("create", timeout(), happened=True)

    result = resource(fake, lookup_reserve=15).create(
        connector_request(), Deadline.after(60, clock=clock)
    )

    assert result.physical_resource_id == "1"
    assert clock.now == 45, "the create may use all but the reserve"
    assert fake.count("search") == 1, "the look-up after it ran in the reserve"


def test_create_with_less_time_than_the_reserve_still_runs_and_keeps_half() -> None:
    clock = FakeClock()
    seen: list[float] = []

    class Timed(FakeQualys):
        def create(self, changes: ConnectorChanges, *, deadline: Deadline) -> Connector:
            seen.append(deadline.remaining())
            return super().create(changes, deadline=deadline)

    fake = Timed()

    result = resource(fake, lookup_reserve=15).create(
        connector_request(), Deadline.after(10, clock=clock)
    )

    assert result.physical_resource_id == "1", "a fast Qualys needs no reserve"
    assert seen == [5.0], "half the time left is kept for a look-up"


@pytest.mark.parametrize(
    ("case", "version", "warned"),
    [
        case("API 2.0: ignored, with a warning", ApiVersion.V2, True),
        case("API 3.0", ApiVersion.V3, False),
    ],
)
def test_run_frequency_is_written_and_ignored_only_on_api_2_0(
    case: str, version: ApiVersion, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeQualys(api_version=version)
    properties = {**PROPERTIES, "RunFrequencyMinutes": "240"}

    resource(fake).create(connector_request(properties=properties), NEVER)
    resource(fake).update(
        connector_request("Update", physical_id="1", properties=properties), NEVER
    )

    ignored = [r for r in caplog.records if "RunFrequencyMinutes is ignored" in r.getMessage()]
    assert len(ignored) == (2 if warned else 0), case
    assert fake.connectors[1].run_frequency == 240, f"{case}: sent either way; the codec drops it"


# --- Update --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "changed", "expected_external_id", "external_id_sent"),
    [
        case(
            "description changed: external id kept",
            {"Description": "Moved to the Security OU"},
            SEEDED_EXTERNAL_ID,
            False,
        ),
        case(
            "ExternalId property equal to Qualys's: not sent",
            {"ExternalId": SEEDED_EXTERNAL_ID},
            SEEDED_EXTERNAL_ID,
            False,
        ),
        case(
            "ExternalId property changed: written",
            {"ExternalId": "4444444444444444"},
            "4444444444444444",
            True,
        ),
        case(
            "ConnectorName changed: renamed in place",
            {"ConnectorName": "aws-123456789012-renamed"},
            SEEDED_EXTERNAL_ID,
            False,
        ),
    ],
)
def test_update_changes_the_connector_in_place(
    case: str, changed: dict[str, str], expected_external_id: str, external_id_sent: bool
) -> None:
    fake = FakeQualys()
    seed(fake, disabled=False)
    properties = {**PROPERTIES, **changed}

    result = resource(fake).update(
        connector_request("Update", physical_id="1", properties=properties), NEVER
    )

    assert result.outcome is Outcome.UPDATED, case
    assert result.physical_resource_id == "1", case
    assert result.data == {
        "ConnectorId": "1",
        "ConnectorName": properties["ConnectorName"],
        "ExternalId": expected_external_id,
        "QualysAwsAccountId": QUALYS_ACCOUNT,
    }, case
    stored = fake.connectors[1]
    assert stored.name == properties["ConnectorName"], case
    assert stored.description == with_marker(properties["Description"], MARK), case
    assert stored.external_id == expected_external_id, case
    assert (stored.disabled, stored.arn) == (False, ROLE), f"{case}: role and state stay"
    (update,) = [call for call in fake.calls if call[0] == "update"]
    assert ("external_id" in update) is external_id_sent, f"{case}: {update}"
    assert "disabled" not in update, case
    assert "arn" not in update, case


@pytest.mark.parametrize(
    ("case", "setup", "physical_id", "error", "updates"),
    [
        case("connector gone", nothing, "1", ConnectorGoneError, 0),
        case("foreign connector", foreign, "1", OwnershipError, 0),
        case(
            "marker of a recreated stack",
            lambda fake: seed(fake, stack=RECREATED_STACK),
            "1",
            OwnershipError,
            0,
        ),
        case(
            "marker of another resource of this stack",
            lambda fake: seed(fake, logical="OtherConnector"),
            "1",
            OwnershipError,
            0,
        ),
        case("marker copied into a foreign description", copied, "1", OwnershipError, 0),
        case(
            "mismatched answer: refused, nothing written",
            both(own, mismatched),
            "1",
            QualysResponseError,
            0,
        ),
        case("physical id not a Qualys id", own, CRHELPER_ID, PropertyError, 0),
        case("read throttled", both(own, throttles("get")), "1", QualysThrottledError, 0),
        case(
            "update throttled",
            both(own, throttles("update")),
            "1",
            QualysThrottledError,
            1,
        ),
        # What Qualys reports is checked before the write: an Update that fails changes
        # nothing (so its rollback has nothing to undo).
        case("account not reported, no setting", both(own, unreported), "1", ProviderError, 0),
        case(
            "Qualys reports no externalId",
            lambda fake: seed(fake, external_id=None),
            "1",
            QualysResponseError,
            0,
        ),
    ],
)
def test_update_refuses_what_is_not_its_own_connector(
    case: str, setup: Setup, physical_id: str, error: type[ProviderError], updates: int
) -> None:
    fake = FakeQualys()
    setup(fake)

    with pytest.raises(ProviderError) as raised:
        resource(fake).update(connector_request("Update", physical_id=physical_id), NEVER)

    assert type(raised.value) is error, f"{case}: {raised.value!r}"
    assert fake.count("update") == updates, case


@pytest.mark.parametrize(
    ("case", "request_type"),
    [case("Create", "Create"), case("Update", "Update")],
)
def test_invalid_property_fails_before_any_call_to_qualys(case: str, request_type: str) -> None:
    fake = FakeQualys()
    own(fake)
    request = connector_request(
        request_type, physical_id="1", properties={**PROPERTIES, "Colour": "blue"}
    )

    method = getattr(resource(fake), request_type.lower())

    with pytest.raises(PropertyError):
        method(request, NEVER)

    assert fake.calls == [], case


# --- Delete ----------------------------------------------------------------------------


NOT_DELETED: Final = "Not deleted: the connector was not created by this stack."


@pytest.mark.parametrize(
    ("case", "setup", "note", "operations", "left"),
    [
        case("own connector: deleted", own, None, ["get", "delete"], 0),
        case("foreign connector: not deleted", foreign, NOT_DELETED, ["get"], 1),
        case(
            "marker of a recreated stack: not deleted",
            lambda fake: seed(fake, stack=RECREATED_STACK),
            NOT_DELETED,
            ["get"],
            1,
        ),
        case(
            "marker of another resource of this stack: not deleted",
            lambda fake: seed(fake, logical="OtherConnector"),
            NOT_DELETED,
            ["get"],
            1,
        ),
        case(
            "marker copied into a foreign description: not deleted", copied, NOT_DELETED, ["get"], 1
        ),
        case(
            "no marker, role in another account: not deleted",
            lambda fake: foreign(fake, arn=OTHER_ACCOUNT_ROLE),
            NOT_DELETED,
            ["get"],
            1,
        ),
        case(
            "timeout after the delete happened: looked up, not resent",
            both(own, fails("delete", timeout(), happened=True)),
            None,
            ["get", "delete", "get"],
            0,
        ),
        case(
            "unreadable answer after the delete happened: looked up, not resent",
            both(own, fails("delete", unreadable(), happened=True)),
            None,
            ["get", "delete", "get"],
            0,
        ),
        case(
            "timeout, the delete did not happen: looked up, resent",
            both(own, fails("delete", timeout())),
            None,
            ["get", "delete", "get", "delete"],
            0,
        ),
        case(
            "resent delete finds it gone: confirmed by a read",
            both(own, fails("delete", timeout()), fails("delete", gone(), happened=True, after=1)),
            None,
            ["get", "delete", "get", "delete", "get"],
            0,
        ),
        case(
            "gone between the read and the delete: confirmed by a read",
            both(own, fails("delete", gone(), happened=True)),
            None,
            ["get", "delete", "get"],
            0,
        ),
    ],
)
def test_delete_by_connector_id_deletes_only_its_own_connector(
    case: str, setup: Setup, note: str | None, operations: list[str], left: int
) -> None:
    fake = FakeQualys()
    setup(fake)

    result = resource(fake).delete(connector_request("Delete", physical_id="1"), NEVER)

    assert result.outcome is Outcome.DELETED, case
    assert result.physical_resource_id == "1", case
    assert result.connector_id == "1", case
    assert result.note == note, case
    assert result.warning is None, case
    assert [call[0] for call in fake.calls] == operations, case
    assert len(fake.connectors) == left, case


@pytest.mark.parametrize(
    ("case", "setup", "warning", "left"),
    [
        case(
            "not found (gone, or out of the API user's scope): SUCCESS with a warning",
            nothing,
            "Qualys did not find the connector",
            0,
        ),
        case(
            "marker edited away, role in this stack's account: deleted with a warning",
            lambda fake: foreign(fake, arn=ROLE),
            "The connector's ownership marker was gone",
            0,
        ),
    ],
)
def test_delete_by_connector_id_warns_of_what_a_person_should_check(
    case: str, setup: Setup, warning: str, left: int
) -> None:
    fake = FakeQualys()
    setup(fake)

    result = resource(fake).delete(connector_request("Delete", physical_id="1"), NEVER)

    assert result.outcome is Outcome.DELETED, case
    assert result.physical_resource_id == "1", case
    assert result.warning is not None, case
    assert result.warning.startswith(warning), f"{case}: {result.warning}"
    assert len(fake.connectors) == left, case


def test_a_delete_answered_not_found_for_a_connector_qualys_still_shows_fails() -> None:
    fake = FakeQualys()
    own(fake)
    fake.fail_next("delete", gone())  # Qualys says "no such connector", and deletes nothing

    with pytest.raises(QualysResponseError, match="does not exist, yet still shows it"):
        resource(fake).delete(connector_request("Delete", physical_id="1"), NEVER)

    assert list(fake.connectors) == [1], "FAILED, so the stack can delete it again"


def test_delete_leaves_another_stacks_connector_even_when_its_role_is_in_this_account() -> None:
    fake = FakeQualys()
    seed(fake, stack=RECREATED_STACK, disabled=False)  # enabled: its role is ROLE

    result = resource(fake).delete(connector_request("Delete", physical_id="1"), NEVER)

    assert result.note == "Not deleted: the connector was not created by this stack."
    assert result.warning is None
    assert len(fake.connectors) == 1


@pytest.mark.parametrize(
    ("case", "setup", "error"),
    [
        case(
            "Qualys down at the read: FAILED, so the connector is not orphaned",
            both(own, fails("get", down())),
            QualysUnavailableError,
        ),
        case(
            "Qualys answers the read with another connector: FAILED, nothing deleted",
            both(own, mismatched),
            QualysResponseError,
        ),
        case(
            "read after a delete of unknown outcome fails",
            both(own, fails("delete", timeout()), fails("get", down(), after=1)),
            QualysUnavailableError,
        ),
        case("delete throttled", both(own, throttles("delete")), QualysThrottledError),
    ],
)
def test_delete_that_cannot_tell_fails(case: str, setup: Setup, error: type[ProviderError]) -> None:
    fake = FakeQualys()
    setup(fake)
    before = dict(fake.connectors)

    with pytest.raises(ProviderError) as raised:
        resource(fake).delete(connector_request("Delete", physical_id="1"), NEVER)

    assert type(raised.value) is error, f"{case}: {raised.value!r}"
    assert fake.connectors == before, case


def test_delete_keeps_the_look_up_reserve_for_a_delete_whose_outcome_is_unknown() -> None:
    clock = FakeClock()

    class SlowDelete(FakeQualys):
        """A delete that takes the time left for it, then times out having happened."""

        def delete(self, connector_id: int, *, deadline: Deadline) -> None:
            clock.now += deadline.remaining()
            super().delete(connector_id, deadline=Deadline.never())

    fake = SlowDelete()
    own(fake)
    fake.fail_next("delete", timeout(), happened=True)

    result = resource(fake, lookup_reserve=15).delete(
        connector_request("Delete", physical_id="1"), Deadline.after(60, clock=clock)
    )

    assert result.note is None
    assert clock.now == 45, "the delete may use all but the reserve"
    assert [call[0] for call in fake.calls] == ["get", "delete", "get"]


def leftover_world(fake: FakeQualys) -> None:
    """Of the same name: a foreign connector, one quoting the marker, two of other
    resources, then this resource's leftover (5)."""
    foreign(fake)
    copied(fake)
    seed(fake, logical="OtherConnector")
    seed(fake, stack=RECREATED_STACK)
    own(fake)


@pytest.mark.parametrize(
    ("case", "setup", "properties", "note", "removed", "left"),
    [
        case(
            "leftover of this resource: removed, nothing else",
            leftover_world,
            PROPERTIES,
            None,
            "5",
            [1, 2, 3, 4],
        ),
        case("two leftovers: both removed", both(own, own), PROPERTIES, None, "1, 2", []),
        case(
            "no leftover: nothing deleted",
            both(foreign, lambda fake: seed(fake, logical="OtherConnector")),
            PROPERTIES,
            "Nothing to delete: the connector had not been created.",
            None,
            [1, 2],
        ),
        case(
            "no ConnectorName property: no look-up",
            own,
            {},
            "Nothing to delete: the connector had not been created.",
            None,
            [1],
        ),
        case(
            "look-up fails: SUCCESS with a note",
            both(own, fails("search", down())),
            PROPERTIES,
            "Could not check Qualys for a leftover connector: HTTP 503 from Qualys",
            None,
            [1],
        ),
        case(
            "look-up throttled: SUCCESS with a note",
            both(own, throttles("search")),
            PROPERTIES,
            "Could not check Qualys for a leftover connector:"
            " Qualys rate limit held past the deadline",
            None,
            [1],
        ),
    ],
)
def test_delete_after_a_failed_create_removes_only_this_resources_leftover(  # noqa: PLR0917 - a table row
    case: str,
    setup: Setup,
    properties: Mapping[str, str],
    note: str | None,
    removed: str | None,
    left: list[int],
) -> None:
    fake = FakeQualys()
    setup(fake)

    result = resource(fake).delete(
        connector_request("Delete", physical_id=CRHELPER_ID, properties=properties), NEVER
    )

    assert result.outcome is Outcome.DELETED, case
    assert result.physical_resource_id == CRHELPER_ID, case
    assert result.note == note, case
    assert result.connector_id == removed, case
    assert result.quiet is (note is not None and note.startswith("Nothing")), (
        f"{case}: no Slack message when nothing was made and nothing happened"
    )
    assert sorted(fake.connectors) == left, case
    assert fake.count("get") == 0, f"{case}: no connector has a made-up id"
    if not properties:
        assert fake.calls == [], case


def test_delete_without_a_physical_id_answers_one() -> None:
    result = resource(FakeQualys()).delete(connector_request("Delete"), NEVER)

    assert (result.physical_resource_id, result.outcome) == ("none", Outcome.DELETED)


def test_rollback_of_a_create_whose_outcome_stayed_unknown_removes_the_connector() -> None:
    fake = FakeQualys()
    fake.fail_next("create", timeout(), happened=True)
    fake.fail_next("search", down())
    connectors = resource(fake)

    with pytest.raises(QualysTimeoutError) as raised:
        connectors.create(connector_request(), NEVER)
    assert raised.value.physical_resource_id is None, "crhelper makes one up"
    assert list(fake.connectors) == [1], "the create had happened"

    result = connectors.delete(connector_request("Delete", physical_id=CRHELPER_ID), NEVER)

    assert result.connector_id == "1"
    assert fake.connectors == {}


# --- Lifecycle: the routing table -------------------------------------------------------


def lifecycle(fake: FakeQualys) -> Lifecycle:
    return Lifecycle(fake, fallback_qualys_account_id=None, sleep=lambda seconds: None)


@pytest.mark.parametrize(
    ("case", "resource_type", "request_type", "owner", "method"),
    [
        case("connector Create", CONNECTOR_TYPE, "Create", ConnectorResource, "create"),
        case("connector Update", CONNECTOR_TYPE, "Update", ConnectorResource, "update"),
        case("connector Delete", CONNECTOR_TYPE, "Delete", ConnectorResource, "delete"),
        case("activation Create", ACTIVATION_TYPE, "Create", ActivationResource, "create"),
        case("activation Update", ACTIVATION_TYPE, "Update", ActivationResource, "update"),
        case("activation Delete", ACTIVATION_TYPE, "Delete", ActivationResource, "delete"),
    ],
)
def test_each_row_of_the_table_names_its_method(
    case: str, resource_type: str, request_type: str, owner: type, method: str
) -> None:
    route = lifecycle(FakeQualys()).routes[(resource_type, request_type)]

    assert isinstance(route, MethodType), case
    assert isinstance(route.__self__, owner), case
    assert route.__func__ is vars(owner)[method], case


def routed_request(resource_type: str, request_type: str) -> Request:
    properties = (
        {"ConnectorId": "1", "RoleArn": ROLE} if resource_type == ACTIVATION_TYPE else PROPERTIES
    )
    physical = {CONNECTOR_TYPE: "1", ACTIVATION_TYPE: "1/activation"}.get(resource_type, "x")
    return Request(
        request_type=request_type,
        request_id="5b7a3c9e-request",
        stack_id=STACK,
        logical_resource_id=LOGICAL,
        resource_type=resource_type,
        physical_resource_id=None if request_type == "Create" else physical,
        properties=properties,
    )


@pytest.mark.parametrize(
    ("case", "resource_type", "request_type", "outcome", "first_calls"),
    [
        case("connector Create", CONNECTOR_TYPE, "Create", Outcome.CREATED, ["create", "search"]),
        case("connector Update", CONNECTOR_TYPE, "Update", Outcome.UPDATED, ["get", "update"]),
        case("connector Delete", CONNECTOR_TYPE, "Delete", Outcome.DELETED, ["get", "delete"]),
        case("activation Create", ACTIVATION_TYPE, "Create", Outcome.ACTIVATED, ["get", "update"]),
        case("activation Update", ACTIVATION_TYPE, "Update", Outcome.ACTIVATED, ["get", "update"]),
        case(
            "activation Delete", ACTIVATION_TYPE, "Delete", Outcome.DEACTIVATED, ["get", "update"]
        ),
    ],
)
def test_handle_runs_the_method_of_the_row(
    case: str, resource_type: str, request_type: str, outcome: Outcome, first_calls: list[str]
) -> None:
    fake = FakeQualys()
    seed(fake, disabled=request_type != "Delete")

    result = lifecycle(fake).handle(routed_request(resource_type, request_type), NEVER)

    assert result.outcome is outcome, case
    assert [call[0] for call in fake.calls][: len(first_calls)] == first_calls, case


@pytest.mark.parametrize(
    ("case", "resource_type", "request_type"),
    [
        case("unknown type, Create", "Custom::QualysConector", "Create"),
        case("unknown type, Update", "Custom::QualysConector", "Update"),
        case("no type, Create", "", "Create"),
        case("unknown type, unknown request", "Custom::Other", "Remove"),
        case("connector, lower-case delete", CONNECTOR_TYPE, "delete"),
        case("connector, unknown request", CONNECTOR_TYPE, "Remove"),
        case("connector, empty request", CONNECTOR_TYPE, ""),
        case("activation, lower-case delete", ACTIVATION_TYPE, "delete"),
        case("activation, unknown request", ACTIVATION_TYPE, "Destroy"),
    ],
)
def test_handle_refuses_what_no_row_names(case: str, resource_type: str, request_type: str) -> None:
    fake = FakeQualys()
    own(fake)

    with pytest.raises(UnsupportedRequestError):
        lifecycle(fake).handle(routed_request(resource_type, request_type), NEVER)

    assert fake.calls == [], f"{case}: never silently a Delete"
    assert list(fake.connectors) == [1], case


@pytest.mark.parametrize(
    ("case", "physical_id", "expected"),
    [case("with an id", "1", "1"), case("without an id", None, "none")],
)
def test_delete_of_an_unknown_type_succeeds_without_calls(
    case: str, physical_id: str | None, expected: str
) -> None:
    fake = FakeQualys()
    own(fake)
    request = Request(
        request_type="Delete",
        request_id="5b7a3c9e-request",
        stack_id=STACK,
        logical_resource_id=LOGICAL,
        resource_type="Custom::QualysConector",
        physical_resource_id=physical_id,
        properties=PROPERTIES,
    )

    result = lifecycle(fake).handle(request, NEVER)

    assert (result.physical_resource_id, result.outcome) == (expected, Outcome.DELETED), case
    assert fake.calls == [], case


def test_lifecycle_passes_its_settings_to_both_resources() -> None:
    fake = FakeQualys(qualys_aws_account_id=None)
    sleeper = RecordingSleeper()
    life = Lifecycle(
        fake,
        fallback_qualys_account_id=FALLBACK_ACCOUNT,
        activation=ActivationPolicy(max_wait=60, first_delay=3, max_delay=5),
        lookup_reserve=0,
        sleep=sleeper,
    )
    fake.reject_role(gets=1)

    created = life.handle(routed_request(CONNECTOR_TYPE, "Create"), Deadline.after(10))
    life.handle(routed_request(ACTIVATION_TYPE, "Create"), NEVER)

    assert created.data["QualysAwsAccountId"] == FALLBACK_ACCOUNT, "the fallback account"
    assert fake.count("create") == 1, "a 0 s reserve leaves the 10 s to the create"
    assert sleeper.delays == [3], "the policy and the sleep"


# --- answers CloudFormation can take ----------------------------------------------------


@pytest.mark.parametrize(
    ("case", "name", "external_id", "fits"),
    [
        pytest.param("ascii, longest", "n" * 255, "x" * 1224, True, id="ascii-longest"),
        pytest.param("emoji name, longest id", "😀" * 255, "x" * 1224, False, id="emoji"),
        pytest.param("emoji name, generated id", "😀" * 255, None, True, id="emoji-generated"),
    ],
)
@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_properties_whose_answer_cloudformation_would_refuse_are_refused_up_front(
    case: str, name: str, external_id: str | None, fits: bool, request_type: str
) -> None:
    fake = FakeQualys()
    own(fake)
    properties = {**PROPERTIES, "ConnectorName": name}
    if external_id is not None:
        properties["ExternalId"] = external_id
    request = connector_request(request_type, physical_id="1", properties=properties)
    calls_before = len(fake.calls)

    if fits:
        result = getattr(resource(fake), request_type.lower())(request, NEVER)
        size = request.answer_size(result.data, physical_resource_id=result.physical_resource_id)
        assert size <= 4096, case
        return
    with pytest.raises(PropertyError, match="over CloudFormation's 4096") as raised:
        getattr(resource(fake), request_type.lower())(request, NEVER)

    assert raised.value.property_name == "ConnectorName", case
    assert "ExternalId" in str(raised.value), case
    assert len(fake.calls) == calls_before, f"{case}: nothing reached Qualys"


@pytest.mark.parametrize(
    "given", [pytest.param("ConnectorName=x", id="string"), pytest.param(["x"], id="list")]
)
def test_properties_that_are_not_an_object_are_refused_naming_them(given: object) -> None:
    fake = FakeQualys()
    request = dataclasses.replace(connector_request(), properties=given)

    with pytest.raises(PropertyError, match="ResourceProperties must be an object"):
        resource(fake).create(request, NEVER)

    assert request.connector_name is None
    assert fake.calls == []
