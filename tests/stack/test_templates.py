"""Lint, security scan and contract checks of the CloudFormation templates."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import load
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from provider.properties import ActivationProperties, ConnectorProperties

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {
    "connector": REPO_ROOT / "templates" / "qualys-connector.yaml",
    "prerequisites": REPO_ROOT / "templates" / "qualys-connector-prerequisites.yaml",
    "central": REPO_ROOT / "templates" / "qualys-connector-central.yaml",
}
# The Qualys API facts the code relies on, in the project's own docs (always in a clone).
QUALYS_DOCS = REPO_ROOT / "docs" / "qualys-api.md"
# The team's reference those docs were written from; the CI lays shared/ beside the checkout.
SHARED_QUALYS_REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "qualys-api.md"

# The resource contract (design section 2): property names and Fn::GetAtt attributes.
CONNECTOR_PROPERTIES = {
    "ServiceToken",
    "ServiceTimeout",
    "ConnectorName",
    "Description",
    "AllRegions",
    "Regions",
    "ActivationModules",
    "RunFrequencyMinutes",
    "DefaultTagIds",
    "ExternalId",
    "Applications",
    "RoleArn",
}
ACTIVATION_PROPERTIES = {
    "ServiceToken",
    "ServiceTimeout",
    "ConnectorId",
    "RoleArn",
    "WaitForFirstSync",
}
ATTRIBUTES = {
    "Custom::QualysConnector": {"ConnectorId", "ConnectorName", "ExternalId", "QualysAwsAccountId"},
    "Custom::QualysConnectorActivation": {"ConnectorState"},
}

# Names others build on (the sandbox deploys, the CfCT parameter files, the README).
CONNECTOR_PARAMETERS = {
    "QualysPlatform",
    "QualysApiUrl",
    "QualysApiVersion",
    "QualysCredentialsSecretArn",
    "SecretsKmsKeyArn",
    "SlackWebhookSecretArn",
    "QualysAwsAccountId",
    "ConnectorRegion",
    "ConnectorNamePrefix",
    "ConnectorDescription",
    "AllRegions",
    "Regions",
    "ActivationModules",
    "RunFrequencyMinutes",
    "DefaultTagIds",
    "PermissionSet",
    "CodeS3Bucket",
    "CodeS3Key",
    "LogRetentionInDays",
    "LogLevel",
    "WaitForFirstSync",
    "ProviderServiceToken",
}
# The connector template's per-account mode (ProviderServiceToken empty): its own provider
# function answers, and the code parameters are required (the template's Rules).
PER_ACCOUNT_MODE = {
    "CodeS3Bucket": "code-bucket",
    "CodeS3Key": "provider.zip",
    "QualysCredentialsSecretArn": (
        "arn:aws:secretsmanager:us-east-1:111111111111:secret:qualys-connector/creds-AbCdEf"
    ),
    "SecretsKmsKeyArn": "arn:aws:kms:us-east-1:111111111111:key/11111111-2222-3333-4444-5555",
}
CONNECTOR_OUTPUTS = {"ConnectorId", "ExternalId", "QualysAwsAccountId", "RoleArn", "ConnectorState"}
PROVIDER_ENVIRONMENT = {
    "QUALYS_API_URL",
    "QUALYS_API_VERSION",
    "QUALYS_CREDENTIALS_SECRET_ID",
    "SLACK_WEBHOOK_SECRET_ID",
    "QUALYS_AWS_ACCOUNT_ID",
    "LOG_LEVEL",
}

# docs/qualys-api.md, "Platforms and API servers" and "The role Qualys assumes" (the tests
# *_match_the_project_docs keep these equal to the docs).
PLATFORM_API_URLS = {
    "US1": "https://qualysapi.qualys.com",
    "US2": "https://qualysapi.qg2.apps.qualys.com",
    "US3": "https://qualysapi.qg3.apps.qualys.com",
    "US4": "https://qualysapi.qg4.apps.qualys.com",
    "EU1": "https://qualysapi.qualys.eu",
    "EU2": "https://qualysapi.qg2.apps.qualys.eu",
    "EU3": "https://qualysapi.qg3.apps.qualys.it",
    "IN1": "https://qualysapi.qg1.apps.qualys.in",
    "CA1": "https://qualysapi.qg1.apps.qualys.ca",
    "AE1": "https://qualysapi.qg1.apps.qualys.ae",
    "UK1": "https://qualysapi.qg1.apps.qualys.co.uk",
    "AU1": "https://qualysapi.qg1.apps.qualys.com.au",
    "KSA1": "https://qualysapi.qg1.apps.qualysksa.com",
    "GOV1": "https://qualysapi.gov1.qualys.us",
}
ASSET_INVENTORY_ACTIONS = {
    "ec2:DescribeInstances",
    "ec2:DescribeAddresses",
    "ec2:DescribeImages",
    "ec2:DescribeRegions",
    "ec2:DescribeVpcs",
}
CSPM_EXTRA_ACTIONS = {
    "states:DescribeStateMachine",
    "elasticfilesystem:DescribeFileSystemPolicy",
    "qldb:ListLedgers",
    "qldb:DescribeLedger",
    "kafka:ListClusters",
    "codebuild:BatchGetProjects",
    "wafv2:GetWebACLForResource",
    "backup:ListBackupVaults",
    "backup:DescribeBackupVault",
    "ec2:GetEbsEncryptionByDefault",
    "ec2:GetEbsDefaultKmsKeyId",
    "guardduty:ListDetectors",
    "guardduty:GetDetector",
    "glue:GetDataCatalogEncryptionSettings",
    "elasticmapreduce:GetBlockPublicAccessConfiguration",
    "lambda:GetFunctionConcurrency",
    "ds:ListLogSubscriptions",
    "ssm:GetDocument",
    "ssm:GetServiceSetting",
    "states:GetExecutionHistory",
    "eks:ListFargateProfiles",
    "eks:DescribeFargateProfile",
    "appflow:DescribeFlow",
    "apigateway:GET",
}
APIGATEWAY_RESOURCE = "arn:${AWS::Partition}:apigateway:*::/restapis/*"

template_names = pytest.mark.parametrize("name", sorted(TEMPLATES))


# No conftest.py in this folder: tests elsewhere import names `from conftest`, and a second
# conftest module would shadow tests/conftest.py depending on the collection order.
@pytest.fixture(scope="module")
def connector_template() -> dict[str, Any]:
    """templates/qualys-connector.yaml, parsed."""
    return load_named("connector")


@pytest.fixture(scope="module")
def prerequisites_template() -> dict[str, Any]:
    """templates/qualys-connector-prerequisites.yaml, parsed."""
    return load_named("prerequisites")


# --- helpers -------------------------------------------------------------------------------


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) in a parsed template, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def get_atts(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every (where, logical id, attribute) read with Fn::GetAtt or a ${X.Y} in Fn::Sub."""
    found: list[tuple[str, str, str]] = []
    for path, node in walk(template):
        if not isinstance(node, dict):
            continue
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            logical_id, attribute = target.split(".", 1) if isinstance(target, str) else target
            found.append((path, logical_id, attribute))
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            for logical_id, attribute in re.findall(r"\$\{([A-Za-z0-9]+)\.([A-Za-z0-9.]+)\}", text):
                found.append((path, logical_id, attribute))
    return found


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def if_branches(value: Any) -> tuple[Any, Any]:
    """The true and false values of an Fn::If."""
    assert isinstance(value, dict), value
    assert list(value) == ["Fn::If"], value
    _condition, when_true, when_false = value["Fn::If"]
    return when_true, when_false


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        value = statement["Action"]
        actions.update([value] if isinstance(value, str) else value)
    return actions


def markdown_table(path: Path, heading: str) -> list[list[str]]:
    """The body rows of the first markdown table in the ``## <heading>`` section of ``path``."""
    text = path.read_text(encoding="utf-8")
    sections = [s for s in text.split("\n## ")[1:] if s.startswith(heading)]
    assert sections, f"{path.name} has no section '## {heading}'"
    lines = sections[0].splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    assert start is not None, f"{path.name}: no table under '## {heading}'"
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    body = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows[2:]]
    assert body, f"{path.name}: the table under '## {heading}' is empty"
    return body


def platform_urls(path: Path, heading: str) -> dict[str, str]:
    """Platform -> API server from a platform table (the first URL of each row: GOV1's row
    in the shared reference also names a gateway)."""
    urls: dict[str, str] = {}
    for row in markdown_table(path, heading):
        found = re.findall(r"`(https://[^`]+)`", row[1])
        assert found, f"{path.name}: no API server in the row of {row[0]}"
        assert row[0] not in urls, f"{path.name}: {row[0]} twice"
        urls[row[0]] = found[0]
    return urls


def permission_set_actions(cell: str) -> set[str]:
    """The IAM actions named in a permission set's table cell."""
    return set(re.findall(r"`([a-z0-9-]+:[A-Za-z]+)`", cell))


def load_named(name: str) -> dict[str, Any]:
    """A template by its short name, parsed with cfn-lint's loader (short-form intrinsics)."""
    template: dict[str, Any] = load(str(TEMPLATES[name]))
    return template


def needs_shared_reference() -> None:
    if not SHARED_QUALYS_REFERENCE.is_file():
        pytest.skip(f"{SHARED_QUALYS_REFERENCE} is absent (CI puts shared/ beside the checkout)")


# --- cfn-lint --------------------------------------------------------------------------------


def cfn_lint_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("cfn-lint")
    command = str(beside_python) if beside_python.exists() else shutil.which("cfn-lint")
    if command is None:
        pytest.fail("cfn-lint is not installed: run `make venv` (it is in requirements-dev.txt)")
    return [command]


@template_names
def test_cfn_lint_reports_nothing(name: str) -> None:
    # Run from the repository root so that .cfnlintrc.yaml (regions, informational checks)
    # applies exactly as it does for a person running cfn-lint there.
    result = subprocess.run(
        [*cfn_lint_command(), "--format", "json", "--", str(TEMPLATES[name])],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    summary = [
        f"{f['Rule']['Id']} {'/'.join(map(str, f['Location']['Path']))}: {f['Message']}"
        for f in findings
    ]
    assert summary == [], f"cfn-lint findings in {name}:\n" + "\n".join(summary)
    assert result.returncode == 0, result.stderr


def test_cfnlintrc_lints_every_template() -> None:
    config = (REPO_ROOT / ".cfnlintrc.yaml").read_text(encoding="utf-8")
    assert "templates/*.yaml" in config
    assert {path.name for path in (REPO_ROOT / "templates").glob("*.yaml")} == {
        path.name for path in TEMPLATES.values()
    }, "a new template needs its place in TEMPLATES so that it is linted and scanned"


# --- checkov ---------------------------------------------------------------------------------


def checkov_binary() -> Path:
    binary = Path(os.environ.get("CHECKOV", REPO_ROOT / ".venv-checkov" / "bin" / "checkov"))
    if not binary.exists():
        pytest.fail(
            f"checkov not found at {binary}: run `make test`, which installs it in .venv-checkov "
            "(or set CHECKOV to its path)"
        )
    return binary


def run_checkov(binary: Path, path: Path, name: str) -> dict[str, Any]:
    """checkov's report on one template file."""
    # Not --quiet: the skipped checks are needed to spot stale suppressions.
    # --skip-download: no calls to Prisma Cloud (the checks themselves are local).
    command = [str(binary), "-f", str(path), "--framework", "cloudformation"]
    command += ["--output", "json", "--compact", "--skip-download"]
    result = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=110, check=False
    )
    assert result.stdout.strip(), f"checkov printed nothing for {name}: {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    # One framework gives an object; several give a list of them.
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="module")
def checkov_results() -> dict[str, dict[str, Any]]:
    """checkov's results for each template, from one run per template (checkov is slow)."""
    binary = checkov_binary()
    return {name: run_checkov(binary, path, name) for name, path in TEMPLATES.items()}


@template_names
def test_checkov_finds_no_failed_check(name: str, checkov_results: dict[str, Any]) -> None:
    report = checkov_results[name]
    assert report["summary"]["parsing_errors"] == 0
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert failed == [], f"checkov failed checks in {name}:\n" + "\n".join(failed)


@template_names
def test_every_checkov_suppression_is_used_and_explained(
    name: str, checkov_results: dict[str, Any]
) -> None:
    template = load_named(name)
    declared = set()
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "").strip()) > 20, f"{logical_id} {skip['id']}: reason"
            declared.add((skip["id"], f"{resource['Type']}.{logical_id}"))
    skipped = {
        (check["check_id"], check["resource"])
        for check in checkov_results[name]["results"]["skipped_checks"]
    }
    assert declared == skipped, "every suppression must match a finding (none stale, none outside)"


@template_names
def test_every_cfn_nag_suppression_has_a_reason(name: str) -> None:
    template = load_named(name)
    for logical_id, resource in template["Resources"].items():
        for rule in resource.get("Metadata", {}).get("cfn_nag", {}).get("rules_to_suppress", []):
            assert re.fullmatch(r"[WF]\d+", rule["id"]), f"{logical_id}: cfn_nag ids are W/F<n>"
            assert len(rule.get("reason", "").strip()) > 20, f"{logical_id} {rule['id']}: reason"


# --- documentation of the templates ----------------------------------------------------------


@template_names
def test_every_parameter_and_output_is_described(name: str) -> None:
    template = load_named(name)
    for section in ("Parameters", "Outputs"):
        undescribed = [
            key for key, value in template[section].items() if not value.get("Description")
        ]
        assert undescribed == [], f"{section} without Description: {undescribed}"


@template_names
def test_every_resource_that_can_be_described_is(name: str) -> None:
    template = load_named(name)
    undescribed = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"].startswith("Custom::"):
            continue
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource["Type"])
        supports = "Description" in schema.schema.get("properties", {})
        if supports and not resource["Properties"].get("Description"):
            undescribed.append(logical_id)
    assert undescribed == []


@template_names
def test_every_parameter_is_grouped_once_and_labelled(name: str) -> None:
    template = load_named(name)
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"]), "each parameter in one group"
    assert set(interface["ParameterLabels"]) == set(template["Parameters"])


@template_names
def test_templates_are_partition_aware(name: str) -> None:
    template = load_named(name)
    literal = [
        path
        for path, value in walk(template)
        if isinstance(value, str)
        and re.search(r"arn:aws[a-z-]*:(?!\$)", value)
        and "Allowed" not in path
    ]
    assert literal == [], f"ARNs with a literal partition (use ${{AWS::Partition}}): {literal}"


# --- the connector template: the resource contract -------------------------------------------


def test_connector_parameters_and_outputs_keep_their_names(
    connector_template: dict[str, Any],
) -> None:
    assert set(connector_template["Parameters"]) == CONNECTOR_PARAMETERS
    assert set(connector_template["Outputs"]) == CONNECTOR_OUTPUTS


def test_connector_properties_are_those_of_the_contract(
    connector_template: dict[str, Any],
) -> None:
    (connector,) = resources_of_type(connector_template, "Custom::QualysConnector").values()
    assert set(connector["Properties"]) <= CONNECTOR_PROPERTIES
    assert {"ServiceToken", "ServiceTimeout", "ConnectorName"} <= set(connector["Properties"])


def test_the_provider_parses_exactly_the_contract_properties() -> None:
    cloudformation_keys = {"ServiceToken", "ServiceTimeout"}

    assert ConnectorProperties.FIELDS | cloudformation_keys == CONNECTOR_PROPERTIES
    assert ActivationProperties.FIELDS | cloudformation_keys == ACTIVATION_PROPERTIES


def test_activation_properties_are_exactly_those_of_the_contract(
    connector_template: dict[str, Any],
) -> None:
    (activation,) = resources_of_type(
        connector_template, "Custom::QualysConnectorActivation"
    ).values()
    assert set(activation["Properties"]) == ACTIVATION_PROPERTIES
    assert activation["Properties"]["ConnectorId"] == {
        "Fn::GetAtt": ["QualysConnector", "ConnectorId"]
    }


def test_custom_resource_attributes_read_are_documented(
    connector_template: dict[str, Any],
) -> None:
    resources = connector_template["Resources"]
    reads = [
        (where, logical_id, attribute)
        for where, logical_id, attribute in get_atts(connector_template)
        if resources.get(logical_id, {}).get("Type", "") in ATTRIBUTES
    ]
    assert len(reads) >= 6, "the role, the activation and the outputs read the connector"
    for where, logical_id, attribute in reads:
        assert attribute in ATTRIBUTES[resources[logical_id]["Type"]], f"{where}: {attribute}"


def test_outputs_read_the_custom_resources(connector_template: dict[str, Any]) -> None:
    outputs = connector_template["Outputs"]
    assert outputs["ConnectorState"]["Value"] == {
        "Fn::GetAtt": ["QualysConnectorActivation", "ConnectorState"]
    }
    for attribute in ("ConnectorId", "ExternalId", "QualysAwsAccountId"):
        assert outputs[attribute]["Value"] == {"Fn::GetAtt": ["QualysConnector", attribute]}
    assert outputs["RoleArn"]["Value"] == {"Fn::GetAtt": ["QualysRole", "Arn"]}


def test_custom_resources_time_out_after_the_function(
    connector_template: dict[str, Any],
) -> None:
    # Central mode is checked in test_central_template.py.
    template = rendered(connector_template, PER_ACCOUNT_MODE)
    timeout = template["Resources"]["ProviderFunction"]["Properties"]["Timeout"]
    for resource_type in ATTRIBUTES:
        for logical_id, resource in resources_of_type(template, resource_type).items():
            service_timeout = int(resource["Properties"]["ServiceTimeout"])
            assert timeout < service_timeout <= 3600, logical_id
            assert resource["Properties"]["ServiceToken"] == {
                "Fn::GetAtt": ["ProviderFunction", "Arn"]
            }


def test_function_runs_python_3_12_or_newer_on_arm64(connector_template: dict[str, Any]) -> None:
    function = connector_template["Resources"]["ProviderFunction"]["Properties"]
    match = re.fullmatch(r"python(\d+)\.(\d+)", function["Runtime"])
    assert match is not None
    assert (int(match[1]), int(match[2])) >= (3, 12)
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "provider.handler.lambda_handler"
    assert function["FunctionName"] == "qualys-connector-provider"
    assert "ReservedConcurrentExecutions" not in function


def test_function_environment_is_the_provider_configuration(
    connector_template: dict[str, Any],
) -> None:
    function = connector_template["Resources"]["ProviderFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    assert set(variables) == PROVIDER_ENVIRONMENT
    override, mapped = if_branches(variables["QUALYS_API_URL"])
    assert override == {"Ref": "QualysApiUrl"}
    assert mapped == {"Fn::FindInMap": ["QualysPlatforms", {"Ref": "QualysPlatform"}, "ApiUrl"]}
    conditions = connector_template["Conditions"]
    assert conditions[variables["QUALYS_API_URL"]["Fn::If"][0]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "QualysApiUrl"}, ""]}]
    }


def test_function_logs_to_its_log_group_with_retention(
    connector_template: dict[str, Any],
) -> None:
    resources = connector_template["Resources"]
    log_group = resources["ProviderLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == "/aws/lambda/qualys-connector-provider"
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    function = resources["ProviderFunction"]["Properties"]
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "ProviderLogGroup"}


def test_lambda_does_not_retry_asynchronous_invocations(
    connector_template: dict[str, Any],
) -> None:
    (config,) = resources_of_type(connector_template, "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["MaximumRetryAttempts"] == 0
    assert config["Properties"]["FunctionName"] == {"Ref": "ProviderFunction"}


def test_platform_mapping_is_the_reference_table(connector_template: dict[str, Any]) -> None:
    mapping = connector_template["Mappings"]["QualysPlatforms"]
    assert {platform: row["ApiUrl"] for platform, row in mapping.items()} == PLATFORM_API_URLS
    parameter = connector_template["Parameters"]["QualysPlatform"]
    assert parameter["AllowedValues"] == list(PLATFORM_API_URLS)
    assert parameter["Default"] == "US1"


def test_platform_table_matches_the_project_docs() -> None:
    assert platform_urls(QUALYS_DOCS, "Platforms and API servers") == PLATFORM_API_URLS


def test_role_actions_match_the_project_docs(connector_template: dict[str, Any]) -> None:
    rows = {row[0]: row[1] for row in markdown_table(QUALYS_DOCS, "The role Qualys assumes")}
    # The docs name each set as the template's PermissionSet does.
    assert list(rows) == connector_template["Parameters"]["PermissionSet"]["AllowedValues"]
    assert permission_set_actions(rows["AssetInventory"]) == ASSET_INVENTORY_ACTIONS
    assert permission_set_actions(rows["CSPM"]) == CSPM_EXTRA_ACTIONS
    assert "`SecurityAudit`" in rows["CSPM"]
    assert f"`{APIGATEWAY_RESOURCE}`" in rows["CSPM"]


def test_project_docs_agree_with_the_shared_reference_on_platforms() -> None:
    needs_shared_reference()
    shared = platform_urls(SHARED_QUALYS_REFERENCE, "Authentication and platforms")
    assert platform_urls(QUALYS_DOCS, "Platforms and API servers") == shared


def test_project_docs_agree_with_the_shared_reference_on_role_actions() -> None:
    needs_shared_reference()
    shared = markdown_table(SHARED_QUALYS_REFERENCE, "The role Qualys assumes")
    ours = markdown_table(QUALYS_DOCS, "The role Qualys assumes")
    # Row names differ (the docs use the PermissionSet values); the order is the same.
    assert [permission_set_actions(row[1]) for row in ours] == [
        permission_set_actions(row[1]) for row in shared
    ]
    assert f"`{APIGATEWAY_RESOURCE}`" in shared[-1][1]


def test_no_shipped_file_points_outside_the_repository() -> None:
    # A clone has no shared/ beside it: the README, templates and code must not send a
    # reader there (tests may name it, to compare with it when it is present).
    shipped = [REPO_ROOT / "README.md"]
    for folder in ("templates", "provider", "sandbox", "scripts", "docs", "stackset"):
        shipped += [p for p in (REPO_ROOT / folder).rglob("*") if p.is_file()]
    pointing = [
        str(path.relative_to(REPO_ROOT))
        for path in shipped
        if path.suffix in {".md", ".yaml", ".yml", ".json", ".py", ".txt"}
        and "shared/reference" in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert pointing == [], f"files that point at shared/reference/ (use docs/): {pointing}"


def role_policy_statements(template: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The CSPM and the AssetInventory statements of the role Qualys assumes."""
    policy = template["Resources"]["QualysRolePolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "QualysRole"}]
    condition, when_true, when_false = policy["PolicyDocument"]["Statement"]["Fn::If"]
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "PermissionSet"}, "CSPM"]}
    return when_true, when_false


def test_asset_inventory_role_reads_exactly_the_documented_ec2_actions(
    connector_template: dict[str, Any],
) -> None:
    _, asset_inventory = role_policy_statements(connector_template)
    assert actions_of(asset_inventory) == ASSET_INVENTORY_ACTIONS
    assert all(statement["Effect"] == "Allow" for statement in asset_inventory)


def test_cspm_role_adds_the_documented_reads_to_security_audit(
    connector_template: dict[str, Any],
) -> None:
    cspm, _ = role_policy_statements(connector_template)
    assert actions_of(cspm) == CSPM_EXTRA_ACTIONS
    (apigateway,) = [s for s in cspm if s["Action"] == "apigateway:GET"]
    assert apigateway["Resource"] == {"Fn::Sub": APIGATEWAY_RESOURCE}
    role = connector_template["Resources"]["QualysRole"]["Properties"]
    security_audit, none = if_branches(role["ManagedPolicyArns"])
    assert security_audit == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/SecurityAudit"}]
    assert none == {"Ref": "AWS::NoValue"}


def test_qualys_role_trusts_the_connectors_account_and_external_id(
    connector_template: dict[str, Any],
) -> None:
    role = connector_template["Resources"]["QualysRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${QualysConnector.QualysAwsAccountId}:root"}
    }
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {"sts:ExternalId": {"Fn::GetAtt": ["QualysConnector", "ExternalId"]}}
    }


def test_activation_waits_for_the_role_permissions(connector_template: dict[str, Any]) -> None:
    activation = connector_template["Resources"]["QualysConnectorActivation"]
    depends_on = activation["DependsOn"]
    assert "QualysRolePolicy" in ([depends_on] if isinstance(depends_on, str) else depends_on)
    assert activation["Properties"]["RoleArn"] == {"Fn::GetAtt": ["QualysRole", "Arn"]}


@pytest.mark.parametrize("name", ["connector", "prerequisites"])
def test_iam_role_names_carry_the_region(name: str) -> None:
    roles = resources_of_type(load_named(name), "AWS::IAM::Role")
    for logical_id, role in roles.items():
        role_name = role["Properties"].get("RoleName")
        if role_name is not None:
            assert "${AWS::Region}" in role_name["Fn::Sub"], logical_id


def test_provider_role_is_least_privilege(connector_template: dict[str, Any]) -> None:
    role = connector_template["Resources"]["ProviderFunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    (policy,) = role["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert actions_of(list(statements.values())) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
    }
    assert statements["WriteOwnLogs"]["Resource"]["Fn::Sub"].endswith(":${ProviderLogGroup}:*")
    with_slack, without_slack = if_branches(statements["ReadSecrets"]["Resource"])
    credentials = {"Ref": "QualysCredentialsSecretArn"}
    assert with_slack == [credentials, {"Ref": "SlackWebhookSecretArn"}]
    assert without_slack == [credentials]
    decrypt = statements["DecryptSecrets"]
    assert decrypt["Resource"] == {"Ref": "SecretsKmsKeyArn"}
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}
        }
    }
    assert all("*" not in action for action in actions_of(list(statements.values())))


@pytest.mark.parametrize(
    ("parameter", "property_name"), [("Regions", "Regions"), ("DefaultTagIds", "DefaultTagIds")]
)
def test_empty_list_parameters_are_left_out_of_the_connector(
    connector_template: dict[str, Any], parameter: str, property_name: str
) -> None:
    connector = connector_template["Resources"]["QualysConnector"]["Properties"]
    given, omitted = if_branches(connector[property_name])
    assert given == {"Ref": parameter}
    assert omitted == {"Ref": "AWS::NoValue"}
    assert connector_template["Parameters"][parameter]["Default"] == ""


# --- the prerequisites template ---------------------------------------------------------------


NO_VALUE = {"Ref": "AWS::NoValue"}
PSEUDO_PARAMETERS = {"AWS::Region": "us-east-1"}
# The two ways to deploy the prerequisites: for the accounts of an organisation, or for the
# one account they are deployed in (OrganizationId empty, its default). The Slack secret is
# on in both, so that its policy is checked too.
PREREQUISITES_MODES: dict[str, dict[str, str]] = {
    "organisation": {"OrganizationId": "o-abc123def4", "CreateSlackSecret": "true"},
    "single account": {"CreateSlackSecret": "true"},
}
prerequisites_modes = pytest.mark.parametrize("mode", sorted(PREREQUISITES_MODES))
ACCOUNT_ROOT = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}


def condition_values(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, bool]:
    """Every condition of ``template``, evaluated for ``parameters`` (the others at their
    Default, and ``AWS::Region`` in PSEUDO_PARAMETERS unless given) as CloudFormation would:
    Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, and Fn::Join (of a list parameter too)."""
    values = PSEUDO_PARAMETERS | {
        name: spec.get("Default") for name, spec in template["Parameters"].items()
    }
    unknown = set(parameters) - set(values)
    assert not unknown, f"not parameters of the template: {unknown}"
    values |= parameters
    evaluated: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and list(node) == ["Fn::Join"]:
            delimiter, items = node["Fn::Join"]
            # A list parameter's value is its comma-separated text, as it is given.
            parts = value(items)
            return delimiter.join(parts.split(",") if isinstance(parts, str) else map(value, parts))
        if isinstance(node, dict):
            assert list(node) == ["Ref"], f"cannot evaluate {node}"
            assert node["Ref"] in values, f"cannot evaluate {node}"
            assert values[node["Ref"]] is not None, f"{node['Ref']} has no value"
            return values[node["Ref"]]
        return node

    def truth(node: Any) -> bool:
        ((function, args),) = node.items()
        if function == "Fn::Equals":
            return bool(value(args[0]) == value(args[1]))
        if function == "Fn::Not":
            return not truth(args[0])
        if function == "Fn::And":
            return all(truth(arg) for arg in args)
        if function == "Fn::Or":
            return any(truth(arg) for arg in args)
        if function == "Condition":
            return condition(args)
        raise AssertionError(f"cannot evaluate {function}")

    def condition(name: str) -> bool:
        if name not in evaluated:
            evaluated[name] = truth(template["Conditions"][name])
        return evaluated[name]

    return {name: condition(name) for name in template["Conditions"]}


def rendered(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """``template`` as CloudFormation deploys it for ``parameters``: each Fn::If resolved,
    AWS::NoValue left out, and the resources and outputs whose condition is false gone. A
    new copy: changing it leaves ``template`` as it was."""
    conditions = condition_values(template, parameters)

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if list(node) == ["Fn::If"]:
                name, when_true, when_false = node["Fn::If"]
                return resolve(when_true if conditions[name] else when_false)
            items = {key: resolve(value) for key, value in node.items()}
            return {key: value for key, value in items.items() if value != NO_VALUE}
        if isinstance(node, list):
            return [item for item in map(resolve, node) if item != NO_VALUE]
        return node

    result: dict[str, Any] = resolve(template)
    for section in ("Resources", "Outputs"):
        result[section] = {
            key: value
            for key, value in result[section].items()
            if "Condition" not in value or conditions[value["Condition"]]
        }
    return result


def prerequisites_in(mode: str) -> dict[str, Any]:
    """The prerequisites template as deployed in ``mode``."""
    return rendered(load_named("prerequisites"), PREREQUISITES_MODES[mode])


def provider_roles_of(account: str) -> dict[str, Any]:
    """The ARN pattern of the provider roles in ``account`` (``*``: any account)."""
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{account}:role/${{ProviderRoleNamePrefix}}*"}


def expected_readers(mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Principal and Condition of a statement that lets the provider roles read: any
    principal of the organisation, or this account only; with the provider role's name."""
    if mode == "organisation":
        return {"AWS": "*"}, {
            "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}},
            "ArnLike": {"aws:PrincipalArn": provider_roles_of("*")},
        }
    return ACCOUNT_ROOT, {"ArnLike": {"aws:PrincipalArn": provider_roles_of("${AWS::AccountId}")}}


def policy_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every (logical id, statement) of the key, secret and bucket policies."""
    found = []
    for logical_id, resource in template["Resources"].items():
        for key in ("KeyPolicy", "ResourcePolicy", "PolicyDocument"):
            document = resource.get("Properties", {}).get(key)
            if document is not None:
                found += [(logical_id, statement) for statement in document["Statement"]]
    return found


def test_organization_id_is_optional(prerequisites_template: dict[str, Any]) -> None:
    parameter = prerequisites_template["Parameters"]["OrganizationId"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    for accepted in ("", "o-abc123def4", "o-" + "a" * 32):
        assert pattern.fullmatch(accepted), accepted
    for refused in ("o-abc123", "abc123def4", "O-ABC123DEF4", "111111111111", " "):
        assert not pattern.fullmatch(refused), refused
    assert prerequisites_template["Conditions"]["HasOrganization"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]
    }


@prerequisites_modes
def test_a_mode_deploys_every_resource_and_output(mode: str) -> None:
    # Only the policies change with the mode, never what is made.
    template = prerequisites_in(mode)
    assert set(template["Resources"]) == set(load_named("prerequisites")["Resources"])
    assert set(template["Outputs"]) == set(load_named("prerequisites")["Outputs"])


@prerequisites_modes
@pytest.mark.parametrize(
    "logical_id", ["QualysCredentialsSecretPolicy", "SlackWebhookSecretPolicy"]
)
def test_secrets_are_readable_only_by_provider_roles(mode: str, logical_id: str) -> None:
    policy = prerequisites_in(mode)["Resources"][logical_id]["Properties"]
    assert policy["BlockPublicPolicy"] is True
    (statement,) = policy["ResourcePolicy"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    principal, condition = expected_readers(mode)
    assert statement["Principal"] == principal, mode
    assert statement["Condition"] == condition, mode


@prerequisites_modes
def test_key_decrypts_only_through_secrets_manager_for_provider_roles(mode: str) -> None:
    key = prerequisites_in(mode)["Resources"]["SecretsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    assert set(statements) == {"AccountAdministration", "ProviderRolesDecryptThroughSecretsManager"}
    assert statements["AccountAdministration"]["Principal"] == ACCOUNT_ROOT
    readers = statements["ProviderRolesDecryptThroughSecretsManager"]
    assert readers["Action"] == "kms:Decrypt"
    principal, condition = expected_readers(mode)
    condition["StringEquals"] = condition.get("StringEquals", {}) | {
        "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}
    }
    assert readers["Principal"] == principal, mode
    assert readers["Condition"] == condition, mode


@prerequisites_modes
def test_artifacts_bucket_is_private_tls_only_and_readable_only_by_the_organisation(
    mode: str,
) -> None:
    resources = prerequisites_in(mode)["Resources"]
    bucket = resources["ArtifactsBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    statements = {
        s["Sid"]: s
        for s in resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    }
    tls = statements.pop("DenyInsecureTransport")
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    if mode == "single account":
        # The deployer in this account reads the zip with its own IAM permissions.
        assert statements == {}, "without an organisation the bucket grants no one anything"
        return
    read = statements.pop("OrganizationReadsCode")
    assert statements == {}
    assert read["Effect"] == "Allow"
    assert read["Principal"] == "*"
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == {"Fn::Sub": "${ArtifactsBucket.Arn}/*"}
    assert read["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}


@prerequisites_modes
def test_no_principal_outside_the_organisation_or_the_account_is_allowed(mode: str) -> None:
    allowed = [
        (i, s) for i, s in policy_statements(prerequisites_in(mode)) if s["Effect"] == "Allow"
    ]
    assert len(allowed) == {"organisation": 5, "single account": 4}[mode]
    for logical_id, statement in allowed:
        if statement["Principal"] in ("*", {"AWS": "*"}):
            assert mode == "organisation", f"{logical_id}: a wildcard principal, no organisation"
            org = statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"]
            assert org == {"Ref": "OrganizationId"}, logical_id
        else:
            assert statement["Principal"] == ACCOUNT_ROOT, f"{logical_id} ({mode})"


@pytest.fixture(scope="module")
def checkov_mode_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """checkov's results on the prerequisites template as each mode deploys it, with its
    suppressions taken out. checkov does not look inside an Fn::If: on the template file
    itself it sees neither mode's principals."""
    binary = checkov_binary()
    folder = tmp_path_factory.mktemp("prerequisites-modes")
    results: dict[str, dict[str, Any]] = {}
    for mode in PREREQUISITES_MODES:
        template = prerequisites_in(mode)
        for resource in template["Resources"].values():
            resource.get("Metadata", {}).pop("checkov", None)
        path = folder / f"{mode.replace(' ', '-')}.json"
        path.write_text(json.dumps(template, indent=1), encoding="utf-8")
        results[mode] = run_checkov(binary, path, f"prerequisites ({mode})")
    return results


def checkov_failures(report: dict[str, Any]) -> set[tuple[str, str]]:
    assert report["summary"]["parsing_errors"] == 0
    return {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}


def declared_checkov_suppressions(template: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (skip["id"], f"{resource['Type']}.{logical_id}")
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


@prerequisites_modes
def test_checkov_fails_no_unsuppressed_check_in_either_mode(
    mode: str, checkov_mode_results: dict[str, Any], prerequisites_template: dict[str, Any]
) -> None:
    report = checkov_mode_results[mode]
    assert report["summary"]["resource_count"] == len(prerequisites_in(mode)["Resources"])
    unsuppressed = checkov_failures(report) - declared_checkov_suppressions(prerequisites_template)
    assert unsuppressed == set(), f"checkov failed checks in the {mode} mode: {unsuppressed}"


def test_every_prerequisites_suppression_is_needed_in_some_mode(
    checkov_mode_results: dict[str, Any], prerequisites_template: dict[str, Any]
) -> None:
    failures = {mode: checkov_failures(report) for mode, report in checkov_mode_results.items()}
    assert set().union(*failures.values()) == declared_checkov_suppressions(prerequisites_template)
    # The key's wildcard principal exists only with an organisation.
    key_wildcard = ("CKV_AWS_33", "AWS::KMS::Key.SecretsKey")
    assert key_wildcard in failures["organisation"]
    assert key_wildcard not in failures["single account"]


def test_provider_role_name_matches_the_central_policies(
    connector_template: dict[str, Any], prerequisites_template: dict[str, Any]
) -> None:
    prefix = prerequisites_template["Parameters"]["ProviderRoleNamePrefix"]["Default"]
    role_name = connector_template["Resources"]["ProviderFunctionRole"]["Properties"]["RoleName"]
    assert role_name["Fn::Sub"].startswith(prefix)
    qualys_role = connector_template["Resources"]["QualysRole"]["Properties"]["RoleName"]
    assert not qualys_role["Fn::Sub"].startswith(prefix), "the role Qualys assumes must not read"


def test_credentials_secret_takes_no_secret_value(prerequisites_template: dict[str, Any]) -> None:
    secret = prerequisites_template["Resources"]["QualysCredentialsSecret"]["Properties"]
    assert "SecretString" not in secret
    generated = secret["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {"username": "REPLACE_ME"}
    assert generated["GenerateStringKey"] == "password"
    assert secret["KmsKeyId"] == {"Ref": "SecretsKey"}
    assert "put-secret-value" in secret["Description"]
    for parameter in prerequisites_template["Parameters"].values():
        assert parameter.get("NoEcho") is None, "no secret goes through a parameter"


def test_slack_secret_is_optional_and_a_placeholder(prerequisites_template: dict[str, Any]) -> None:
    secret = prerequisites_template["Resources"]["SlackWebhookSecret"]
    assert secret["Condition"] == "CreateSlack"
    assert json.loads(secret["Properties"]["SecretString"]) == {"webhook_url": "REPLACE_ME"}
    assert (
        prerequisites_template["Resources"]["SlackWebhookSecretPolicy"]["Condition"]
        == "CreateSlack"
    )


def test_prerequisites_outputs_feed_the_connector_parameters(
    connector_template: dict[str, Any], prerequisites_template: dict[str, Any]
) -> None:
    outputs = set(prerequisites_template["Outputs"])
    assert outputs == {
        "QualysCredentialsSecretArn",
        "SlackWebhookSecretArn",
        "SecretsKmsKeyArn",
        "ArtifactsBucketName",
    }
    assert outputs - {"ArtifactsBucketName"} <= set(connector_template["Parameters"])
