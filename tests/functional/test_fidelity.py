"""Fidelity to the real Qualys: what a connector does, its account type, and ownership that
survives the Qualys UI, a scope-limited user, slow calls and a change of API version."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import PASSWORD, USERNAME, Provider, load_event
from sandbox.qualys import QualysSimulator
from sandbox.slack import SlackReceiver

ROLE = "arn:aws:iam::123456789012:role/qualys-connector-eu-west-1"
GOV_QUALYS_ACCOUNT = "222233334444"


def create_event(stack_partition: str = "aws", **properties: Any) -> dict[str, Any]:
    event = load_event("connector_create")
    event["StackId"] = event["StackId"].replace("arn:aws:", f"arn:{stack_partition}:", 1)
    event["ResourceProperties"].update(properties)
    return event


def followup(name: str, event: dict[str, Any], physical_id: str) -> dict[str, Any]:
    followed = load_event(name)
    followed["StackId"] = event["StackId"]
    followed["PhysicalResourceId"] = physical_id
    if name.startswith("connector"):
        followed["ResourceProperties"] = event["ResourceProperties"]
    return followed


def slack_blocks(slack: SlackReceiver) -> str:
    return str(slack.wait_for(1)[-1]["attachments"][0]["blocks"])


@pytest.mark.parametrize(
    ("case", "applications", "expected"),
    [
        pytest.param("asset inventory", "AI", ("AI",), id="asset-inventory"),
        pytest.param("cspm", "AI,CI,CSA", ("AI", "CI", "CSA"), id="cspm"),
    ],
)
def test_a_connector_does_what_its_applications_say_each_naming_the_role(
    provider: Provider,
    qualys: QualysSimulator,
    case: str,
    applications: str,
    expected: tuple[str, ...],
) -> None:
    answer = provider.send(create_event(Applications=applications, RoleArn=ROLE))

    assert answer.status == "SUCCESS", answer.reason
    (connector,) = qualys.connectors()
    assert connector.application_names == expected, case
    assert {identifier for _, identifier in connector.applications} == {ROLE}, case
    assert connector.arn == ROLE, f"{case}: the role ARN is sent at create"
    assert connector.disabled is True, f"{case}: still disabled until the activation"


def test_a_generated_external_id_is_40_digits(provider: Provider, qualys: QualysSimulator) -> None:
    answer = provider.send(create_event())

    assert answer.status == "SUCCESS", answer.reason
    external_id = answer.data["ExternalId"]
    assert len(external_id) == 40
    assert external_id.isascii()
    assert external_id.isdigit()


@pytest.mark.parametrize(
    ("partition", "account_type", "option"),
    [
        pytest.param("aws-us-gov", "GOVCLOUD", "gov_cloud_qualys_account_id", id="govcloud"),
        pytest.param("aws-cn", "CHINA", "china_qualys_account_id", id="china"),
    ],
)
def test_a_stack_in_another_partition_gets_a_connector_of_its_account_type(
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
    partition: str,
    account_type: str,
    option: str,
) -> None:
    with QualysSimulator(users={USERNAME: PASSWORD}, **{option: GOV_QUALYS_ACCOUNT}) as sim:
        monkeypatch.setenv("QUALYS_API_URL", sim.base_url)
        provider.new_container()

        answer = provider.send(create_event(partition))

        assert answer.status == "SUCCESS", answer.reason
        (connector,) = sim.connectors()
        assert connector.account_type == account_type
        assert answer.data["QualysAwsAccountId"] == GOV_QUALYS_ACCOUNT


@pytest.mark.parametrize(
    ("case", "gov_account", "words"),
    [
        pytest.param(
            "commercial account reported",
            "805950163170",
            "commercial AWS account",
            id="commercial-reported",
        ),
        pytest.param(
            "none reported, no setting",
            None,
            "QUALYS_AWS_ACCOUNT_ID to Qualys's GovCloud account",
            id="none-reported",
        ),
    ],
)
def test_a_govcloud_connector_qualys_cannot_serve_fails_and_is_removed(
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    gov_account: str | None,
    words: str,
) -> None:
    with QualysSimulator(
        users={USERNAME: PASSWORD}, gov_cloud_qualys_account_id=gov_account
    ) as sim:
        monkeypatch.setenv("QUALYS_API_URL", sim.base_url)
        provider.new_container()
        event = create_event("aws-us-gov")

        failed = provider.send(event)
        rollback = provider.send(followup("connector_delete", event, failed.physical_resource_id))

        assert failed.status == "FAILED", case
        assert words in failed.reason, case
        assert failed.physical_resource_id.isdigit(), f"{case}: the real id, for the rollback"
        assert rollback.status == "SUCCESS", case
        assert sim.connectors() == [], f"{case}: the rollback removed it"


def test_a_connector_whose_marker_was_edited_in_the_ui_is_still_deleted_with_a_warning(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver
) -> None:
    event = create_event(RoleArn=ROLE)
    created = provider.send(event)
    connector_id = int(created.physical_resource_id)
    qualys.modify(connector_id, description="Production account (edited in the Qualys UI)")

    deleted = provider.send(followup("connector_delete", event, created.physical_resource_id))

    assert deleted.status == "SUCCESS", deleted.reason
    assert qualys.connectors() == [], "deleted by its id and its role in the stack's account"
    assert "ownership marker was gone" in slack_blocks(slack)


def test_a_connector_hidden_by_the_users_scope_answers_success_with_an_orphan_warning(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver
) -> None:
    event = create_event()
    created = provider.send(event)
    qualys.hide(int(created.physical_resource_id))

    deleted = provider.send(followup("connector_delete", event, created.physical_resource_id))

    assert deleted.status == "SUCCESS", "a stack can always be deleted"
    (orphan,) = qualys.connectors()
    assert orphan.hidden, "Qualys still holds it"
    assert "scope hides it" in slack_blocks(slack)


def test_a_description_cut_short_by_qualys_keeps_the_connector_owned(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    with QualysSimulator(users={USERNAME: PASSWORD}, description_limit=60) as sim:
        monkeypatch.setenv("QUALYS_API_URL", sim.base_url)
        provider.new_container()
        event = create_event(Description="d" * 600)

        created = provider.send(event)
        updated = provider.send(followup("connector_update", event, created.physical_resource_id))

        assert created.status == updated.status == "SUCCESS", updated.reason
        (connector,) = sim.connectors()
        assert connector.description is not None
        assert len(connector.description) == 60, "Qualys kept only the first 60 characters"


def test_calls_of_tens_of_seconds_fit_a_one_minute_event(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One recorded search took 17.3 s.
    with QualysSimulator(users={USERNAME: PASSWORD}, latency={"search": 17.0, "*": 1.0}) as sim:
        monkeypatch.setenv("QUALYS_API_URL", sim.base_url)
        provider.new_container(safety_margin=10.0)  # the production margin

        answer = provider.send(create_event(), remaining_ms=60_000)

        assert answer.status == "SUCCESS", answer.reason
        assert len(sim.connectors()) == 1


def test_an_update_under_another_api_version_changes_the_same_connector(
    provider: Provider, qualys: QualysSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = create_event()
    created = provider.send(event)
    monkeypatch.setenv("QUALYS_API_VERSION", "2.0")
    provider.new_container()

    update = followup("connector_update", event, created.physical_resource_id)
    update["ResourceProperties"] = {**event["ResourceProperties"], "Description": "via 2.0"}
    updated = provider.send(update)

    assert updated.status == "SUCCESS", updated.reason
    assert updated.physical_resource_id == created.physical_resource_id
    (connector,) = qualys.connectors()
    assert connector.description is not None
    assert connector.description.endswith(" via 2.0")
