"""``make demo-org``: the central provider serving a StackSet of member stacks, each step checked.

The central account deploys templates/qualys-connector-central.yaml (topic, queue, event
source mapping, provider function); a self-managed StackSet deploys the member template
with ``ProviderServiceToken`` into five accounts, whose stacks then hold only the
connector, the role and the activation. Every request goes through moto's SNS and SQS to
the one provider function, against a Qualys simulator with a Standard subscription's
limits (2 concurrent calls, each taking a while).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import boto3

from sandbox.aws import CENTRAL_ACCOUNT_ID, Sandbox, StackView
from sandbox.cloudformation.engine import as_account
from sandbox.qualys import SimConnector
from sandbox.steps import StepReport

STACK_SET: Final = "qualys-connector"
CENTRAL_STACK: Final = "qualys-connector-central"
ACCOUNTS: Final = tuple(f"{300_000_000_000 + n:012d}" for n in range(1, 6))
#: A Standard subscription: two calls at once; each call takes this long.
CONCURRENCY_LIMIT: Final = 2
LATENCY: Final = 0.2
STEPS: Final = 5
#: What a member stack leaves empty in central mode: no code, no secret, no key.
MEMBER_NEEDS_NONE: Final = {
    "CodeS3Bucket": "",
    "CodeS3Key": "",
    "QualysCredentialsSecretArn": "",
    "SecretsKmsKeyArn": "",
}
#: Slack messages per account: connector created, activated; then deleted, disabled.
SLACK_PER_CREATE: Final = 2
SLACK_PER_DELETE: Final = 2


@dataclass
class _OrgDemo:
    box: Sandbox
    report: StepReport
    token: str = ""
    function_arn: str = ""
    views: dict[str, StackView] = field(default_factory=dict)


def run(out: TextIO) -> int:
    """Run the organisation demo, writing to ``out``; 0 when every step did what it shows."""
    box = Sandbox(
        simulator_options={"concurrency_limit": CONCURRENCY_LIMIT, "latency": LATENCY},
    )
    report = StepReport(out, lambda: box.secret_values, steps=STEPS)
    demo = _OrgDemo(box, report)
    report.line("Qualys connector provider: central mode for an organisation (local sandbox)")
    report.begin(1, "start the sandbox")

    def scenario() -> None:
        with box:
            report.line(f"  Qualys simulator at {box.qualys.base_url}; AWS is moto, in-process")
            report.line(
                f"  Qualys admits {CONCURRENCY_LIMIT} calls at once, each taking {LATENCY} s"
                " (a Standard subscription)"
            )
            _central(demo)
            _rollout(demo)
            _provider_traffic(demo)
            _delete(demo)

    return report.run(
        scenario,
        name="Organisation demo",
        summary=f"{len(ACCOUNTS)} accounts onboarded and removed through one central provider.",
    )


def _central(demo: _OrgDemo) -> None:
    report, box = demo.report, demo.box
    report.begin(2, f"deploy the central provider stack {CENTRAL_STACK} ({CENTRAL_ACCOUNT_ID})")
    view = box.deploy_central(CENTRAL_STACK, QualysConcurrencyLimit=str(CONCURRENCY_LIMIT))
    demo.token = view.outputs.get("ProviderServiceToken", "")
    demo.function_arn = view.outputs.get("ProviderFunctionArn", "")
    report.wrapped("stack", view.status)
    report.wrapped("ServiceToken", demo.token)
    report.check(demo.token.startswith("arn:aws:sns:"), "no ProviderServiceToken topic output")
    with as_account(CENTRAL_ACCOUNT_ID):
        sns = boto3.client("sns", region_name=box.region)
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=demo.token)["Subscriptions"]
        report.check(len(subscriptions) == 1, f"{len(subscriptions)} subscriptions to the topic")
        attributes = sns.get_subscription_attributes(
            SubscriptionArn=subscriptions[0]["SubscriptionArn"]
        )["Attributes"]
        queue_arn = subscriptions[0]["Endpoint"]
        report.wrapped("queue", f"{queue_arn} (raw delivery {attributes['RawMessageDelivery']})")
        report.check(attributes["RawMessageDelivery"] == "true", "the queue gets SNS envelopes")
        mappings = boto3.client("lambda", region_name=box.region).list_event_source_mappings(
            EventSourceArn=queue_arn
        )["EventSourceMappings"]
    report.check(len(mappings) == 1, f"{len(mappings)} event source mappings on the queue")
    mapping = mappings[0]
    concurrency = mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
    report.wrapped(
        "mapping",
        f"BatchSize {mapping['BatchSize']}, MaximumConcurrency {concurrency},"
        f" {', '.join(mapping.get('FunctionResponseTypes', []))}",
    )
    report.wrapped("function", demo.function_arn)
    report.check(mapping["FunctionArn"] == demo.function_arn, "the queue feeds another function")
    report.check(
        concurrency == CONCURRENCY_LIMIT,
        f"MaximumConcurrency {concurrency}, not the subscription's {CONCURRENCY_LIMIT} calls",
    )


def _rollout(demo: _OrgDemo) -> None:
    report, box = demo.report, demo.box
    report.begin(
        3, f"StackSet {STACK_SET} into {len(ACCOUNTS)} accounts, with ProviderServiceToken set"
    )
    report.line("  The members' parameters name no code, no secret and no key:")
    report.wrapped("left empty", ", ".join(MEMBER_NEEDS_NONE))
    views = box.create_stack_set(
        STACK_SET,
        ACCOUNTS,
        {"ProviderServiceToken": demo.token, **MEMBER_NEEDS_NONE},
    )
    report.line(f"  {'account':<14}{'stack':<17}{'connector':<11}{'state':<18}role trusts")
    for view in views:
        demo.views[view.account_id] = view
        connector = _connector(box, view)
        trusted = _trusts(box, view, connector)
        report.line(
            f"  {view.account_id:<14}{view.status:<17}{connector.id:<11}"
            f"{('disabled' if connector.disabled else connector.connector_state):<18}{trusted}"
        )
        report.check(view.status == "CREATE_COMPLETE", f"{view.account_id}: stack {view.status}")
        report.check(not connector.disabled, f"{view.account_id}: the connector is disabled")
        report.check(
            connector.arn == view.outputs["RoleArn"],
            f"{view.account_id}: the connector does not use the stack's role",
        )
        report.check(
            trusted == f"{connector.qualys_aws_account_id} with the connector's external ID",
            f"{view.account_id}: the role does not trust the connector",
        )
        functions = _functions_in(box, view.account_id)
        report.check(not functions, f"{view.account_id}: a provider of its own: {functions}")
        readers = _secret_readers(box, view.account_id)
        report.check(not readers, f"{view.account_id}: roles that read secrets: {readers}")
    report.line("  No member account has a provider function, nor a role that reads a secret.")


def _provider_traffic(demo: _OrgDemo) -> None:
    report, box = demo.report, demo.box
    report.begin(4, "what went through the queue to the central provider")
    invoked = Counter(invocation.function_arn for invocation in box.runtime.invocations)
    delivered = sum(mapping.invocations for mapping in box.topics.mappings)
    requests = len(box.engine.events)
    report.wrapped("requests", f"{requests} sent to the topic, {delivered} invocations from it")
    for function_arn, count in sorted(invoked.items()):
        report.wrapped("invoked", f"{function_arn}: {count}")
    report.check(
        set(invoked) == {demo.function_arn}, f"functions other than the central one ran: {invoked}"
    )
    report.check(delivered >= requests, "a request reached the provider outside the queue")
    report.check(not box.engine.anomalies, f"protocol breaches: {box.engine.anomalies}")
    calls = box.qualys.requests
    rejected = sum(call.status in (409, 429) for call in calls)
    report.wrapped("Qualys calls", f"{len(calls) - rejected} accepted, {rejected} rejected")
    report.check(rejected == 0, f"{rejected} Qualys calls rejected by the concurrency limit")
    messages = box.slack.wait_for(SLACK_PER_CREATE * len(ACCOUNTS))
    report.wrapped("Slack", f"{len(messages)} messages")
    report.check(
        len(messages) == SLACK_PER_CREATE * len(ACCOUNTS),
        f"{len(messages)} Slack messages, expected {SLACK_PER_CREATE * len(ACCOUNTS)}",
    )


def _delete(demo: _OrgDemo) -> None:
    report, box = demo.report, demo.box
    report.begin(5, f"delete the StackSet instances of {STACK_SET}")
    box.delete_stack_instances(STACK_SET, ACCOUNTS)
    left = box.qualys.connectors()
    report.line(f"  Connectors left in Qualys: {len(left)}")
    report.check(not left, f"connectors left behind: {[c.id for c in left]}")
    expected = (SLACK_PER_CREATE + SLACK_PER_DELETE) * len(ACCOUNTS)
    messages = box.slack.wait_for(expected)
    report.wrapped("Slack", f"{len(messages)} messages in all")
    report.check(len(messages) == expected, f"{len(messages)} Slack messages, expected {expected}")


def _connector(box: Sandbox, view: StackView) -> SimConnector:
    connector_id = view.outputs.get("ConnectorId", "")
    connector = box.qualys.connector(int(connector_id)) if connector_id.isdigit() else None
    if connector is None:
        raise LookupError(f"{view.account_id}: Qualys has no connector {connector_id!r}")
    return connector


def _trusts(box: Sandbox, view: StackView, connector: SimConnector) -> str:
    statement: dict[str, Any] = box.role_trust_policy(view.outputs["RoleArn"])["Statement"][0]
    principal = str(statement["Principal"].get("AWS", ""))
    external_id = statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
    account = principal.split(":")[4] if principal.count(":") >= 5 else principal
    if external_id != connector.external_id:
        return f"{account} with another external ID"
    return f"{account} with the connector's external ID"


def _secret_readers(box: Sandbox, account_id: str) -> list[str]:
    """The roles of an account whose inline policies allow secretsmanager actions."""
    with as_account(account_id):
        iam = boto3.client("iam", region_name=box.region)
        readers = []
        for role in iam.list_roles()["Roles"]:
            name = role["RoleName"]
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
                if "secretsmanager:" in json.dumps(document):
                    readers.append(name)
    return readers


def _functions_in(box: Sandbox, account_id: str) -> list[str]:
    with as_account(account_id):
        listed = boto3.client("lambda", region_name=box.region).list_functions()["Functions"]
    return [function["FunctionName"] for function in listed]
