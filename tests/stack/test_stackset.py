"""Deploys the template as CfCT does: a self-managed StackSet with instances in two accounts.

moto creates each instance as a real stack in its target account, so each account runs its
own provider function, gets its own connector and its own role. The parameters are the
same for every instance (CfCT passes no account id): the template must be account-agnostic.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from sandbox.aws import QUALYS_ACCOUNT_ID, Sandbox, StackView
from sandbox.cloudformation.engine import as_account

STACK_SET = "CustomControlTower-qualys-connector"
ACCOUNTS = ("111111111111", "222222222222")


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def instances(box: Sandbox) -> list[StackView]:
    return box.create_stack_set(STACK_SET, ACCOUNTS)


def test_each_account_gets_its_own_active_connector(
    box: Sandbox, instances: list[StackView]
) -> None:
    connectors = {c.aws_account_id: c for c in box.qualys.connectors()}

    assert sorted(connectors) == sorted(ACCOUNTS)
    for view in instances:
        connector = connectors[view.account_id]
        assert view.status == "CREATE_COMPLETE", view.account_id
        assert view.outputs["ConnectorId"] == str(connector.id)
        assert connector.name == f"aws-{view.account_id}"
        assert connector.arn == view.outputs["RoleArn"]
        assert connector.arn.startswith(f"arn:aws:iam::{view.account_id}:role/")
        assert not connector.disabled
        assert connector.connector_state != "ERROR", connector.last_error
    assert box.engine.anomalies == []


def test_each_role_trusts_qualys_with_its_own_connectors_external_id(
    box: Sandbox, instances: list[StackView]
) -> None:
    connectors = {c.aws_account_id: c for c in box.qualys.connectors()}
    external_ids = {view.outputs["ExternalId"] for view in instances}

    assert len(external_ids) == len(ACCOUNTS), "each connector has its own external ID"
    for view in instances:
        statement = box.role_trust_policy(view.outputs["RoleArn"])["Statement"][0]
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{QUALYS_ACCOUNT_ID}:root"}
        assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == (
            connectors[view.account_id].external_id
        )


def test_instances_share_the_parameters_and_name_no_account(instances: list[StackView]) -> None:
    first, second = (view.parameters for view in instances)

    assert first == second
    assert not any(account in value for account in ACCOUNTS for value in first.values())


def test_deleting_the_instances_removes_both_connectors(
    box: Sandbox, instances: list[StackView]
) -> None:
    box.delete_stack_instances(STACK_SET, ACCOUNTS)

    assert box.qualys.connectors() == []
    deletes = [
        (e.stack_id.split(":")[4], e.logical_id)
        for e in box.engine.events
        if e.request_type == "Delete"
    ]
    assert sorted(deletes) == sorted(
        (account, logical)
        for account in ACCOUNTS
        for logical in ("QualysConnectorActivation", "QualysConnector")
    )


def test_removing_one_account_leaves_the_other_connector(
    box: Sandbox, instances: list[StackView]
) -> None:
    box.delete_stack_instances(STACK_SET, ACCOUNTS[:1])

    remaining = box.qualys.connectors()
    assert [c.aws_account_id for c in remaining] == [ACCOUNTS[1]]
    assert not remaining[0].disabled


def test_a_stack_set_in_two_regions_makes_one_connector_per_account(box: Sandbox) -> None:
    other = "eu-central-1" if box.region != "eu-central-1" else "eu-west-1"
    views = box.create_stack_set(
        STACK_SET, ACCOUNTS, {"ConnectorRegion": box.region}, regions=[box.region, other]
    )

    connectors = box.qualys.connectors()
    assert sorted(c.aws_account_id for c in connectors) == sorted(ACCOUNTS)
    for connector in connectors:
        assert not connector.disabled
        assert connector.connector_state != "ERROR", connector.last_error
    assert {(v.account_id, v.region, v.status) for v in views} == {
        (account, region, "CREATE_COMPLETE")
        for account in ACCOUNTS
        for region in (box.region, other)
    }
    elsewhere = [view for view in views if view.region == other]
    assert all(view.outputs == {} and view.custom_resources == {} for view in elsewhere)
    for account in ACCOUNTS:
        with as_account(account):
            functions = boto3.client("lambda", region_name=other).list_functions()["Functions"]
            roles = boto3.client("iam").list_roles()["Roles"]
        assert functions == [], "no provider outside ConnectorRegion"
        assert len([r for r in roles if r["RoleName"].startswith("qualys-connector-")]) == 2

    box.delete_stack_instances(STACK_SET, ACCOUNTS, regions=[box.region, other])
    assert box.qualys.connectors() == []
