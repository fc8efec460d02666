"""The CfCT configuration: the one in use passes every check, and the checks catch mistakes.

The configuration in use is the folder ``CFCT_CONFIG`` names (``make test CFCT_CONFIG=...``),
the example ``stackset/`` by default. Its tests check that it is right, never that it equals
the example: an organisation's own values pass. The example alone must hold no real account.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from pykwalify.core import Core
from pykwalify.errors import PyKwalifyException

from scripts import cfct_config
from scripts.cfct_config import MANIFEST_RULES, as_schema, check

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "stackset"
CONFIG = (REPO_ROOT / os.environ.get("CFCT_CONFIG", "stackset")).resolve()
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_cfct_package.py"
# CfCT's own schema, where the CI lays shared/ beside the checkout; a clone has the project's
# own rules (scripts/cfct_config.py), which the tests below compare with it when present.
CFCT_SCHEMA = REPO_ROOT.parent / "shared" / "vendor" / "cfct" / "manifest-v2.schema.yaml"
DOCUMENTATION_ACCOUNT = "111111111111"


def build_package(out: Path, *extra: str) -> Path:
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    package = out / "custom-control-tower-configuration.zip"
    assert result.stdout.strip() == str(package)
    return package


def write_config(root: Path, manifest: str, parameters: list[dict[str, str]] | None) -> Path:
    """A configuration folder with this manifest text and one parameter file."""
    (root / "parameters").mkdir(parents=True, exist_ok=True)
    (root / "manifest.yaml").write_text(manifest, encoding="utf-8")
    if parameters is not None:
        (root / "parameters" / "qualys-connector.json").write_text(
            json.dumps(parameters, indent=2), encoding="utf-8"
        )
    return root


def example_parameters(**changes: str | None) -> list[dict[str, str]]:
    """The example's parameters with some values changed (None: left out)."""
    loaded = json.loads((EXAMPLE / "parameters" / "qualys-connector.json").read_text("utf-8"))
    values = {p["ParameterKey"]: p["ParameterValue"] for p in loaded} | changes
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items() if v is not None]


EXAMPLE_MANIFEST = (EXAMPLE / "manifest.yaml").read_text(encoding="utf-8")


def problems_of(tmp_path: Path, manifest: str, **changes: str | None) -> list[str]:
    config = write_config(tmp_path / "config", manifest, example_parameters(**changes))
    return [str(problem) for problem in check(config)]


# --- the configuration in use -------------------------------------------------------------


def test_configuration_in_use_passes_every_check() -> None:
    problems = [str(problem) for problem in check(CONFIG)]
    assert problems == [], "\n".join(problems)


def test_configuration_in_use_passes_cfcts_own_schema() -> None:
    if not CFCT_SCHEMA.is_file():
        pytest.skip(f"{CFCT_SCHEMA} is absent; the project's own rules checked it above")
    Core(source_file=str(CONFIG / "manifest.yaml"), schema_files=[str(CFCT_SCHEMA)]).validate(
        raise_exception=True
    )


def test_package_holds_the_manifest_and_exactly_the_files_it_names(tmp_path: Path) -> None:
    manifest = yaml.safe_load((CONFIG / "manifest.yaml").read_text(encoding="utf-8"))
    named = {r[k] for r in manifest["resources"] for k in ("resource_file", "parameter_file")}
    with zipfile.ZipFile(build_package(tmp_path, "--config", str(CONFIG))) as package:
        assert set(package.namelist()) == {"manifest.yaml", *named}
        assert package.read("manifest.yaml") == (CONFIG / "manifest.yaml").read_bytes()
        template = "templates/qualys-connector.yaml"
        if template in named and not (CONFIG / template).is_file():
            assert package.read(template) == (REPO_ROOT / template).read_bytes()


def test_package_is_reproducible(tmp_path: Path) -> None:
    first = build_package(tmp_path / "a", "--config", str(CONFIG)).read_bytes()
    assert build_package(tmp_path / "b", "--config", str(CONFIG)).read_bytes() == first


def test_code_key_is_written_into_the_packaged_parameters(tmp_path: Path) -> None:
    key = "qualys-connector/qualys-connector-provider-0123456789abcdef.zip"
    with zipfile.ZipFile(build_package(tmp_path, "--code-s3-key", key)) as package:
        packaged = json.loads(package.read("parameters/qualys-connector.json"))
    values = {entry["ParameterKey"]: entry["ParameterValue"] for entry in packaged}
    source = {p["ParameterKey"]: p["ParameterValue"] for p in example_parameters()}
    assert values == source | {"CodeS3Key": key}


# --- the example --------------------------------------------------------------------------


def test_the_example_holds_only_the_documentation_account() -> None:
    # The guard against committing an organisation's accounts to this repository: it reads
    # the example only, so a configuration of your own (CFCT_CONFIG) is never held to it.
    text = (EXAMPLE / "parameters" / "qualys-connector.json").read_text("utf-8")
    text += EXAMPLE_MANIFEST
    # An account id: 12 digits in an ARN's account field or in a bucket name.
    accounts = set(re.findall(r"arn:[^:\"]+:[^:\"]+:[^:\"]*:([0-9]{12}):", text))
    accounts |= set(re.findall(r"-([0-9]{12})-", text))
    assert accounts == {DOCUMENTATION_ACCOUNT}, (
        "stackset/ is the shipped example: keep your organisation's configuration in a folder"
        " of your own and point CFCT_CONFIG at it (see the README)"
    )


def test_an_organisations_own_configuration_passes_and_builds(tmp_path: Path) -> None:
    # Real-looking values, another home region and two regions: nothing here is the example.
    manifest = (
        EXAMPLE_MANIFEST.replace("region: us-east-1", "region: eu-west-1")
        .replace("- Workloads", "- Production:Payments\n        - Sandbox")
        .replace("      - us-east-1", "      - eu-west-1\n      - eu-central-1")
    )
    values = {
        p["ParameterKey"]: p["ParameterValue"].replace("111111111111", "123456789012")
        for p in example_parameters(ConnectorRegion="eu-west-1", QualysPlatform="EU2")
    }
    values = {k: v.replace("us-east-1", "eu-west-1") for k, v in values.items()}
    config = write_config(
        tmp_path / "org",
        manifest,
        [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )
    assert [str(p) for p in check(config)] == []
    with zipfile.ZipFile(build_package(tmp_path / "out", "--config", str(config))) as package:
        assert package.read("manifest.yaml").decode() == manifest


# --- the project's rules agree with CfCT's schema -------------------------------------------


def _normalised(schema: Any) -> Any:
    """A pykwalify schema without what does not change a verdict (required: False)."""
    if isinstance(schema, dict):
        return {
            key: _normalised(value)
            for key, value in schema.items()
            if not (key == "required" and value is False)
        }
    if isinstance(schema, list):
        return [_normalised(item) for item in schema]
    return schema


def test_the_projects_manifest_rules_are_cfcts_schema() -> None:
    if not CFCT_SCHEMA.is_file():
        pytest.skip(f"{CFCT_SCHEMA} is absent (the CI lays shared/ beside the checkout)")
    theirs = yaml.safe_load(CFCT_SCHEMA.read_text(encoding="utf-8"))
    assert as_schema(MANIFEST_RULES) == _normalised(theirs)


MISTAKES = {
    "quoted version": ("version: 2021-03-15", 'version: "2021-03-15"', "version: must be a date"),
    "other version": ("version: 2021-03-15", "version: 2020-01-01", "version: must be one of"),
    "unknown field": (
        "    deploy_method: stack_set",
        "    deploy_method: stack_set\n    deploy_mode: stack_set",
        "resources[0].deploy_mode: is not a field here",
    ),
    "deploy method": (
        "deploy_method: stack_set",
        "deploy_method: stackset",
        "resources[0].deploy_method: must be one of: scp, stack_set, rcp",
    ),
    "missing resource file": (
        "    resource_file: templates/qualys-connector.yaml\n",
        "",
        "resources[0].resource_file: is required",
    ),
    "region twice": (
        "      - us-east-1\n",
        "      - us-east-1\n      - us-east-1\n",
        "resources[0].regions[1]: us-east-1 is listed twice",
    ),
    "regions not a list": (
        "    regions:\n      - us-east-1\n",
        "    regions: us-east-1\n",
        "resources[0].regions: must be a list",
    ),
    "field at the wrong level": (
        "    deployment_targets:\n",
        "    deployment_targets:\n      accounts: []\n    unused:\n",
        "resources[0].unused: is not a field here",
    ),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_the_projects_rules_and_cfcts_schema_reject_the_same_mistakes(
    case: str, tmp_path: Path
) -> None:
    old, new, expected = MISTAKES[case]
    assert old in EXAMPLE_MANIFEST, case
    manifest = EXAMPLE_MANIFEST.replace(old, new, 1)
    problems = problems_of(tmp_path, manifest)
    assert any(expected in problem for problem in problems), problems
    if CFCT_SCHEMA.is_file():
        with pytest.raises(PyKwalifyException):
            Core(source_data=yaml.safe_load(manifest), schema_files=[str(CFCT_SCHEMA)]).validate(
                raise_exception=True
            )


# --- beyond the schema: what CloudFormation and AWS would refuse ----------------------------

CONFIG_MISTAKES = {
    "unknown home region": (
        {"manifest": ("region: us-east-1", "region: us-east-9")},
        "region: 'us-east-9' is not an AWS region",
    ),
    "unknown target region": (
        {"manifest": ("      - us-east-1", "      - eu-west-7")},
        "resources[0].regions[0]: 'eu-west-7' is not an AWS region",
    ),
    "OU with an empty level": (
        {"manifest": ("- Workloads", "- Workloads::Payments")},
        "organizational_units[0]: 'Workloads::Payments' has an empty level",
    ),
    "OU with a space at its end": (
        {"manifest": ("- Workloads", "- 'Workloads '")},
        "starts or ends with a space",
    ),
    "account that is not an id": (
        {
            "manifest": (
                "      organizational_units:",
                "      accounts: [12345]\n      organizational_units:",
            )
        },
        "accounts[0]: '12345' is neither a 12-digit account id",
    ),
    "misspelt parameter key": (
        {"ActivationModule": "VM"},
        "parameters/qualys-connector.json: ActivationModule:",
    ),
    "value outside AllowedValues": (
        {"QualysPlatform": "US9"},
        "parameters/qualys-connector.json: QualysPlatform:",
    ),
    "value against AllowedPattern": (
        {"CodeS3Bucket": "Not A Bucket"},
        "parameters/qualys-connector.json: CodeS3Bucket:",
    ),
    "required parameter left out": (
        {"QualysCredentialsSecretArn": None},
        "parameters/qualys-connector.json: QualysCredentialsSecretArn:",
    ),
    "two regions without ConnectorRegion": (
        {
            "manifest": ("      - us-east-1", "      - us-east-1\n      - eu-west-1"),
            "ConnectorRegion": None,
        },
        "ConnectorRegion: must name one of us-east-1, eu-west-1",
    ),
    "ConnectorRegion outside the regions": (
        {"ConnectorRegion": "eu-west-1"},
        "ConnectorRegion: eu-west-1 is not one of the resource's regions (us-east-1)",
    ),
    "parameter file missing": (
        {"manifest": ("parameters/qualys-connector.json", "parameters/absent.json")},
        "resources[0].parameter_file: parameters/absent.json: no such file",
    ),
    "template missing": (
        {"manifest": ("file: templates/qualys-connector.yaml", "file: templates/absent.yaml")},
        "resources[0].resource_file: templates/absent.yaml: no such file in the package",
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_MISTAKES))
def test_check_config_names_the_file_the_field_and_the_rule(case: str, tmp_path: Path) -> None:
    changes, expected = CONFIG_MISTAKES[case]
    edits = dict(changes)
    manifest = EXAMPLE_MANIFEST
    if "manifest" in edits:
        old, new = edits.pop("manifest")
        assert old in manifest, case
        manifest = manifest.replace(old, new, 1)
    problems = problems_of(tmp_path, manifest, **edits)  # type: ignore[arg-type]
    assert any(expected in problem for problem in problems), problems


def test_a_parameter_file_that_is_not_key_value_pairs_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path, EXAMPLE_MANIFEST, None)
    (config / "parameters" / "qualys-connector.json").write_text('{"QualysPlatform": "US1"}')
    (problem,) = (str(p) for p in check(config))
    assert problem.endswith(
        'parameters/qualys-connector.json: must be a JSON list of {"ParameterKey": "...",'
        ' "ParameterValue": "..."} strings'
    )


def test_make_check_config_prints_each_problem_and_fails(tmp_path: Path) -> None:
    manifest = EXAMPLE_MANIFEST.replace("version: 2021-03-15", 'version: "2021-03-15"')
    config = write_config(tmp_path / "mine", manifest, example_parameters(QualysPlatform="US9"))
    result = subprocess.run(
        [sys.executable, "-m", "scripts.cfct_config", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.endswith(
            "manifest.yaml: version: must be a date (unquoted, e.g. 2021-03-15),"
            " not the string '2021-03-15'"
        )
        for line in lines
    ), lines
    assert any("qualys-connector.json: QualysPlatform:" in line for line in lines), lines
    assert lines[-1].startswith("2 problem(s) in ")


def test_make_check_config_passes_the_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scripts.cfct_config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "stackset: the CfCT configuration passes every check\n"


def test_known_regions_cover_every_partition() -> None:
    regions = cfct_config.known_regions()
    assert {"us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1"} <= regions
    assert "us-east-9" not in regions


def test_check_config_with_the_organisation_names_ous_it_lacks(tmp_path: Path) -> None:
    # A placeholder OU that does not exist makes a StackSet with no instance and no warning.
    manifest = EXAMPLE_MANIFEST.replace(
        "        - Workloads\n",
        "        - Workloads\n        - Workloads:Payments\n        - Wrokloads\n",
    )
    config = write_config(tmp_path / "config", manifest, example_parameters())
    with mock_aws():
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        root = client.list_roots()["Roots"][0]["Id"]
        workloads = client.create_organizational_unit(ParentId=root, Name="Workloads")
        client.create_organizational_unit(
            ParentId=workloads["OrganizationalUnit"]["Id"], Name="Payments"
        )
        ous = cfct_config.organization_ous(client)
    assert ous == {"Workloads", "Workloads:Payments"}
    (problem,) = cfct_config.missing_ou_problems(config, ous)
    assert str(problem).endswith(
        "manifest.yaml: resources[0].deployment_targets.organizational_units[2]:"
        " 'Wrokloads' is not an OU of this organisation: no account would get the stack"
    )
