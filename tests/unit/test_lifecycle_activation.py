"""``Custom::QualysConnectorActivation`` decisions over an in-memory Qualys.

No crhelper, no moto, no HTTP, no sleeping: ``ActivationResource`` runs over
``FakeQualys`` with a ``RecordingSleeper`` that advances a ``FakeClock``, so the waits for
IAM propagation are counted, not slept. The fake numbers connectors from 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import pytest
from fakes import FakeClock, FakeQualys, Operation, RecordingSleeper

from provider.deadline import Deadline
from provider.errors import (
    ActivationError,
    ConnectorGoneError,
    OwnershipError,
    PropertyError,
    ProviderError,
)
from provider.lifecycle import (
    ACTIVATION_TYPE,
    ActivationPolicy,
    ActivationResource,
    Outcome,
    Request,
)
from provider.markers import marker, with_marker
from provider.qualys.errors import (
    QualysError,
    QualysInvalidRequestError,
    QualysNotFoundError,
    QualysResponseError,
    QualysThrottledError,
    QualysUnavailableError,
)
from provider.qualys.models import Connector, ConnectorChanges

STACK: Final = (
    "arn:aws:cloudformation:eu-west-1:123456789012:stack/member/"
    "0f9e9f60-cb3a-11ef-9d6c-0a7c5f3e1b2d"
)
OTHER_STACK: Final = (
    "arn:aws:cloudformation:eu-west-1:123456789012:stack/member/"
    "7a1b2c3d-cb3a-11ef-9d6c-0a7c5f3e1b2d"
)
"""A stack of the same name, deleted and created again: a new StackId."""
CONNECTOR_LOGICAL: Final = "QualysConnector"
LOGICAL: Final = "QualysConnectorActivation"
NAME: Final = "aws-123456789012"
ROLE: Final = "arn:aws:iam::123456789012:role/qualys-connector-QualysRole-1A2B3C4D5E6F"
OLD_ROLE: Final = "arn:aws:iam::123456789012:role/qualys-connector-QualysRole-0OLD0ROLE0"
LAST_ERROR: Final = "Unable to assume role arn:aws:iam::123456789012:role/qualys-connector"
CRHELPER_ID: Final = "member_QualysConnectorActivation_A1B2C3D4E5"
NEVER: Final = Deadline.never()
POLICY: Final = ActivationPolicy(max_wait=120, first_delay=2, max_delay=20)
"""The default policy, spelled out: the delays the tests expect follow from it."""

Setup = Callable[[FakeQualys], object]


def case(name: str, *values: object) -> pytest.ParameterSet:
    """A table row whose first value, and test id, is its readable name."""
    return pytest.param(name, *values, id=name)


def activation_request(
    request_type: str = "Create",
    *,
    connector_id: str = "1",
    physical_id: str | None = None,
    role: str = ROLE,
) -> Request:
    return Request(
        request_type=request_type,
        request_id="9c2f1e7a-request",
        stack_id=STACK,
        logical_resource_id=LOGICAL,
        resource_type=ACTIVATION_TYPE,
        physical_resource_id=physical_id,
        properties={"ConnectorId": connector_id, "RoleArn": role},
    )


def activations(
    fake: FakeQualys, *, policy: ActivationPolicy = POLICY, sleeper: RecordingSleeper | None = None
) -> ActivationResource:
    return ActivationResource(fake, policy=policy, sleep=sleeper or RecordingSleeper())


# --- what a case seeds in Qualys -----------------------------------------------------


def seed(
    fake: FakeQualys,
    *,
    stack: str = STACK,
    logical: str = CONNECTOR_LOGICAL,
    disabled: bool = True,
    arn: str | None = None,
) -> Connector:
    """A connector carrying the marker of ``logical`` in ``stack``."""
    return fake.add(
        ConnectorChanges(
            name=NAME,
            description=with_marker("Member account", marker(stack, logical)),
            external_id="1111111111111111",
            disabled=disabled,
            arn=arn,
        )
    )


def created(fake: FakeQualys) -> Connector:
    """The connector this stack's connector resource created: disabled, no role."""
    return seed(fake)


def enabled(fake: FakeQualys) -> Connector:
    """This stack's connector, activated earlier with ``OLD_ROLE``."""
    return seed(fake, disabled=False, arn=OLD_ROLE)


def foreign(fake: FakeQualys) -> Connector:
    """A connector made by hand: no marker."""
    return fake.add(ConnectorChanges(name=NAME, description="Made in the Qualys UI", arn=OLD_ROLE))


def nothing(fake: FakeQualys) -> None:
    """Qualys holds no connector."""


def fails(operation: Operation, error: QualysError, *, after: int = 0) -> Setup:
    def setup(fake: FakeQualys) -> None:
        fake.fail_next(operation, error, after=after)

    return setup


def both(*setups: Setup) -> Setup:
    def setup(fake: FakeQualys) -> None:
        for step in setups:
            step(fake)

    return setup


def reports_state(state: str | None) -> Setup:
    """Qualys reports ``state`` for an enabled connector."""

    def setup(fake: FakeQualys) -> None:
        fake.enabled_state = state

    return setup


def mismatched(fake: FakeQualys) -> None:
    """Qualys answers the next get with a foreign connector, whatever id was asked."""
    fake.answer_next_get(foreign(fake))


def down() -> QualysUnavailableError:
    return QualysUnavailableError("HTTP 503 from Qualys", status=503)


def throttles(operation: Operation, *, after: int = 0) -> Setup:
    """Qualys's limits hold the call of ``operation`` past the deadline: not carried out."""

    def setup(fake: FakeQualys) -> None:
        fake.throttle_next(operation, after=after)

    return setup


# --- Create and Update ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "setup", "request_type", "physical_id"),
    [
        case("Create enables with the role", created, "Create", None),
        case("Update sets the new role", enabled, "Update", "1/activation"),
        case(
            "Update of a connector disabled meanwhile enables it", created, "Update", "1/activation"
        ),
        case(
            "connector of another resource of this stack",
            lambda fake: seed(fake, logical="ScannerConnector"),
            "Create",
            None,
        ),
        case(
            "Update to another connector of this stack",
            both(enabled, created),
            "Update",
            "2/activation",
        ),
    ],
)
def test_activation_sets_the_role_and_enables(
    case: str, setup: Setup, request_type: str, physical_id: str | None
) -> None:
    fake = FakeQualys()
    setup(fake)
    others = {i: c for i, c in fake.connectors.items() if i != 1}

    method = getattr(activations(fake), request_type.lower())

    result = method(activation_request(request_type, physical_id=physical_id), NEVER)

    assert result.outcome is Outcome.ACTIVATED, case
    assert result.physical_resource_id == "1/activation", case
    assert result.data == {"ConnectorState": "QUEUED"}, case
    assert (result.connector_name, result.connector_id, result.state) == (NAME, "1", "QUEUED"), case
    stored = fake.connectors[1]
    assert (stored.arn, stored.disabled) == (ROLE, False), case
    assert [call[0] for call in fake.calls] == ["get", "update", "run", "get"], case
    assert {i: c for i, c in fake.connectors.items() if i != 1} == others, (
        f"{case}: other connectors untouched (the old one is disabled by its Delete)"
    )


@pytest.mark.parametrize(
    ("case", "setup", "state", "data"),
    [
        case("sync queued", nothing, "QUEUED", "QUEUED"),
        case("already synced", reports_state("SUCCESS"), "SUCCESS", "SUCCESS"),
        case("state not reported", reports_state(None), None, "UNKNOWN"),
        case(
            "Qualys refuses to start a sync: activated all the same",
            fails("run", QualysInvalidRequestError("Connector is busy")),
            "QUEUED",
            "QUEUED",
        ),
        case(
            "sync start unavailable: activated all the same",
            fails("run", down()),
            "QUEUED",
            "QUEUED",
        ),
    ],
)
def test_activation_reports_the_state_qualys_reports(
    case: str, setup: Setup, state: str | None, data: str
) -> None:
    fake = FakeQualys()
    created(fake)
    setup(fake)

    result = activations(fake).create(activation_request(), NEVER)

    assert result.state == state, case
    assert result.data == {"ConnectorState": data}, case
    assert fake.connectors[1].disabled is False, case


@pytest.mark.parametrize(
    ("case", "errors", "policy", "delays"),
    [
        case("ERROR once, then healthy", 1, POLICY, [2]),
        case("ERROR three times: the delay doubles", 3, POLICY, [2, 4, 8]),
        case(
            "ERROR four times: the delay is capped",
            4,
            ActivationPolicy(max_wait=120, first_delay=5, max_delay=8),
            [5, 8, 8, 8],
        ),
    ],
)
def test_a_role_not_yet_assumable_is_applied_again_with_backoff(
    case: str, errors: int, policy: ActivationPolicy, delays: list[float]
) -> None:
    fake = FakeQualys()
    created(fake)
    fake.reject_role(gets=errors, last_error=LAST_ERROR)
    clock = FakeClock()
    sleeper = RecordingSleeper(clock)

    result = activations(fake, policy=policy, sleeper=sleeper).create(
        activation_request(), Deadline.after(300, clock=clock)
    )

    assert result.outcome is Outcome.ACTIVATED, case
    assert result.state == "QUEUED", case
    assert sleeper.delays == delays, case
    assert fake.count("update") == errors + 1, f"{case}: applied once more per ERROR"
    assert fake.connectors[1].arn == ROLE, case


@pytest.mark.parametrize(
    ("case", "request_type", "connector_id", "physical_id", "failed_id"),
    [
        case(
            "Create: the activation's id, for the rollback Delete",
            "Create",
            "1",
            None,
            "1/activation",
        ),
        case("Update: the id it had", "Update", "1", "1/activation", "1/activation"),
        case(
            "Update to another connector: the old id, not the new one",
            "Update",
            "2",
            "1/activation",
            "1/activation",
        ),
    ],
)
def test_a_role_never_assumable_fails_when_the_budget_ends(
    case: str, request_type: str, connector_id: str, physical_id: str | None, failed_id: str
) -> None:
    fake = FakeQualys()
    created(fake)
    created(fake)
    fake.reject_role(gets=100, last_error=LAST_ERROR)
    clock = FakeClock()
    sleeper = RecordingSleeper(clock)
    resource = activations(
        fake, policy=ActivationPolicy(max_wait=10, first_delay=2, max_delay=4), sleeper=sleeper
    )
    request = activation_request(request_type, connector_id=connector_id, physical_id=physical_id)

    with pytest.raises(ActivationError) as raised:
        getattr(resource, request_type.lower())(request, Deadline.after(300, clock=clock))

    assert raised.value.physical_resource_id == failed_id, case
    assert raised.value.connector_name == NAME, case
    assert LAST_ERROR[:60] in str(raised.value), f"{case}: names Qualys's lastError"
    assert sleeper.delays == [2, 4, 4], f"{case}: 10 s of budget, no more"
    assert fake.count("update") == 4, case


@pytest.mark.parametrize(
    ("case", "setup", "physical_id", "error", "failed_id", "updates"),
    [
        case(
            "connector of another stack",
            lambda fake: seed(fake, stack=OTHER_STACK),
            None,
            OwnershipError,
            "1/activation",
            0,
        ),
        case("connector without a marker", foreign, None, OwnershipError, "1/activation", 0),
        case(
            "marker copied into a foreign description",
            lambda fake: fake.add(
                ConnectorChanges(description=f"Like {marker(STACK, CONNECTOR_LOGICAL)} by hand")
            ),
            None,
            OwnershipError,
            "1/activation",
            0,
        ),
        case("connector gone, Create", nothing, None, ConnectorGoneError, "1/activation", 0),
        case(
            "connector gone, Update", nothing, "2/activation", ConnectorGoneError, "2/activation", 0
        ),
        case(
            "Qualys answers with another connector",
            both(created, mismatched),
            None,
            QualysResponseError,
            "1/activation",
            0,
        ),
        case(
            "enabling throttled",
            both(created, throttles("update")),
            None,
            QualysThrottledError,
            "1/activation",
            1,
        ),
        case(
            "read after enabling fails",
            both(created, fails("get", down(), after=1)),
            None,
            QualysUnavailableError,
            "1/activation",
            1,
        ),
    ],
)
def test_activation_refuses_or_fails_keeping_its_kind_and_id(  # noqa: PLR0917 - a table row
    case: str,
    setup: Setup,
    physical_id: str | None,
    error: type[ProviderError],
    failed_id: str,
    updates: int,
) -> None:
    fake = FakeQualys()
    setup(fake)
    request_type = "Update" if physical_id else "Create"
    resource = activations(fake)

    with pytest.raises(ProviderError) as raised:
        getattr(resource, request_type.lower())(
            activation_request(request_type, physical_id=physical_id), NEVER
        )

    assert type(raised.value) is error, f"{case}: {raised.value!r}"
    assert raised.value.physical_resource_id == failed_id, case
    assert fake.count("update") == updates, case


def test_invalid_role_fails_before_any_call_to_qualys() -> None:
    fake = FakeQualys()
    created(fake)

    with pytest.raises(PropertyError):
        activations(fake).create(activation_request(role="QualysRole"), NEVER)

    assert fake.calls == []


def test_a_role_never_assumable_near_the_deadline_fails_with_qualys_last_error() -> None:
    fake = FakeQualys()
    created(fake)
    fake.reject_role(gets=100, last_error=LAST_ERROR)
    clock = FakeClock()
    resource = activations(fake, sleeper=RecordingSleeper(clock))

    with pytest.raises(ActivationError) as raised:
        resource.create(activation_request(), Deadline.after(6.5, clock=clock))

    assert LAST_ERROR[:60] in str(raised.value)


# --- Delete ----------------------------------------------------------------------------

NOT_DISABLED: Final = "Not disabled: the connector was not created by this stack."


@pytest.mark.parametrize(
    ("case", "setup", "physical_id", "note", "operations"),
    [
        case("enabled connector: disabled", enabled, "1/activation", None, ["get", "update"]),
        case("already disabled: no update", created, "1/activation", None, ["get"]),
        case(
            "connector of another resource of this stack: disabled",
            lambda fake: seed(fake, logical="ScannerConnector", disabled=False),
            "1/activation",
            None,
            ["get", "update"],
        ),
        case(
            "connector gone",
            nothing,
            "1/activation",
            "The connector was already gone from Qualys.",
            ["get"],
        ),
        case(
            "connector without a marker: not disabled",
            foreign,
            "1/activation",
            NOT_DISABLED,
            ["get"],
        ),
        case(
            "connector of another stack: not disabled",
            lambda fake: seed(fake, stack=OTHER_STACK, disabled=False),
            "1/activation",
            NOT_DISABLED,
            ["get"],
        ),
        case(
            "crhelper's id after a failed Create",
            enabled,
            CRHELPER_ID,
            "Nothing to deactivate.",
            [],
        ),
        case("a connector id, not an activation id", enabled, "1", "Nothing to deactivate.", []),
        case("activation id with a tail", enabled, "1/activation/x", "Nothing to deactivate.", []),
    ],
)
def test_delete_disables_only_this_stacks_connector(
    case: str, setup: Setup, physical_id: str, note: str | None, operations: list[str]
) -> None:
    fake = FakeQualys()
    setup(fake)
    before = dict(fake.connectors)

    result = activations(fake).delete(activation_request("Delete", physical_id=physical_id), NEVER)

    assert result.outcome is Outcome.DEACTIVATED, case
    assert result.physical_resource_id == physical_id, case
    assert result.note == note, case
    assert result.quiet is (note == "Nothing to deactivate."), case
    assert [call[0] for call in fake.calls] == operations, case
    if "update" in operations:
        assert fake.calls[-1] == ("update", "1", "disabled"), f"{case}: only disabled is written"
        assert fake.connectors[1].disabled is True, case
        assert fake.connectors[1].arn == before[1].arn, f"{case}: the role stays"
        assert result.state == "DISABLED", case
    else:
        assert fake.connectors == before, case


@pytest.mark.parametrize(
    ("case", "setup", "error"),
    [
        case(
            "Qualys down at the read", both(enabled, fails("get", down())), QualysUnavailableError
        ),
        case(
            "Qualys answers with another connector", both(enabled, mismatched), QualysResponseError
        ),
        case("disable throttled", both(enabled, throttles("update")), QualysThrottledError),
    ],
)
def test_delete_that_cannot_disable_fails(
    case: str, setup: Setup, error: type[ProviderError]
) -> None:
    fake = FakeQualys()
    setup(fake)

    with pytest.raises(ProviderError) as raised:
        activations(fake).delete(activation_request("Delete", physical_id="1/activation"), NEVER)

    assert type(raised.value) is error, f"{case}: {raised.value!r}"
    assert fake.connectors[1].disabled is False, case


def test_delete_of_a_connector_gone_between_the_read_and_the_disable_succeeds() -> None:
    fake = FakeQualys()
    enabled(fake)
    # Someone deletes the connector in Qualys just after the provider read it.
    fake.fail_next(
        "update", QualysNotFoundError("Connector not found", response_code="OBJECT_NOT_FOUND")
    )

    result = activations(fake).delete(
        activation_request("Delete", physical_id="1/activation"), NEVER
    )

    assert result.outcome is Outcome.DEACTIVATED
