"""The CfCT configuration package: manifest schema, referenced files and parameter files."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode.cfn_yaml import load
from pykwalify.core import Core
from pykwalify.errors import SchemaError

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = REPO_ROOT / "stackset" / "manifest.yaml"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_cfct_package.py"
# CfCT's own schema, vendored beside the project (CI puts shared/ next to the checkout).
SCHEMA = REPO_ROOT.parent / "shared" / "vendor" / "cfct" / "manifest-v2.schema.yaml"
PACKAGE_FILES = {
    "manifest.yaml",
    "templates/qualys-connector.yaml",
    "parameters/qualys-connector.json",
}
FAKE_ACCOUNT = "111111111111"


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


def validate_with_cfct_schema(manifest: Path) -> None:
    """Validate as CfCT's build stage does (pykwalify 1.8 with CfCT's manifest-v2 schema)."""
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA} is absent (CI puts shared/ beside the checkout)")
    Core(source_file=str(manifest), schema_files=[str(SCHEMA)]).validate(raise_exception=True)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The assembled package, built once by the real script."""
    path = build_package(tmp_path_factory.mktemp("cfct"))
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def resource(manifest: dict[str, Any]) -> dict[str, Any]:
    (only,) = manifest["resources"]
    assert isinstance(only, dict)
    return only


@pytest.fixture(scope="module")
def template(package: zipfile.ZipFile, resource: dict[str, Any], tmp_path_factory: Any) -> Any:
    path = tmp_path_factory.mktemp("template") / "template.yaml"
    path.write_bytes(package.read(resource["resource_file"]))
    return load(str(path))


@pytest.fixture(scope="module")
def parameters(package: zipfile.ZipFile, resource: dict[str, Any]) -> list[dict[str, str]]:
    loaded: list[dict[str, str]] = json.loads(package.read(resource["parameter_file"]))
    return loaded


def test_manifest_passes_the_cfct_schema() -> None:
    validate_with_cfct_schema(MANIFEST)


def test_cfct_schema_rejects_a_quoted_version(tmp_path: Path) -> None:
    # The check above can fail: the mistake it exists for is caught.
    quoted = tmp_path / "manifest.yaml"
    text = MANIFEST.read_text(encoding="utf-8").replace(
        "version: 2021-03-15", 'version: "2021-03-15"'
    )
    assert text != MANIFEST.read_text(encoding="utf-8")
    quoted.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError):
        validate_with_cfct_schema(quoted)


def test_manifest_version_is_an_unquoted_date(manifest: dict[str, Any]) -> None:
    assert manifest["version"] == datetime.date(2021, 3, 15)


def test_manifest_deploys_one_stack_set_to_ous(
    manifest: dict[str, Any], resource: dict[str, Any]
) -> None:
    assert manifest["region"] == "us-east-1"
    assert resource["name"] == "qualys-connector"
    assert resource["deploy_method"] == "stack_set"
    assert resource["deployment_targets"] == {"organizational_units": ["Workloads"]}
    assert resource["regions"] == ["us-east-1"]
    assert resource["resource_file"] == "templates/qualys-connector.yaml"
    assert resource["parameter_file"] == "parameters/qualys-connector.json"


def test_package_holds_exactly_the_manifest_and_its_files(package: zipfile.ZipFile) -> None:
    assert set(package.namelist()) == PACKAGE_FILES
    assert package.read("manifest.yaml") == MANIFEST.read_bytes()
    assert (
        package.read("templates/qualys-connector.yaml")
        == (REPO_ROOT / "templates" / "qualys-connector.yaml").read_bytes()
    )


def test_every_file_the_manifest_names_is_in_the_package(
    package: zipfile.ZipFile, resource: dict[str, Any]
) -> None:
    for key in ("resource_file", "parameter_file"):
        relative = resource[key]
        assert not relative.startswith("/"), key
        assert ".." not in relative.split("/"), key
        assert relative in package.namelist(), key


def test_package_is_reproducible(package: zipfile.ZipFile, tmp_path: Path) -> None:
    assert package.filename is not None
    assert build_package(tmp_path).read_bytes() == Path(package.filename).read_bytes()


def test_parameter_file_is_a_list_of_key_value_pairs(parameters: list[dict[str, str]]) -> None:
    assert isinstance(parameters, list)
    for entry in parameters:
        assert set(entry) == {"ParameterKey", "ParameterValue"}, entry
        assert isinstance(entry["ParameterValue"], str), entry
    keys = [entry["ParameterKey"] for entry in parameters]
    assert len(keys) == len(set(keys)), "a parameter given twice"


def test_parameter_keys_are_template_parameters(
    parameters: list[dict[str, str]], template: Any
) -> None:
    unknown = {entry["ParameterKey"] for entry in parameters} - set(template["Parameters"])
    assert unknown == set()


def test_every_parameter_without_default_is_given(
    parameters: list[dict[str, str]], template: Any
) -> None:
    required = {name for name, spec in template["Parameters"].items() if "Default" not in spec}
    assert required, "the template has required parameters (the secret ARNs, the code location)"
    missing = required - {entry["ParameterKey"] for entry in parameters}
    assert missing == set()


def test_parameter_values_satisfy_the_template_constraints(
    parameters: list[dict[str, str]], template: Any
) -> None:
    for entry in parameters:
        spec = template["Parameters"][entry["ParameterKey"]]
        value = entry["ParameterValue"]
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), entry
        if "AllowedValues" in spec:
            assert value in [str(allowed) for allowed in spec["AllowedValues"]], entry
        if spec["Type"] == "Number":
            number = int(value)
            assert spec.get("MinValue", number) <= number <= spec.get("MaxValue", number), entry


def test_parameter_file_holds_only_fake_accounts(parameters: list[dict[str, str]]) -> None:
    values = [entry["ParameterValue"] for entry in parameters]
    arn_accounts = {
        m for value in values for m in re.findall(r"^arn:[^:]+:[^:]+:[^:]*:(\d*):", value)
    }
    bucket_accounts = {m for value in values for m in re.findall(r"-(\d{12})-", value)}
    assert arn_accounts | bucket_accounts == {FAKE_ACCOUNT}


def test_code_key_is_written_into_the_packaged_parameters(tmp_path: Path) -> None:
    key = "qualys-connector/qualys-connector-provider-0123456789abcdef.zip"
    with zipfile.ZipFile(build_package(tmp_path, "--code-s3-key", key)) as package:
        assert set(package.namelist()) == PACKAGE_FILES
        parameters = json.loads(package.read("parameters/qualys-connector.json"))
    values = {entry["ParameterKey"]: entry["ParameterValue"] for entry in parameters}
    assert values["CodeS3Key"] == key
    source = json.loads(
        (REPO_ROOT / "stackset" / "parameters" / "qualys-connector.json").read_text("utf-8")
    )
    assert {e["ParameterKey"]: e["ParameterValue"] for e in source} | {"CodeS3Key": key} == values
