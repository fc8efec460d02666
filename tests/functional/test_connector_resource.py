"""Custom::QualysConnector: every lifecycle path, duplicate and foreign case, and rule."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Provider, load_event
from provider.markers import marker
from sandbox.qualys import QualysSimulator
from sandbox.slack import SlackReceiver

STACK_ID = load_event("connector_create")["StackId"]
NAME = "aws-123456789012"


def create_event(**properties: Any) -> dict[str, Any]:
    event = load_event("connector_create")
    event["ResourceProperties"].update(properties)
    return event


def followup(name: str, created_id: str, **properties: Any) -> dict[str, Any]:
    event = load_event(name)
    event["PhysicalResourceId"] = created_id
    event["ResourceProperties"].update(properties)
    return event


def create(provider: Provider, **properties: Any) -> str:
    answer = provider.send(create_event(**properties))
    assert answer.status == "SUCCESS", answer.reason
    return answer.physical_resource_id


def last_slack(slack: SlackReceiver) -> str:
    return str(slack.wait_for(1)[-1]["text"])


def test_create_is_idempotent_across_fresh_containers(
    provider: Provider, qualys: QualysSimulator
) -> None:
    event = create_event()

    first = provider.send(event)
    provider.new_container()
    second = provider.send(event)

    assert first.status == second.status == "SUCCESS"
    assert len(qualys.connectors()) == 1
    assert second.physical_resource_id == first.physical_resource_id
    assert second.data == first.data


def test_create_keeps_user_description_and_marks_the_connector(
    provider: Provider, qualys: QualysSimulator
) -> None:
    special = 'ACME & <Sons> "prod" ü'

    create(provider, ConnectorName=special, Description=special)

    (connector,) = qualys.connectors()
    assert connector.name == special
    assert connector.description == f"{marker(STACK_ID, 'QualysConnector')} {special}"


def test_given_external_id_is_used(provider: Provider, qualys: QualysSimulator) -> None:
    answer = provider.send(create_event(ExternalId="my-external-id"))

    assert answer.data["ExternalId"] == "my-external-id"
    assert qualys.connectors()[0].external_id == "my-external-id"


def test_foreign_connector_with_the_same_name_is_never_adopted(
    provider: Provider, qualys: QualysSimulator
) -> None:
    foreign = qualys.seed(name=NAME, description="made by hand", external_id="theirs")

    created_id = create(provider)

    assert created_id != str(foreign.id)
    assert len(qualys.connectors()) == 2
    assert qualys.connector(foreign.id) == foreign


def test_foreign_connector_is_not_updated(provider: Provider, qualys: QualysSimulator) -> None:
    foreign = qualys.seed(name=NAME, description="made by hand")

    answer = provider.send(followup("connector_update", str(foreign.id)))

    assert answer.status == "FAILED"
    assert "not created by this stack" in answer.reason
    assert qualys.connector(foreign.id) == foreign


def test_foreign_connector_is_not_deleted_but_the_stack_can_go(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver
) -> None:
    foreign = qualys.seed(name=NAME, description="made by hand")

    answer = provider.send(followup("connector_delete", str(foreign.id)))

    assert answer.status == "SUCCESS"
    assert qualys.connector(foreign.id) == foreign
    assert "not created by this stack" in last_slack(slack)


def test_connector_of_another_stack_with_the_same_logical_id_is_left_alone(
    provider: Provider, qualys: QualysSimulator
) -> None:
    other_stack = STACK_ID.replace("0f9e9f60", "11111111")
    other = qualys.seed(name=NAME, description=marker(other_stack, "QualysConnector"))

    answer = provider.send(followup("connector_delete", str(other.id)))

    assert answer.status == "SUCCESS"
    assert qualys.connector(other.id) is not None


def test_update_after_deletion_outside_cloudformation_fails_clearly(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created_id = create(provider)
    qualys.remove(int(created_id))

    answer = provider.send(followup("connector_update", created_id))

    assert answer.status == "FAILED"
    assert answer.physical_resource_id == created_id
    assert f"Connector {created_id} no longer exists in Qualys" in answer.reason
    assert qualys.connectors() == []


def test_update_changes_in_place_and_keeps_external_id(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created = provider.send(create_event())

    answer = provider.send(
        followup(
            "connector_update",
            created.physical_resource_id,
            ConnectorName="renamed",
            Description="new words",
            DefaultTagIds=["7"],
        )
    )

    assert answer.status == "SUCCESS", answer.reason
    assert answer.physical_resource_id == created.physical_resource_id
    assert answer.data["ExternalId"] == created.data["ExternalId"]
    assert answer.data["ConnectorName"] == "renamed"
    (connector,) = qualys.connectors()
    assert connector.name == "renamed"
    assert connector.description == f"{marker(STACK_ID, 'QualysConnector')} new words"
    assert connector.default_tag_ids == (7,)
    assert connector.external_id == created.data["ExternalId"]


def test_update_of_external_id_property_changes_it(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created_id = create(provider)

    answer = provider.send(followup("connector_update", created_id, ExternalId="rotated-id"))

    assert answer.data["ExternalId"] == "rotated-id"
    assert qualys.connectors()[0].external_id == "rotated-id"


def test_rollback_update_with_swapped_properties_restores_the_connector(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created_id = create(provider)
    forward = followup("connector_update", created_id)
    provider.send(forward)
    rollback = followup("connector_update", created_id)
    rollback["ResourceProperties"], rollback["OldResourceProperties"] = (
        forward["OldResourceProperties"],
        forward["ResourceProperties"],
    )

    answer = provider.send(rollback)

    assert answer.status == "SUCCESS", answer.reason
    (connector,) = qualys.connectors()
    assert connector.activation_modules == ("VM",)
    assert connector.all_regions is True
    assert connector.run_frequency == 240


def test_rollback_update_after_an_invalid_update_succeeds(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created_id = create(provider)
    forward = followup("connector_update", created_id, RunFrequencyMinutes="5")
    assert provider.send(forward).status == "FAILED"
    rollback = followup("connector_update", created_id)
    rollback["ResourceProperties"], rollback["OldResourceProperties"] = (
        forward["OldResourceProperties"],
        forward["ResourceProperties"],
    )

    assert provider.send(rollback).status == "SUCCESS"


def test_delete_twice_answers_success_both_times(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created_id = create(provider)
    event = followup("connector_delete", created_id)

    first = provider.send(event)
    provider.new_container()
    second = provider.send(event)

    assert first.status == second.status == "SUCCESS"
    assert qualys.connectors() == []


def test_failed_create_then_rollback_delete_leaves_nothing(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver
) -> None:
    failed = provider.send(create_event(RunFrequencyMinutes="10"))

    assert failed.status == "FAILED"
    assert "RunFrequencyMinutes" in failed.reason
    assert not failed.physical_resource_id.isdigit()

    rollback = provider.send(followup("connector_delete", failed.physical_resource_id))

    assert rollback.status == "SUCCESS"
    assert qualys.connectors() == []
    texts = [m["text"] for m in slack.messages]
    assert len(texts) == 1, "the rollback of a Create that made nothing posts nothing"
    assert texts[0].startswith("Qualys connector failed")


def test_delete_with_an_id_cloudformation_made_up_deletes_nothing(
    provider: Provider, qualys: QualysSimulator
) -> None:
    other = qualys.seed(name=NAME, description="someone else's")

    answer = provider.send(followup("connector_delete", "qualys-connector-QualysConnector-1XYZ"))

    assert answer.status == "SUCCESS"
    assert qualys.connectors() == [other]


def test_replacement_delete_of_a_stale_id_deletes_only_that_connector(
    provider: Provider, qualys: QualysSimulator
) -> None:
    created_id = create(provider)

    answer = provider.send(followup("connector_delete", "999999"))

    assert answer.status == "SUCCESS"
    assert [c.id for c in qualys.connectors()] == [int(created_id)]


@pytest.mark.parametrize(
    ("case", "properties", "property_name"),
    [
        ("no name", {"ConnectorName": ""}, "ConnectorName"),
        ("long name", {"ConnectorName": "n" * 256}, "ConnectorName"),
        ("long description", {"Description": "d" * 701}, "Description"),
        ("all regions word", {"AllRegions": "maybe"}, "AllRegions"),
        ("regions with all regions", {"Regions": ["eu-west-1"]}, "Regions"),
        ("no regions", {"AllRegions": "false"}, "Regions"),
        ("bad region", {"AllRegions": "false", "Regions": ["mars-1"]}, "Regions"),
        ("bad module", {"ActivationModules": ["VM", "EDR"]}, "ActivationModules"),
        ("frequency", {"RunFrequencyMinutes": "1500"}, "RunFrequencyMinutes"),
        ("tag", {"DefaultTagIds": ["tag-1"]}, "DefaultTagIds"),
        ("external id", {"ExternalId": "no spaces allowed"}, "ExternalId"),
        ("typo", {"Regoins": ["eu-west-1"]}, "Regoins"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_property_fails_before_any_call_to_qualys(  # noqa: PLR0917
    provider: Provider,
    qualys: QualysSimulator,
    slack: SlackReceiver,
    case: str,
    properties: dict[str, Any],
    property_name: str,
) -> None:
    answer = provider.send(create_event(**properties))

    assert answer.status == "FAILED", case
    assert answer.reason.startswith(f"Property {property_name} "), answer.reason
    assert qualys.requests == [], "no call may reach Qualys"
    assert last_slack(slack).startswith("Qualys connector failed")


def test_unknown_resource_type_fails_create_and_update_but_not_delete(
    provider: Provider, qualys: QualysSimulator
) -> None:
    event = create_event()
    event["ResourceType"] = "Custom::QualysSomething"
    update = followup("connector_update", "1")
    update["ResourceType"] = "Custom::QualysSomething"
    delete = followup("connector_delete", "1")
    delete["ResourceType"] = "Custom::QualysSomething"

    assert "Unsupported ResourceType" in provider.send(event).reason
    assert provider.send(update).status == "FAILED"
    assert provider.send(delete).status == "SUCCESS"
    assert qualys.requests == []
