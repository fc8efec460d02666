"""Contract and security checks of the central provider template, and of the member
template's central mode (ProviderServiceToken set).

The linting and scanning every template gets (cfn-lint, checkov on the file, suppressions
used and explained, descriptions, parameter groups, partitions) come from
tests/stack/test_templates.py, where the central template is in TEMPLATES. checkov does not
look inside an Fn::If, so here it also scans the template as each mode deploys it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from test_templates import (
    PER_ACCOUNT_MODE,
    PROVIDER_ENVIRONMENT,
    TEMPLATES,
    actions_of,
    checkov_binary,
    checkov_failures,
    condition_values,
    declared_checkov_suppressions,
    load_named,
    rendered,
    run_checkov,
)

# CloudFormation waits this long at most for a custom resource's answer (ServiceTimeout).
CLOUDFORMATION_WINDOW = 3600
# The longest wait the provider puts a throttled request back for (design section 9).
LONGEST_REQUEUE_WAIT = 60
TOKEN = "arn:aws:sns:us-east-1:111111111111:qualys-connector-provider"
ACCOUNTS_FILE = "s3://audit-bucket/qualys/accounts.json"
ALARM_TOPIC = "arn:aws:sns:us-east-1:111111111111:ops-alarms"
SLACK_SECRET = "arn:aws:secretsmanager:us-east-1:111111111111:secret:qualys-connector/slack-AbCdEf"

# The ways to deploy the central template, between them taking every branch of its Fn::Ifs.
CENTRAL_MODES: dict[str, dict[str, str]] = {
    "audit from organizations, alarm topic": {
        "AlarmTopicArn": ALARM_TOPIC,
        "SlackWebhookSecretArn": SLACK_SECRET,
    },
    "audit from an accounts file": {"AuditAccountsS3Uri": ACCOUNTS_FILE},
    "no audit, no alarm topic": {"AuditEnabled": "false"},
}
central_modes = pytest.mark.parametrize("mode", sorted(CENTRAL_MODES))

# Parameters the central template shares with the member template, in the same terms.
SHARED_PARAMETERS = [
    "QualysPlatform",
    "QualysApiUrl",
    "QualysApiVersion",
    "QualysAwsAccountId",
    "QualysCredentialsSecretArn",
    "SecretsKmsKeyArn",
    "SlackWebhookSecretArn",
    "CodeS3Bucket",
    "CodeS3Key",
    "LogRetentionInDays",
    "LogLevel",
]
# Required in the central template (it always runs the provider), optional in the member
# template (central mode needs no code).
# What the member template makes optional in central mode (empty unless it runs a provider).
OPTIONAL_IN_CENTRAL_MODE = {
    "CodeS3Bucket",
    "CodeS3Key",
    "QualysCredentialsSecretArn",
    "SecretsKmsKeyArn",
}
MEMBER_PROVIDER_RESOURCES = {
    "ProviderFunctionRole",
    "ProviderLogGroup",
    "ProviderFunction",
    "ProviderFunctionInvokeConfig",
}
AUDIT_RESOURCES = {
    "AuditFunctionRole",
    "AuditLogGroup",
    "AuditFunction",
    "AuditFunctionInvokeConfig",
    "AuditScheduleRole",
    "AuditScheduleResource",
}
CUSTOM_RESOURCES = ("QualysConnector", "QualysConnectorActivation")


@pytest.fixture(scope="module")
def central_template() -> dict[str, Any]:
    """templates/qualys-connector-central.yaml, parsed."""
    return load_named("central")


@pytest.fixture(scope="module")
def member_template() -> dict[str, Any]:
    """templates/qualys-connector.yaml, parsed."""
    return load_named("connector")


def central_in(mode: str) -> dict[str, Any]:
    """The central template as deployed in ``mode``."""
    return rendered(load_named("central"), CENTRAL_MODES[mode])


def statements_by_sid(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The statements of a role's one inline policy, by Sid."""
    assert "ManagedPolicyArns" not in role["Properties"]
    (policy,) = role["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def evaluate(node: Any, parameters: dict[str, str]) -> Any:
    """A string expression (Ref, Fn::Sub, Fn::Split, Fn::Select) for ``parameters``;
    pseudo parameters in an Fn::Sub stay as written."""
    if not isinstance(node, dict):
        return node
    ((function, args),) = node.items()
    if function == "Ref":
        return parameters[args]
    if function == "Fn::Sub":
        text, local = (args, {}) if isinstance(args, str) else args
        names = {k: evaluate(v, parameters) for k, v in local.items()} | parameters
        return re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: names.get(m[1], m[0]), text)
    if function == "Fn::Split":
        return evaluate(args[1], parameters).split(args[0])
    if function == "Fn::Select":
        # CloudFormation fails the stack on an index out of range; so does this.
        return evaluate(args[1], parameters)[int(args[0])]
    raise AssertionError(f"cannot evaluate {function}")


def rules_hold(template: dict[str, Any], parameters: dict[str, str]) -> bool:
    """Whether CloudFormation accepts ``parameters`` by the template's Rules section."""
    for rule in template.get("Rules", {}).values():
        # Each rule's condition and assertions are evaluated as conditions would be.
        parts = {"when": rule.get("RuleCondition", {"Fn::Equals": ["", ""]})}
        parts |= {f"assert{i}": a["Assert"] for i, a in enumerate(rule["Assertions"])}
        truth = condition_values(
            {"Parameters": template["Parameters"], "Conditions": parts}, parameters
        )
        if truth.pop("when") and not all(truth.values()):
            return False
    return True


def test_central_template_is_linted_and_scanned_with_the_others() -> None:
    # cfn-lint, checkov and the documentation checks of test_templates.py run on TEMPLATES.
    assert TEMPLATES["central"].name == "qualys-connector-central.yaml"


# --- the topic, the queues and who may use them ----------------------------------------------


def test_only_principals_of_the_organisation_may_publish(central_template: dict[str, Any]) -> None:
    policy = central_template["Resources"]["ProviderTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "ProviderTopic"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] in ("*", {"AWS": "*"})
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == {"Ref": "ProviderTopic"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
    }


def test_organization_id_is_required_and_checked(central_template: dict[str, Any]) -> None:
    parameter = central_template["Parameters"]["OrganizationId"]
    assert "Default" not in parameter, "an empty organisation would let no one publish"
    pattern = re.compile(parameter["AllowedPattern"])
    for accepted in ("o-abc123def4", "o-" + "a" * 32):
        assert pattern.fullmatch(accepted), accepted
    for refused in ("", "o-abc123", "abc123def4", "O-ABC123DEF4", "111111111111"):
        assert not pattern.fullmatch(refused), refused


def test_only_the_topic_may_send_to_the_queue(central_template: dict[str, Any]) -> None:
    resources = central_template["Resources"]
    policy = resources["ProviderQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "ProviderQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["ProviderQueue", "Arn"]}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "ProviderTopic"}}}
    subscription = resources["ProviderSubscription"]["Properties"]
    assert subscription == {
        "TopicArn": {"Ref": "ProviderTopic"},
        "Protocol": "sqs",
        "Endpoint": {"Fn::GetAtt": ["ProviderQueue", "Arn"]},
        "RawMessageDelivery": True,
    }


def test_queues_are_encrypted_and_requests_redrive_to_the_dead_letter_queue(
    central_template: dict[str, Any],
) -> None:
    resources = central_template["Resources"]
    queue = resources["ProviderQueue"]["Properties"]
    dead_letters = resources["ProviderDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert dead_letters["SqsManagedSseEnabled"] is True
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["ProviderDeadLetterQueue", "Arn"]}
    # Requeued with waits of at most 60 s, a busy request is received fewer times than this
    # within CloudFormation's window: only a broken one reaches the dead-letter queue.
    assert redrive["maxReceiveCount"] * LONGEST_REQUEUE_WAIT > CLOUDFORMATION_WINDOW
    assert queue["MessageRetentionPeriod"] > CLOUDFORMATION_WINDOW
    assert dead_letters["MessageRetentionPeriod"] == 1209600


def test_visibility_timeout_exceeds_the_function_timeout(central_template: dict[str, Any]) -> None:
    resources = central_template["Resources"]
    timeout = resources["ProviderFunction"]["Properties"]["Timeout"]
    assert resources["ProviderQueue"]["Properties"]["VisibilityTimeout"] > timeout
    assert timeout < CLOUDFORMATION_WINDOW


def test_the_queue_feeds_one_request_per_invocation_and_qualys_slot(
    central_template: dict[str, Any],
) -> None:
    mapping = central_template["Resources"]["ProviderEventSourceMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["ProviderQueue", "Arn"]}
    assert mapping["FunctionName"] == {"Ref": "ProviderFunction"}
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "QualysConcurrencyLimit"}}
    parameter = central_template["Parameters"]["QualysConcurrencyLimit"]
    # AWS's bounds of MaximumConcurrency; 2 is also a Standard subscription's limit.
    assert (parameter["Type"], parameter["Default"]) == ("Number", 2)
    assert (parameter["MinValue"], parameter["MaxValue"]) == (2, 1000)


# --- the provider function -------------------------------------------------------------------


def test_provider_role_is_least_privilege(central_template: dict[str, Any]) -> None:
    statements = statements_by_sid(central_template["Resources"]["ProviderFunctionRole"])
    assert actions_of(list(statements.values())) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
    }
    assert statements["WriteOwnLogs"]["Resource"]["Fn::Sub"].endswith(":${ProviderLogGroup}:*")
    credentials = {"Ref": "QualysCredentialsSecretArn"}
    assert statements["ReadSecrets"]["Resource"] == {
        "Fn::If": [
            "HasSlackWebhook",
            [credentials, {"Ref": "SlackWebhookSecretArn"}],
            [credentials],
        ]
    }
    assert statements["DecryptSecrets"]["Resource"] == {"Ref": "SecretsKmsKeyArn"}
    assert statements["DecryptSecrets"]["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}
        }
    }
    assert statements["ConsumeRequests"]["Resource"] == {"Fn::GetAtt": ["ProviderQueue", "Arn"]}


def test_provider_function_is_the_member_templates_provider(
    central_template: dict[str, Any], member_template: dict[str, Any]
) -> None:
    central = central_template["Resources"]["ProviderFunction"]["Properties"]
    member = member_template["Resources"]["ProviderFunction"]["Properties"]
    assert central["FunctionName"] == "qualys-connector-central-provider"
    assert central["Handler"] == member["Handler"] == "provider.handler.lambda_handler"
    for key in ("Runtime", "Architectures", "Timeout", "MemorySize", "Code", "Environment"):
        assert central[key] == member[key], key
    assert set(central["Environment"]["Variables"]) == PROVIDER_ENVIRONMENT
    assert central["LoggingConfig"]["LogGroup"] == {"Ref": "ProviderLogGroup"}
    log_group = central_template["Resources"]["ProviderLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == "/aws/lambda/qualys-connector-central-provider"
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_shared_parameters_are_those_of_the_member_template(
    central_template: dict[str, Any], member_template: dict[str, Any]
) -> None:
    central, member = central_template["Parameters"], member_template["Parameters"]
    for name in SHARED_PARAMETERS:
        ours = {k: v for k, v in central[name].items() if k != "Description"}
        theirs = {k: v for k, v in member[name].items() if k != "Description"}
        if name in OPTIONAL_IN_CENTRAL_MODE:
            # The member template's, before central mode made them optional.
            assert "Default" not in ours, name
            theirs.pop("Default")
            theirs.pop("ConstraintDescription", None)
            ours.pop("ConstraintDescription", None)
            if "AllowedPattern" in theirs:
                assert theirs["AllowedPattern"] == "^$|" + ours["AllowedPattern"]
                theirs["AllowedPattern"] = ours["AllowedPattern"]
            else:
                assert ours.pop("MinLength") == 1
        assert ours == theirs, name
    assert central_template["Mappings"] == member_template["Mappings"]


def test_shared_parameters_keep_their_groups_and_labels(
    central_template: dict[str, Any], member_template: dict[str, Any]
) -> None:
    def groups(template: dict[str, Any]) -> dict[str, str]:
        interface = template["Metadata"]["AWS::CloudFormation::Interface"]
        return {
            name: group["Label"]["default"]
            for group in interface["ParameterGroups"]
            for name in group["Parameters"]
        }

    def labels(template: dict[str, Any]) -> dict[str, Any]:
        return dict(template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterLabels"])

    for name in SHARED_PARAMETERS:
        assert groups(central_template)[name] == groups(member_template)[name], name
        assert labels(central_template)[name] == labels(member_template)[name], name


# --- the fleet audit -------------------------------------------------------------------------


@pytest.mark.parametrize(("enabled", "expected"), [("true", AUDIT_RESOURCES), ("false", set())])
def test_audit_resources_exist_only_when_enabled(enabled: str, expected: set[str]) -> None:
    template = rendered(load_named("central"), {"AuditEnabled": enabled})
    audit = {name for name in template["Resources"] if name.startswith("Audit")}
    assert audit == expected
    assert ("AuditFunctionArn" in template["Outputs"]) is bool(expected)
    # Requests are served either way.
    assert {"ProviderFunction", "ProviderEventSourceMapping"} <= set(template["Resources"])


AUDIT_BASE_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "secretsmanager:GetSecretValue",
    "kms:Decrypt",
}


def test_audit_reads_accounts_from_organizations_when_no_file_is_given() -> None:
    role = rendered(load_named("central"), {})["Resources"]["AuditFunctionRole"]
    statements = statements_by_sid(role)
    assert actions_of(list(statements.values())) == AUDIT_BASE_ACTIONS | {
        "organizations:ListAccounts"
    }
    assert statements["ListOrganizationAccounts"]["Resource"] == "*"
    assert statements["WriteOwnLogs"]["Resource"]["Fn::Sub"].endswith(":${AuditLogGroup}:*")


def test_audit_reads_only_the_one_accounts_file_when_given() -> None:
    role = rendered(load_named("central"), {"AuditAccountsS3Uri": ACCOUNTS_FILE})
    statements = statements_by_sid(role["Resources"]["AuditFunctionRole"])
    assert actions_of(list(statements.values())) == AUDIT_BASE_ACTIONS | {"s3:GetObject"}
    resource = statements["ReadAccountsFile"]["Resource"]
    assert evaluate(resource, {"AuditAccountsS3Uri": ACCOUNTS_FILE}) == (
        "arn:${AWS::Partition}:s3:::audit-bucket/qualys/accounts.json"
    )
    # The expression stays in range for an empty URI too (CloudFormation may evaluate it).
    assert evaluate(resource, {"AuditAccountsS3Uri": ""}) == "arn:${AWS::Partition}:s3:::"


def test_accounts_file_parameter_takes_only_s3_uris(central_template: dict[str, Any]) -> None:
    parameter = central_template["Parameters"]["AuditAccountsS3Uri"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    for accepted in ("", ACCOUNTS_FILE, "s3://b.example/accounts.json"):
        assert pattern.fullmatch(accepted), accepted
    for refused in ("s3://bucket", "s3://bucket/", "https://bucket/key", "bucket/key"):
        assert not pattern.fullmatch(refused), refused


def test_audit_function_runs_the_audit_with_the_providers_settings(
    central_template: dict[str, Any],
) -> None:
    resources = central_template["Resources"]
    function = resources["AuditFunction"]["Properties"]
    provider = resources["ProviderFunction"]["Properties"]
    assert function["FunctionName"] == "qualys-connector-audit"
    assert function["Handler"] == "provider.audit.lambda_handler"
    assert function["Timeout"] == 900
    assert function["Role"] == {"Fn::GetAtt": ["AuditFunctionRole", "Arn"]}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "AuditLogGroup"}
    variables = function["Environment"]["Variables"]
    assert variables == provider["Environment"]["Variables"] | {
        "AUDIT_ACCOUNTS_S3_URI": {"Ref": "AuditAccountsS3Uri"},
        "AUDIT_ALL_CLEAR": {"Ref": "AuditAllClear"},
    }
    log_group = resources["AuditLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == "/aws/lambda/qualys-connector-audit"


def test_audit_runs_on_schedule_and_never_twice_for_one_run(
    central_template: dict[str, Any],
) -> None:
    resources = central_template["Resources"]
    schedule = resources["AuditScheduleResource"]["Properties"]
    assert schedule["ScheduleExpression"] == {"Ref": "AuditSchedule"}
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["AuditFunction", "Arn"]}
    assert schedule["Target"]["RoleArn"] == {"Fn::GetAtt": ["AuditScheduleRole", "Arn"]}
    # A retry, by the schedule or by Lambda, would post a second digest.
    assert schedule["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 0}
    invoke_config = resources["AuditFunctionInvokeConfig"]["Properties"]
    assert invoke_config["FunctionName"] == {"Ref": "AuditFunction"}
    assert invoke_config["MaximumRetryAttempts"] == 0
    parameter = central_template["Parameters"]["AuditSchedule"]
    assert parameter["Default"] == "rate(1 day)"
    assert re.fullmatch(parameter["AllowedPattern"], "cron(0 6 * * ? *)")


def test_schedule_role_may_only_invoke_the_audit(central_template: dict[str, Any]) -> None:
    role = central_template["Resources"]["AuditScheduleRole"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = statements_by_sid(role)
    assert actions_of(list(statements.values())) == {"lambda:InvokeFunction"}
    (statement,) = statements.values()
    assert statement["Resource"] == {"Fn::GetAtt": ["AuditFunction", "Arn"]}


# --- alarms and outputs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "actions"),
    [({"AlarmTopicArn": ALARM_TOPIC}, [{"Ref": "AlarmTopicArn"}]), ({}, None)],
    ids=["alarm topic", "no alarm topic"],
)
def test_alarms_notify_the_alarm_topic_when_given(
    parameters: dict[str, str], actions: list[Any] | None
) -> None:
    resources = rendered(load_named("central"), parameters)["Resources"]
    for name in ("DeadLetterAlarm", "FailedOutcomesAlarm"):
        assert resources[name]["Properties"].get("AlarmActions") == actions, name


def test_alarms_fire_on_a_dead_letter_and_on_a_failed_answer(
    central_template: dict[str, Any],
) -> None:
    resources = central_template["Resources"]
    dead_letter = resources["DeadLetterAlarm"]["Properties"]
    assert (dead_letter["Namespace"], dead_letter["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert dead_letter["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ProviderDeadLetterQueue", "QueueName"]}}
    ]
    metric_filter = resources["FailedOutcomesMetricFilter"]["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": "ProviderLogGroup"}
    assert metric_filter["FilterPattern"] == '"Answered FAILED"'
    (transformation,) = metric_filter["MetricTransformations"]
    failed = resources["FailedOutcomesAlarm"]["Properties"]
    assert (
        (failed["Namespace"], failed["MetricName"])
        == (
            transformation["MetricNamespace"],
            transformation["MetricName"],
        )
        == ("QualysConnectorProvider", "FailedOutcomes")
    )
    assert (failed["Statistic"], failed["Period"]) == ("Sum", 300)
    for alarm in (dead_letter, failed):
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_outputs_feed_the_member_template(
    central_template: dict[str, Any], member_template: dict[str, Any]
) -> None:
    outputs = central_template["Outputs"]
    assert set(outputs) == {
        "ProviderServiceToken",
        "ProviderQueueUrl",
        "DeadLetterQueueUrl",
        "ProviderFunctionArn",
        "AuditFunctionArn",
    }
    assert outputs["ProviderServiceToken"]["Value"] == {"Ref": "ProviderTopic"}
    assert outputs["AuditFunctionArn"]["Condition"] == "AuditIsEnabled"
    assert "ProviderServiceToken" in member_template["Parameters"]
    # The topic's ARN, in any partition, is a value the member template accepts.
    topic = central_template["Resources"]["ProviderTopic"]["Properties"]["TopicName"]
    pattern = re.compile(member_template["Parameters"]["ProviderServiceToken"]["AllowedPattern"])
    for partition, region in (("aws", "eu-west-1"), ("aws-us-gov", "us-gov-west-1")):
        assert pattern.fullmatch(f"arn:{partition}:sns:{region}:111111111111:{topic}")
    assert pattern.fullmatch("")
    for refused in ("qualys-connector-provider", TOKEN.replace(":sns:", ":sqs:")):
        assert not pattern.fullmatch(refused), refused


# --- checkov, as each mode deploys the template ----------------------------------------------


@pytest.fixture(scope="module")
def checkov_central_results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, Any]]:
    """checkov's results on the central template as each mode deploys it, with its
    suppressions taken out (checkov does not look inside an Fn::If)."""
    binary = checkov_binary()
    folder = tmp_path_factory.mktemp("central-modes")
    results: dict[str, dict[str, Any]] = {}
    for mode in CENTRAL_MODES:
        template = central_in(mode)
        for resource in template["Resources"].values():
            resource.get("Metadata", {}).pop("checkov", None)
        path = folder / f"{re.sub(r'[^a-z]+', '-', mode)}.json"
        path.write_text(json.dumps(template, indent=1), encoding="utf-8")
        results[mode] = run_checkov(binary, path, f"central ({mode})")
    return results


@central_modes
def test_checkov_fails_no_unsuppressed_check_in_any_mode(
    mode: str, checkov_central_results: dict[str, Any], central_template: dict[str, Any]
) -> None:
    report = checkov_central_results[mode]
    assert report["summary"]["resource_count"] == len(central_in(mode)["Resources"])
    unsuppressed = checkov_failures(report) - declared_checkov_suppressions(central_template)
    assert unsuppressed == set(), f"checkov failed checks in the {mode} mode: {unsuppressed}"


def test_every_central_suppression_is_needed_in_some_mode(
    checkov_central_results: dict[str, Any], central_template: dict[str, Any]
) -> None:
    failures = [checkov_failures(report) for report in checkov_central_results.values()]
    assert set().union(*failures) == declared_checkov_suppressions(central_template)


# --- the member template's central mode ------------------------------------------------------


def test_member_in_central_mode_deploys_no_provider_of_its_own(
    member_template: dict[str, Any],
) -> None:
    template = rendered(member_template, {"ProviderServiceToken": TOKEN})
    resources = template["Resources"]
    assert MEMBER_PROVIDER_RESOURCES.isdisjoint(resources)
    assert not [r for r in resources.values() if r["Type"].startswith(("AWS::Lambda", "AWS::Logs"))]
    assert {"QualysConnector", "QualysRole", "QualysRolePolicy", "QualysConnectorActivation"} <= (
        set(resources)
    )
    for logical_id in CUSTOM_RESOURCES:
        properties = resources[logical_id]["Properties"]
        assert properties["ServiceToken"] == {"Ref": "ProviderServiceToken"}, logical_id
        # The queue may hold a whole rollout before this request: CloudFormation's longest wait.
        assert int(properties["ServiceTimeout"]) == CLOUDFORMATION_WINDOW, logical_id
    assert {r["Type"] for r in resources.values()} >= {
        "Custom::QualysConnector",
        "Custom::QualysConnectorActivation",
    }


def test_member_in_per_account_mode_keeps_its_own_provider(
    member_template: dict[str, Any],
) -> None:
    resources = rendered(member_template, PER_ACCOUNT_MODE)["Resources"]
    assert set(resources) >= MEMBER_PROVIDER_RESOURCES
    for logical_id in CUSTOM_RESOURCES:
        properties = resources[logical_id]["Properties"]
        assert properties["ServiceToken"] == {"Fn::GetAtt": ["ProviderFunction", "Arn"]}
        assert int(properties["ServiceTimeout"]) == 600


@pytest.mark.parametrize(
    ("parameters", "accepted"),
    [
        ({"ProviderServiceToken": TOKEN}, True),
        ({"ProviderServiceToken": TOKEN} | PER_ACCOUNT_MODE, True),
        (PER_ACCOUNT_MODE, True),
        ({"CodeS3Bucket": "code-bucket"}, False),
        ({"CodeS3Key": "provider.zip"}, False),
        ({}, False),
    ],
    ids=[
        "central",
        "central with code",
        "per account",
        "per account without key",
        "per account without bucket",
        "per account without code",
    ],
)
def test_member_needs_its_code_only_without_a_central_provider(
    member_template: dict[str, Any], parameters: dict[str, str], accepted: bool
) -> None:
    assert rules_hold(member_template, parameters) is accepted
    if accepted:
        # Wherever CloudFormation accepts the parameters, the custom resources' provider exists.
        template = rendered(member_template, parameters)
        for logical_id in CUSTOM_RESOURCES:
            token = template["Resources"][logical_id]["Properties"]["ServiceToken"]
            if token != {"Ref": "ProviderServiceToken"}:
                assert "ProviderFunction" in template["Resources"], logical_id
