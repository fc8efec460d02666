"""The whole life of a stack's two custom resources, through crhelper's real send path."""

from __future__ import annotations

from typing import Any

from conftest import QUALYS_ACCOUNT, Provider, load_event
from sandbox.qualys import QualysSimulator
from sandbox.slack import SlackReceiver

ROLE = "arn:aws:iam::123456789012:role/qualys-connector-QualysRole-1A2B3C4D5E6F"


def with_id(name: str, connector_id: str) -> dict[str, Any]:
    event = load_event(name)
    if "PhysicalResourceId" in event:
        suffix = "/activation" if "activation" in name else ""
        event["PhysicalResourceId"] = connector_id + suffix
    if "ConnectorId" in event["ResourceProperties"]:
        event["ResourceProperties"]["ConnectorId"] = connector_id
    return event


def outcomes(slack: SlackReceiver) -> list[str]:
    return [m["text"].split(":")[0] for m in slack.messages]


def test_create_activate_update_deactivate_delete(
    provider: Provider, qualys: QualysSimulator, slack: SlackReceiver
) -> None:
    created = provider.send(load_event("connector_create"))

    assert created.status == "SUCCESS", created.reason
    connector_id = created.physical_resource_id
    assert connector_id.isdigit()
    assert created.data["ConnectorId"] == connector_id
    assert created.data["ConnectorName"] == "aws-123456789012"
    assert created.data["QualysAwsAccountId"] == QUALYS_ACCOUNT
    assert len(created.data["ExternalId"]) >= 32
    (connector,) = qualys.connectors()
    assert connector.disabled is True
    assert connector.arn is None
    assert connector.external_id == created.data["ExternalId"]
    assert connector.description is not None
    assert connector.description.endswith("] Member account created by AWS Control Tower")

    activated = provider.send(with_id("activation_create", connector_id))

    assert activated.status == "SUCCESS", activated.reason
    assert activated.physical_resource_id == f"{connector_id}/activation"
    assert activated.data["ConnectorState"] not in {"ERROR", "DISABLED"}
    connector = qualys.connectors()[0]
    assert connector.disabled is False
    assert connector.arn == ROLE

    updated = provider.send(with_id("connector_update", connector_id))

    assert updated.status == "SUCCESS", updated.reason
    assert updated.physical_resource_id == connector_id
    assert updated.data["ExternalId"] == created.data["ExternalId"]
    connector = qualys.connectors()[0]
    assert connector.activation_modules == ("VM", "PC")
    assert connector.all_regions is False
    assert set(connector.regions) == {"eu-west-1", "eu-central-1"}
    assert connector.run_frequency == 360
    assert connector.disabled is False, "an update must keep the connector enabled"
    assert connector.arn == ROLE, "an update must keep the role"

    deactivated = provider.send(with_id("activation_delete", connector_id))

    assert deactivated.status == "SUCCESS", deactivated.reason
    assert qualys.connectors()[0].disabled is True

    deleted = provider.send(with_id("connector_delete", connector_id))

    assert deleted.status == "SUCCESS", deleted.reason
    assert qualys.connectors() == []
    assert outcomes(slack) == [
        "Qualys connector created",
        "Qualys connector activated",
        "Qualys connector updated",
        "Qualys connector deactivated",
        "Qualys connector deleted",
    ]
