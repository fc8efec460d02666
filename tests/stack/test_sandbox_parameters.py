"""The sandbox refuses parameters as CloudFormation does, before it creates anything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from sandbox.aws import Sandbox
from sandbox.cloudformation.parameters import (
    ParameterValidationError,
    check_parameters,
    parameter_problems,
)

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Platform": {"Type": "String", "AllowedValues": ["US1", "EU1"]},
        "Bucket": {
            "Type": "String",
            "Default": "code-bucket",
            "AllowedPattern": "[a-z0-9-]{3,63}",
            "ConstraintDescription": "an S3 bucket name",
        },
        "Key": {"Type": "String", "Default": "k", "MinLength": 1, "MaxLength": 8},
        "Days": {"Type": "Number", "Default": 7, "MinValue": 1, "MaxValue": 30},
        "Modules": {
            "Type": "CommaDelimitedList",
            "Default": "VM",
            "AllowedValues": ["VM", "PC", "SCA"],
        },
        "Tags": {"Type": "List<Number>", "Default": ""},
        "Optional": {"Type": "String", "Default": "", "AllowedValues": ["", "yes"]},
        "Subnets": {
            "Type": "CommaDelimitedList",
            "Default": "subnet-0",
            "AllowedPattern": "subnet-[0-9a-f]+",
        },
        "KeyName": {"Type": "AWS::EC2::KeyPair::KeyName", "Default": "ops"},
    }
}

CASES: dict[str, tuple[dict[str, str], list[tuple[str, str]]]] = {
    "all well": ({"Platform": "EU1", "Modules": "VM,PC", "Days": "30", "Tags": "1,2"}, []),
    "a Default makes it optional": ({"Platform": "US1"}, []),
    "within AllowedPattern, matched whole": ({"Platform": "US1", "Bucket": "my-bucket"}, []),
    "lengths at their bounds": ({"Platform": "US1", "Key": "12345678"}, []),
    "numbers at their bounds and in decimal forms": (
        {"Platform": "US1", "Days": "1", "Tags": "-2.5,.5,1e3,+4"},
        [],
    ),
    "empty where AllowedValues has the empty": ({"Platform": "US1", "Optional": ""}, []),
    "each list element within AllowedPattern": (
        {"Platform": "US1", "Subnets": "subnet-0a,subnet-1b"},
        [],
    ),
    "an AWS-specific type taken as given": ({"Platform": "US1", "KeyName": "any name"}, []),
    "a required one missing": (
        {},
        [("Platform", "is required (it has no Default) and was not given")],
    ),
    "a misspelt key": (
        {"Platform": "US1", "Module": "VM"},
        [("Module", "is not a parameter of the template (did you mean Modules?)")],
    ),
    "outside AllowedValues": (
        {"Platform": "US9"},
        [("Platform", "'US9' is not one of the AllowedValues (US1, EU1)")],
    ),
    "empty where AllowedValues has no empty": (
        {"Platform": ""},
        [("Platform", "'' is not one of the AllowedValues (US1, EU1)")],
    ),
    "against AllowedPattern, which must match whole": (
        {"Platform": "US1", "Bucket": "UPPER-case"},
        [("Bucket", "'UPPER-case' does not match an S3 bucket name")],
    ),
    "too short": ({"Platform": "US1", "Key": ""}, [("Key", "is shorter than its MinLength 1")]),
    "too long": (
        {"Platform": "US1", "Key": "123456789"},
        [("Key", "is longer than its MaxLength 8")],
    ),
    "not a number": ({"Platform": "US1", "Days": "seven"}, [("Days", "'seven' is not a number")]),
    "not a number, though Python's float takes it": (
        {"Platform": "US1", "Days": "1_0", "Tags": "nan,inf"},
        [
            ("Days", "'1_0' is not a number"),
            ("Tags", "'nan' is not a number"),
            ("Tags", "'inf' is not a number"),
        ],
    ),
    "below MinValue": ({"Platform": "US1", "Days": "0"}, [("Days", "0 is below its MinValue 1")]),
    "above MaxValue": (
        {"Platform": "US1", "Days": "31"},
        [("Days", "31 is above its MaxValue 30")],
    ),
    "a list element outside AllowedValues": (
        {"Platform": "US1", "Modules": "VM,XX"},
        [("Modules", "'XX' is not one of the AllowedValues (VM, PC, SCA)")],
    ),
    "a list element against AllowedPattern": (
        {"Platform": "US1", "Subnets": "subnet-0a,vpc-1"},
        [("Subnets", "'vpc-1' does not match AllowedPattern subnet-[0-9a-f]+")],
    ),
    "a list element that is not a number": (
        {"Platform": "US1", "Tags": "1,x"},
        [("Tags", "'x' is not a number")],
    ),
    "several at once, each named": (
        {"Platform": "US9", "Days": "99", "Colour": "red"},
        [
            ("Platform", "'US9' is not one of the AllowedValues (US1, EU1)"),
            ("Days", "99 is above its MaxValue 30"),
            (
                "Colour",
                (
                    "is not a parameter of the template (it has: Platform, Bucket, Key, Days,"
                    " Modules, Tags, Optional, Subnets, KeyName)"
                ),
            ),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_parameter_rules(case: str) -> None:
    given, expected = CASES[case]
    assert parameter_problems(TEMPLATE, given) == expected, case


def test_check_parameters_raises_naming_every_problem() -> None:
    with pytest.raises(ParameterValidationError) as raised:
        check_parameters(TEMPLATE, {"Platform": "US9", "Module": "VM"})
    assert str(raised.value) == (
        "Parameter 'Platform': 'US9' is not one of the AllowedValues (US1, EU1);"
        " Parameter 'Module': is not a parameter of the template (did you mean Modules?)"
    )
    check_parameters(TEMPLATE, {"Platform": "US1"})


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def _cloudformation(box: Sandbox) -> Any:
    # moto's CloudFormation in the central account, where the sandbox deploys by default.
    return boto3.client("cloudformation", region_name=box.region)


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        (
            {"ActivationModule": "VM"},
            (
                "Parameter 'ActivationModule': is not a parameter of the template"
                r" \(did you mean ActivationModules\?\)"
            ),
        ),
        (
            {"QualysPlatform": "US9"},
            r"Parameter 'QualysPlatform': 'US9' is not one of the AllowedValues \(US1, ",
        ),
        ({"LogLevel": "TRACE"}, "Parameter 'LogLevel': 'TRACE' is not one of the AllowedValues"),
    ],
)
def test_a_deploy_with_a_bad_parameter_fails_and_creates_nothing(
    box: Sandbox, parameters: dict[str, str], named: str
) -> None:
    with pytest.raises(ParameterValidationError, match=named):
        box.deploy("qualys-connector", parameters)
    assert box.qualys.connectors() == []
    assert box.engine.events == []
    assert _cloudformation(box).list_stacks()["StackSummaries"] == []


def test_a_stack_set_with_a_bad_parameter_fails_and_creates_nothing(box: Sandbox) -> None:
    with pytest.raises(ParameterValidationError, match="ActivationModule"):
        box.create_stack_set("CustomControlTower-x", ["222222222222"], {"ActivationModule": "VM"})
    assert box.qualys.connectors() == []
    assert _cloudformation(box).list_stack_sets()["Summaries"] == []


def test_an_update_with_a_bad_parameter_changes_nothing(box: Sandbox) -> None:
    view = box.deploy("qualys-connector")
    with pytest.raises(ParameterValidationError, match="RunFrequencyMinutes"):
        box.update("qualys-connector", {"RunFrequencyMinutes": "7"})
    assert box.stack(view.stack_id).parameters == view.parameters


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_every_log_level_the_provider_knows_deploys(box: Sandbox, level: str) -> None:
    box.check_parameters(box.parameters(LogLevel=level))


RULED: dict[str, Any] = {
    "Parameters": {
        "Token": {"Type": "String", "Default": ""},
        "Bucket": {"Type": "String", "Default": ""},
    },
    "Rules": {
        "OwnNeedsBucket": {
            "RuleCondition": {"Fn::Equals": [{"Ref": "Token"}, ""]},
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Bucket"}, ""]}]},
                    "AssertDescription": "Bucket is required unless Token is set.",
                }
            ],
        }
    },
}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, [("Bucket", "Bucket is required unless Token is set. (rule OwnNeedsBucket)")]),
        ({"Bucket": "b"}, []),
        ({"Token": "t"}, []),
    ],
)
def test_a_rules_assertion_is_checked_when_its_condition_holds(
    given: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert parameter_problems(RULED, given) == expected


def test_a_rule_the_sandbox_cannot_evaluate_is_not_taken_as_passed() -> None:
    template = {
        "Parameters": {"Name": {"Type": "String", "Default": "x"}},
        "Rules": {"R": {"Assertions": [{"Assert": {"Fn::Contains": [["x"], {"Ref": "Name"}]}}]}},
    }
    with pytest.raises(NotImplementedError, match="Fn::Contains"):
        parameter_problems(template, {})


@pytest.mark.parametrize(
    "left_out", ["CodeS3Bucket", "CodeS3Key", "QualysCredentialsSecretArn", "SecretsKmsKeyArn"]
)
def test_the_connector_template_needs_its_code_and_secret_without_a_central_provider(
    box: Sandbox, left_out: str
) -> None:
    with pytest.raises(ParameterValidationError, match=f"Parameter '{left_out}': {left_out} is"):
        box.deploy("qualys-connector", {left_out: ""})
    assert _cloudformation(box).list_stacks()["StackSummaries"] == []


def test_central_mode_needs_neither_code_nor_secret_in_the_member_account(box: Sandbox) -> None:
    central = box.deploy_central()
    token = central.outputs["ProviderServiceToken"]
    member = {
        "ProviderServiceToken": token,
        "CodeS3Bucket": "",
        "CodeS3Key": "",
        "QualysCredentialsSecretArn": "",
        "SecretsKmsKeyArn": "",
    }

    view = box.deploy("qualys-connector", member, account_id="210000000009")

    assert view.status == "CREATE_COMPLETE"
