"""The connector template deployed as a GovCloud and as a China stack in the sandbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import ResourceMap
from sandbox_fixtures import slack_texts

from sandbox.aws import QUALYS_ACCOUNT_ID, Sandbox, StackView
from sandbox.cloudformation.engine import StackOperationError
from sandbox.iam_check import MotoRoleChecker
from sandbox.qualys import SimConnector

STACK = "qualys-connector"
MEMBER_ACCOUNT = "111111111111"
# Stand-ins: Qualys's real GovCloud and China accounts are not published (README).
GOV_CLOUD_QUALYS_ACCOUNT_ID = "210987654321"
CHINA_QUALYS_ACCOUNT_ID = "310987654321"
SYNC_TIMEOUT = 5.0


@dataclass(frozen=True)
class Partition:
    """A partition the template must deploy into, and what Qualys has for it."""

    region: str
    name: str
    account_type: str
    qualys_account_id: str
    simulator_option: str


GOV_CLOUD = Partition(
    "us-gov-west-1",
    "aws-us-gov",
    "GOVCLOUD",
    GOV_CLOUD_QUALYS_ACCOUNT_ID,
    "gov_cloud_qualys_account_id",
)
CHINA = Partition(
    "cn-north-1", "aws-cn", "CHINA", CHINA_QUALYS_ACCOUNT_ID, "china_qualys_account_id"
)
PARTITIONS = [pytest.param(GOV_CLOUD, id="govcloud"), pytest.param(CHINA, id="china")]


def _sandbox(partition: Partition, **simulator_options: Any) -> Sandbox:
    # Qualys's sync assumes the role from the account of the connector's type, as real
    # Qualys does; the simulator reports the same account unless a test says otherwise.
    options: dict[str, Any] = {
        "gov_cloud_qualys_account_id": GOV_CLOUD_QUALYS_ACCOUNT_ID,
        "china_qualys_account_id": CHINA_QUALYS_ACCOUNT_ID,
        "role_checker": MotoRoleChecker(
            QUALYS_ACCOUNT_ID,
            gov_cloud_account_id=GOV_CLOUD_QUALYS_ACCOUNT_ID,
            china_account_id=CHINA_QUALYS_ACCOUNT_ID,
        ),
        **simulator_options,
    }
    return Sandbox(region=partition.region, simulator_options=options)


@pytest.fixture(params=PARTITIONS)
def partition(request: pytest.FixtureRequest) -> Partition:
    value: Partition = request.param
    return value


@pytest.fixture
def box(partition: Partition) -> Iterator[Sandbox]:
    with _sandbox(partition) as sandbox:
        yield sandbox


@pytest.fixture
def deployed(box: Sandbox) -> StackView:
    return box.deploy(STACK, {"PermissionSet": "CSPM"}, account_id=MEMBER_ACCOUNT)


def _only_connector(box: Sandbox) -> SimConnector:
    connectors = box.qualys.connectors()
    assert len(connectors) == 1, f"expected one connector, found {connectors}"
    return connectors[0]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _synced(box: Sandbox, connector_id: int) -> SimConnector:
    ends = time.monotonic() + SYNC_TIMEOUT
    while True:
        connector = box.qualys.connector(connector_id)
        assert connector is not None
        if connector.connector_state not in ("QUEUED", "PROCESSING") or time.monotonic() > ends:
            return connector
        time.sleep(0.05)


def test_stack_id_and_every_arn_the_template_builds_carry_the_partition(
    box: Sandbox, deployed: StackView, partition: Partition
) -> None:
    role_arn = deployed.outputs["RoleArn"]
    provider_policy = box.role_permissions(deployed, "ProviderFunctionRole").inline_policies
    # The provider's own logs, secrets and key, each an ARN the template builds.
    resources = [
        resource
        for statement in provider_policy["provider"]["Statement"]
        for resource in _as_list(statement["Resource"])
    ]
    connector_create = next(
        e
        for e in box.engine.events
        if (e.request_type, e.logical_id) == ("Create", "QualysConnector")
    )

    assert deployed.status == "CREATE_COMPLETE"
    assert deployed.stack_id.startswith(f"arn:{partition.name}:cloudformation:{partition.region}:")
    assert (
        role_arn
        == f"arn:{partition.name}:iam::{MEMBER_ACCOUNT}:role/qualys-connector-{partition.region}"
    )
    assert box.role_permissions(deployed).managed_policy_arns == (
        f"arn:{partition.name}:iam::aws:policy/SecurityAudit",
    )
    assert resources, provider_policy
    assert all(r.startswith(f"arn:{partition.name}:") for r in resources), resources
    # Built with ${AWS::Partition} before the role exists: it must be the role's real ARN.
    assert connector_create.properties["RoleArn"] == role_arn


def test_connector_has_the_partitions_account_type_and_the_role_trusts_its_qualys_account(
    box: Sandbox, deployed: StackView, partition: Partition
) -> None:
    connector = _only_connector(box)
    statement = box.role_trust_policy(deployed.outputs["RoleArn"])["Statement"][0]

    assert connector.account_type == partition.account_type
    assert connector.qualys_aws_account_id == partition.qualys_account_id
    assert deployed.outputs["QualysAwsAccountId"] == partition.qualys_account_id
    assert statement["Principal"] == {
        "AWS": f"arn:{partition.name}:iam::{partition.qualys_account_id}:root"
    }
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": connector.external_id}}
    assert connector.arn == deployed.outputs["RoleArn"]
    assert connector.applications == tuple((app, connector.arn) for app in ("AI", "CI", "CSA"))


def test_first_sync_assumes_the_role_from_the_partitions_qualys_account(
    box: Sandbox, deployed: StackView
) -> None:
    connector = _synced(box, int(deployed.outputs["ConnectorId"]))

    assert deployed.outputs["ConnectorState"] in ("QUEUED", "PROCESSING")
    assert connector.connector_state == "FINISHED_SUCCESS", connector.last_error
    assert connector.last_sync is not None


def test_update_keeps_the_account_type_and_delete_leaves_no_connector(
    box: Sandbox, deployed: StackView, partition: Partition
) -> None:
    updated = box.update(STACK, {"ActivationModules": "VM,PC"}, account_id=MEMBER_ACCOUNT)
    after_update = _only_connector(box)

    box.delete(STACK, account_id=MEMBER_ACCOUNT)

    assert updated.status == "UPDATE_COMPLETE"
    assert str(after_update.id) == deployed.outputs["ConnectorId"]
    assert after_update.account_type == partition.account_type
    assert after_update.activation_modules == ("VM", "PC")
    assert box.qualys.connectors() == []
    texts = slack_texts(box.slack.messages)
    assert "deleted" in texts[-1].lower()
    assert all(partition.region in text for text in texts)
    assert box.engine.anomalies == []


def test_without_a_qualys_account_for_the_partition_the_stack_rolls_back(
    partition: Partition,
) -> None:
    # The simulator knows no account of this type: the connector reports none.
    with _sandbox(partition, **{partition.simulator_option: None}) as box:
        with pytest.raises(StackOperationError) as failure:
            box.deploy(STACK, account_id=MEMBER_ACCOUNT)

        assert failure.value.logical_id == "QualysConnector"
        assert failure.value.status == "ROLLBACK_COMPLETE"
        assert "QUALYS_AWS_ACCOUNT_ID" in failure.value.reason
        assert box.qualys.connectors() == []


def test_the_fallback_account_parameter_serves_a_partition_qualys_reports_none_for(
    partition: Partition,
) -> None:
    with _sandbox(partition, **{partition.simulator_option: None}) as box:
        view = box.deploy(
            STACK, {"QualysAwsAccountId": partition.qualys_account_id}, account_id=MEMBER_ACCOUNT
        )
        statement = box.role_trust_policy(view.outputs["RoleArn"])["Statement"][0]
        connector = _synced(box, int(view.outputs["ConnectorId"]))

        assert view.status == "CREATE_COMPLETE"
        assert statement["Principal"] == {
            "AWS": f"arn:{partition.name}:iam::{partition.qualys_account_id}:root"
        }
        assert connector.account_type == partition.account_type
        assert connector.connector_state == "FINISHED_SUCCESS", connector.last_error
        box.delete(STACK, account_id=MEMBER_ACCOUNT)
        assert box.qualys.connectors() == []


# --- the moto behaviour the sandbox works around (a failure: moto changed, drop the fix) ---


@pytest.mark.parametrize(
    ("region", "name"), [("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")]
)
def test_moto_still_gives_every_stack_the_commercial_partition(region: str, name: str) -> None:
    with mock_aws():
        stack_id = f"arn:{name}:cloudformation:{region}:{MEMBER_ACCOUNT}:stack/s/1"
        resources = ResourceMap(
            stack_id, "s", {}, {}, region, MEMBER_ACCOUNT, {"Resources": {}}, None
        )

        assert resources["AWS::Partition"] == "aws"


def test_moto_still_files_govcloud_iam_calls_under_the_commercial_partition() -> None:
    with mock_aws():
        role = boto3.client("iam", region_name="us-gov-west-1").create_role(
            RoleName="r", AssumeRolePolicyDocument="{}"
        )["Role"]

        assert role["Arn"].startswith("arn:aws:iam::")
