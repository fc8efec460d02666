"""The central mode deployed in the sandbox: templates/qualys-connector-central.yaml in the
central account, member stacks of templates/qualys-connector.yaml pointing at it, every
request through moto's SNS and SQS to the one provider function (design section 9)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from sandbox import org_demo
from sandbox.aws import CENTRAL_ACCOUNT_ID, Sandbox, StackView
from sandbox.cloudformation.engine import as_account

MEMBER = "210000000001"
OTHER_MEMBER = "210000000002"
STACK = "qualys-connector"
CENTRAL_MODE = org_demo.MEMBER_NEEDS_NONE


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(simulator_options={"concurrency_limit": 2, "latency": 0.05}) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def central(box: Sandbox) -> StackView:
    return box.deploy_central(QualysConcurrencyLimit="2")


@pytest.fixture(scope="module")
def member(box: Sandbox, central: StackView) -> StackView:
    token = central.outputs["ProviderServiceToken"]
    return box.deploy(STACK, {"ProviderServiceToken": token, **CENTRAL_MODE}, account_id=MEMBER)


def _queue_arn(box: Sandbox, central: StackView) -> str:
    with as_account(CENTRAL_ACCOUNT_ID):
        sns = boto3.client("sns", region_name=box.region)
        topic = central.outputs["ProviderServiceToken"]
        (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    return str(subscription["Endpoint"])


def test_the_central_stack_subscribes_its_queue_with_raw_delivery(
    box: Sandbox, central: StackView
) -> None:
    assert central.status == "CREATE_COMPLETE"
    with as_account(CENTRAL_ACCOUNT_ID):
        sns = boto3.client("sns", region_name=box.region)
        topic = central.outputs["ProviderServiceToken"]
        (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        attributes = sns.get_subscription_attributes(
            SubscriptionArn=subscription["SubscriptionArn"]
        )["Attributes"]
    assert subscription["Protocol"] == "sqs"
    assert (
        subscription["Endpoint"].split(":")[-1]
        == central.outputs["ProviderQueueUrl"].rsplit("/", 1)[1]
    )
    assert attributes["RawMessageDelivery"] == "true"


def test_the_queue_feeds_the_provider_one_request_at_a_time_within_qualyss_limit(
    box: Sandbox, central: StackView
) -> None:
    with as_account(CENTRAL_ACCOUNT_ID):
        (mapping,) = boto3.client("lambda", region_name=box.region).list_event_source_mappings(
            EventSourceArn=_queue_arn(box, central)
        )["EventSourceMappings"]
    assert mapping["FunctionArn"] == central.outputs["ProviderFunctionArn"]
    assert mapping["BatchSize"] == 1
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_moto_leaves_the_queue_to_the_sandboxs_event_source_mapping(
    box: Sandbox, central: StackView
) -> None:
    # moto would invoke the function inside SendMessage, with a SentTimestamp of 2018, and
    # delete the message whatever the function answered.
    before = len(box.runtime.invocations)
    with as_account(CENTRAL_ACCOUNT_ID):
        sqs = boto3.client("sqs", region_name=box.region)
        url = central.outputs["ProviderQueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="not a request")
        messages = sqs.receive_message(QueueUrl=url).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(box.runtime.invocations) == before
    assert [m["Body"] for m in messages] == ["not a request"]


def test_a_member_stack_in_central_mode_gets_its_connector_from_the_central_provider(
    box: Sandbox, central: StackView, member: StackView
) -> None:
    assert member.status == "CREATE_COMPLETE"
    connector = box.qualys.connector(int(member.outputs["ConnectorId"]))
    assert connector is not None
    assert not connector.disabled
    assert connector.arn == member.outputs["RoleArn"]
    trust = box.role_trust_policy(member.outputs["RoleArn"])["Statement"][0]
    assert trust["Principal"]["AWS"] == f"arn:aws:iam::{connector.qualys_aws_account_id}:root"
    assert trust["Condition"]["StringEquals"]["sts:ExternalId"] == connector.external_id
    answered = [e for e in box.engine.events if e.stack_id == member.stack_id]
    assert [(e.logical_id, e.outcome.status) for e in answered] == [
        ("QualysConnector", "SUCCESS"),
        ("QualysConnectorActivation", "SUCCESS"),
    ]
    assert all(
        e.properties["ServiceToken"] == central.outputs["ProviderServiceToken"] for e in answered
    )
    assert not box.engine.anomalies


def test_a_member_stack_in_central_mode_has_no_provider_of_its_own(
    box: Sandbox, member: StackView
) -> None:
    with as_account(MEMBER):
        functions = boto3.client("lambda", region_name=box.region).list_functions()["Functions"]
        iam = boto3.client("iam", region_name=box.region)
        roles = [role["RoleName"] for role in iam.list_roles()["Roles"]]
    assert functions == []
    assert roles == [member.outputs["RoleArn"].rsplit("/", 1)[1]]


def test_every_request_reaches_the_central_function_as_an_sqs_event(
    box: Sandbox, central: StackView, member: StackView
) -> None:
    invoked = {invocation.function_arn for invocation in box.runtime.invocations}
    assert invoked == {central.outputs["ProviderFunctionArn"]}
    # An SQS event has Records, no RequestType of its own.
    assert all(invocation.request_type is None for invocation in box.runtime.invocations)
    assert not any(invocation.errored for invocation in box.runtime.invocations)


def test_deleting_a_member_stack_deletes_its_connector_through_the_queue(
    box: Sandbox, central: StackView
) -> None:
    token = central.outputs["ProviderServiceToken"]
    view = box.deploy(
        STACK, {"ProviderServiceToken": token, **CENTRAL_MODE}, account_id=OTHER_MEMBER
    )
    connector_id = int(view.outputs["ConnectorId"])
    delivered = sum(mapping.invocations for mapping in box.topics.mappings)

    box.delete(STACK, account_id=OTHER_MEMBER)

    assert box.qualys.connector(connector_id) is None
    deletes = [
        e for e in box.engine.events if e.stack_id == view.stack_id and e.request_type == "Delete"
    ]
    assert [(e.logical_id, e.outcome.status) for e in deletes] == [
        ("QualysConnectorActivation", "SUCCESS"),
        ("QualysConnector", "SUCCESS"),
    ]
    assert sum(mapping.invocations for mapping in box.topics.mappings) == delivered + 2
