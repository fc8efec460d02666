"""Custom::QualysConnectorActivation: role and enablement, IAM propagation, disabling."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import PASSWORD, USERNAME, Provider, load_event
from provider.lifecycle import ActivationPolicy
from provider.markers import marker
from sandbox.qualys import Fault, QualysSimulator, SimConnector, SyncOutcome
from sandbox.slack import SlackReceiver

ROLE = "arn:aws:iam::123456789012:role/qualys-connector-QualysRole-1A2B3C4D5E6F"
STACK_ID = load_event("connector_create")["StackId"]


@pytest.fixture
def provider_options() -> dict[str, Any]:
    """Activation retries in tenths of a second instead of seconds."""
    return {
        "activation": ActivationPolicy(
            max_wait=2.0, first_delay=0.05, max_delay=0.2, sync_poll=0.05
        )
    }


def create_connector(provider: Provider, logical_id: str = "QualysConnector") -> str:
    event = load_event("connector_create")
    event["LogicalResourceId"] = logical_id
    answer = provider.send(event)
    assert answer.status == "SUCCESS", answer.reason
    return answer.physical_resource_id


def activation(name: str, connector_id: str, **properties: Any) -> dict[str, Any]:
    event = load_event(name)
    event["ResourceProperties"]["ConnectorId"] = connector_id
    event["ResourceProperties"].update(properties)
    if "PhysicalResourceId" in event:
        event["PhysicalResourceId"] = f"{connector_id}/activation"
    return event


def test_activation_sets_role_and_enables(provider: Provider, qualys: QualysSimulator) -> None:
    connector_id = create_connector(provider)

    answer = provider.send(activation("activation_create", connector_id))

    assert answer.status == "SUCCESS", answer.reason
    assert answer.physical_resource_id == f"{connector_id}/activation"
    connector = qualys.connector(int(connector_id))
    assert connector is not None
    assert (connector.arn, connector.disabled) == (ROLE, False)
    operations = [r.operation for r in qualys.requests][-3:]
    assert operations == ["update", "run", "get"], "enabled, then a sync started, then read"
    assert answer.data == {"ConnectorState": "PROCESSING"}, "the first sync is under way"
    assert "Queued for first sync" in slack_text(provider)


def slack_text(provider: Provider) -> str:
    return str(provider.slack.wait_for(1)[-1]["attachments"][0]["blocks"])


def test_a_broken_trust_without_waiting_answers_success_while_the_sync_runs(
    provider: Provider, qualys: QualysSimulator
) -> None:
    connector_id = create_connector(provider)
    qualys.role_checker = lambda _c: "Unable to assume role: AccessDenied"

    answer = provider.send(activation("activation_create", connector_id))

    assert answer.status == "SUCCESS", "without WaitForFirstSync the result is Qualys's to show"
    assert answer.data["ConnectorState"] == "PROCESSING"


def test_role_not_yet_assumable_is_retried_until_it_is(
    provider: Provider, qualys: QualysSimulator
) -> None:
    connector_id = create_connector(provider)
    checks: list[str] = []

    def young_role(connector: SimConnector) -> str | None:
        checks.append(connector.arn or "")
        return None if len(checks) >= 3 else "Unable to assume role: AccessDenied"

    qualys.role_checker = young_role

    answer = provider.send(activation("activation_create", connector_id, WaitForFirstSync="true"))

    assert answer.status == "SUCCESS", answer.reason
    assert len(checks) == 3, "each sync checks the role; the third finds it assumable"
    assert answer.data["ConnectorState"] == "FINISHED_SUCCESS"


def test_a_first_sync_with_errors_is_retried_then_fails_with_its_last_error(
    provider: Provider, qualys: QualysSimulator
) -> None:
    connector_id = create_connector(provider)
    qualys.script_sync(SyncOutcome.errors("ec2:DescribeRegions denied in 3 regions"), times=100)

    answer = provider.send(activation("activation_create", connector_id, WaitForFirstSync="true"))

    assert answer.status == "FAILED"
    assert "ec2:DescribeRegions denied in 3 regions" in answer.reason
    assert sum(r.operation == "run" for r in qualys.requests) > 1, "applied again meanwhile"


def test_a_first_sync_still_running_when_the_time_ends_answers_success_saying_so(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    with QualysSimulator(users={USERNAME: PASSWORD}, sync_seconds=600.0) as slow_sync:
        monkeypatch.setenv("QUALYS_API_URL", slow_sync.base_url)
        provider.new_container()
        connector_id = create_connector(provider)

        answer = provider.send(
            activation("activation_create", connector_id, WaitForFirstSync="true"),
            remaining_ms=10_000,
        )

    assert answer.status == "SUCCESS", answer.reason
    assert answer.data["ConnectorState"] == "PROCESSING"
    assert "still running when the time ran out" in slack_text(provider)


def test_a_refused_run_is_logged_not_fatal(provider: Provider, qualys: QualysSimulator) -> None:
    connector_id = create_connector(provider)
    qualys.inject("run", Fault.response_code("INVALID_REQUEST", "Connector is busy."))

    answer = provider.send(activation("activation_create", connector_id))

    assert answer.status == "SUCCESS", answer.reason


def test_role_never_assumable_fails_with_qualys_last_error_and_real_id(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver
) -> None:
    connector_id = create_connector(provider)
    qualys.role_checker = lambda _c: "Unable to assume role: trust policy lacks the external ID"

    answer = provider.send(activation("activation_create", connector_id, WaitForFirstSync="true"))

    assert answer.status == "FAILED"
    assert answer.physical_resource_id == f"{connector_id}/activation"
    assert "trust policy lacks the external ID" in answer.reason
    assert "Check the role's trust policy" in answer.reason
    assert slack.messages[-1]["text"].startswith("Qualys connector failed: aws-123456789012")

    rollback = provider.send(activation("activation_delete", connector_id))

    assert rollback.status == "SUCCESS"
    connector = qualys.connector(int(connector_id))
    assert connector is not None
    assert connector.disabled is True


def test_update_reactivates_with_a_new_role(provider: Provider, qualys: QualysSimulator) -> None:
    connector_id = create_connector(provider)
    provider.send(activation("activation_create", connector_id))
    new_role = "arn:aws:iam::123456789012:role/qualys-connector-QualysRole-NEW"
    update = activation("activation_create", connector_id, RoleArn=new_role)
    update.update(
        RequestType="Update",
        PhysicalResourceId=f"{connector_id}/activation",
        OldResourceProperties=activation("activation_create", connector_id)["ResourceProperties"],
    )

    answer = provider.send(update)

    assert answer.status == "SUCCESS", answer.reason
    connector = qualys.connector(int(connector_id))
    assert connector is not None
    assert (connector.arn, connector.disabled) == (new_role, False)


def test_replacement_by_another_connector_then_delete_of_the_old_id(
    provider: Provider, qualys: QualysSimulator
) -> None:
    old_id = create_connector(provider)
    new_id = create_connector(provider, logical_id="QualysConnectorV2")
    provider.send(activation("activation_create", old_id))
    update = activation("activation_create", new_id)
    update.update(
        RequestType="Update",
        PhysicalResourceId=f"{old_id}/activation",
        OldResourceProperties=activation("activation_create", old_id)["ResourceProperties"],
    )

    replaced = provider.send(update)
    cleanup = provider.send(activation("activation_delete", old_id))

    assert replaced.status == "SUCCESS", replaced.reason
    assert replaced.physical_resource_id == f"{new_id}/activation"
    assert cleanup.status == "SUCCESS"
    old, new = qualys.connector(int(old_id)), qualys.connector(int(new_id))
    assert old is not None
    assert new is not None
    assert old.disabled is True
    assert new.disabled is False


def test_activation_of_a_connector_this_stack_did_not_create_fails(
    provider: Provider, qualys: QualysSimulator
) -> None:
    foreign = qualys.seed(name="aws-123456789012", description="by hand", disabled=True)

    answer = provider.send(activation("activation_create", str(foreign.id)))

    assert answer.status == "FAILED"
    assert "not created by this stack" in answer.reason
    assert qualys.connector(foreign.id) == foreign


def test_activation_of_a_missing_connector_fails(provider: Provider) -> None:
    answer = provider.send(activation("activation_create", "4242"))

    assert answer.status == "FAILED"
    assert "Connector 4242 does not exist" in answer.reason


def test_delete_of_a_foreign_or_gone_connector_succeeds_untouched(
    provider: Provider, qualys: QualysSimulator
) -> None:
    foreign = qualys.seed(name="x", description="by hand", disabled=False, arn=ROLE)

    foreign_answer = provider.send(activation("activation_delete", str(foreign.id)))
    gone_answer = provider.send(activation("activation_delete", "4242"))

    assert foreign_answer.status == gone_answer.status == "SUCCESS"
    assert qualys.connector(foreign.id) == foreign


def test_delete_with_a_made_up_id_succeeds(provider: Provider) -> None:
    event = activation("activation_delete", "1")
    event["PhysicalResourceId"] = "qualys-connector_QualysConnectorActivation_ABCDEFGH"

    assert provider.send(event).status == "SUCCESS"


def test_activation_accepts_a_connector_of_its_own_stack_only(
    provider: Provider, qualys: QualysSimulator
) -> None:
    other_stack = STACK_ID.replace("0f9e9f60", "22222222")
    other = qualys.seed(name="x", description=marker(other_stack, "QualysConnector"))

    answer = provider.send(activation("activation_create", str(other.id)))

    assert answer.status == "FAILED"
    assert "not created by this stack" in answer.reason
