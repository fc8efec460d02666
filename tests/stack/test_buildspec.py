"""buildspec.yml: the checks run first, and the publish step runs for real against a stand-in
``aws`` that records its calls (and serves the CfCT bucket's current configuration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILDSPEC: dict[str, Any] = yaml.safe_load((REPO_ROOT / "buildspec.yml").read_text("utf-8"))
PACKAGE = "custom-control-tower-configuration.zip"
CFCT_BUCKET = "custom-control-tower-configuration-111111111111-us-east-1"
ZIP_NAME = "qualys-connector-provider-0123456789abcdef.zip"
KEY = f"qualys-connector/{ZIP_NAME}"


def test_buildspec_is_codebuild_0_2_with_its_variables() -> None:
    assert BUILDSPEC["version"] == 0.2
    variables = BUILDSPEC["env"]["variables"]
    assert {"ARTIFACT_BUCKETS", "ARTIFACT_PREFIX", "CFCT_BUCKET", "LAMBDA_ARCH"} <= set(variables)
    assert variables["LAMBDA_ARCH"] == "arm64"
    assert variables["CFCT_CONFIG"] == "stackset"
    assert variables["CFCT_MERGE"] == "true"
    assert "--junitxml=reports/junit.xml" in variables["PYTEST_ADDOPTS"]
    phases = BUILDSPEC["phases"]
    assert phases["install"]["runtime-versions"] == {"python": 3.12}
    (report,) = BUILDSPEC["reports"].values()
    assert report["file-format"] == "JUNITXML"
    assert report["files"] == ["junit.xml"]
    assert report["base-directory"] == "reports"


def test_buildspec_checks_the_configuration_in_use_before_anything_else() -> None:
    checks = BUILDSPEC["phases"]["pre_build"]["commands"]
    assert BUILDSPEC["phases"]["pre_build"]["on-failure"] == "ABORT"
    make = [command for command in checks if command.startswith("make ")]
    assert make == [
        'make check-config CFCT_CONFIG="$CFCT_CONFIG"',
        'make test CFCT_CONFIG="$CFCT_CONFIG"',
    ]
    (build,) = BUILDSPEC["phases"]["build"]["commands"]
    assert 'CFCT_CONFIG="$CFCT_CONFIG"' in build
    assert build.startswith("make package")


def _publish(tmp_path: Path, *, current: Path | None, **variables: str) -> tuple[list[str], Path]:
    """Run post_build as CodeBuild would, with the buildspec's variables; the calls made."""
    work = tmp_path / "work"
    (work / "dist").mkdir(parents=True)
    for shared in ("scripts", "stackset", "templates", "sandbox"):
        (work / shared).symlink_to(REPO_ROOT / shared)
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (work / "dist" / ZIP_NAME).write_bytes(b"zip")
    calls = tmp_path / "aws-calls"
    stub = tmp_path / "bin" / "aws"
    stub.parent.mkdir()
    stub.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {calls}\n'
        # head-object finds the key only in the bucket named "has-it".
        'if [ "$1" = s3api ]; then [ "$4" = has-it ]; exit; fi\n'
        # The CfCT bucket holds a configuration only when the test gives one.
        f'if [ "$1 $2" = "s3 ls" ]; then [ -f "{current}" ]; exit; fi\n'
        f'if [ "$1 $2 $3" = "s3 cp s3://{CFCT_BUCKET}/{PACKAGE}" ]; then cp "{current}" "$4"; fi\n',
        encoding="utf-8",
    )
    stub.chmod(0o755)
    environment = {
        **BUILDSPEC["env"]["variables"],
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "ARTIFACT_BUCKETS": "has-it lacks-it",
        "CFCT_BUCKET": CFCT_BUCKET,
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        **variables,
    }
    result = subprocess.run(
        ["bash", "-c", "\n".join(BUILDSPEC["phases"]["post_build"]["commands"])],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return calls.read_text(encoding="utf-8").splitlines(), work / "dist" / PACKAGE


def test_buildspec_publishes_the_zip_once_per_bucket_and_the_package(tmp_path: Path) -> None:
    calls, package = _publish(tmp_path, current=None)

    assert calls == [
        f"s3api head-object --bucket has-it --key {KEY}",
        f"s3api head-object --bucket lacks-it --key {KEY}",
        f"s3 cp dist/{ZIP_NAME} s3://lacks-it/{KEY}",
        f"s3 ls s3://{CFCT_BUCKET}/{PACKAGE}",
        f"s3 cp dist/{PACKAGE} s3://{CFCT_BUCKET}/{PACKAGE}",
    ]
    with zipfile.ZipFile(package) as archive:
        parameters = json.loads(archive.read("parameters/qualys-connector.json"))
    assert {"ParameterKey": "CodeS3Key", "ParameterValue": KEY} in parameters


@pytest.mark.parametrize("merge", ["true", "false"])
def test_buildspec_merges_into_the_configuration_cfct_has(merge: str, tmp_path: Path) -> None:
    current = tmp_path / "current.zip"
    theirs = "region: us-east-1\nversion: 2021-03-15\nresources:\n  - name: guardrail\n"
    theirs += "    resource_file: policies/guardrail.json\n    deploy_method: scp\n"
    theirs += "    deployment_targets:\n      organizational_units: [Workloads]\n"
    with zipfile.ZipFile(current, "w") as archive:
        archive.writestr("manifest.yaml", theirs)
        archive.writestr("policies/guardrail.json", "{}")

    _calls, package = _publish(tmp_path, current=current, CFCT_MERGE=merge)

    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        resources = yaml.safe_load(archive.read("manifest.yaml"))["resources"]
    ours = {"manifest.yaml", "templates/qualys-connector.yaml", "parameters/qualys-connector.json"}
    if merge == "true":
        assert names == {*ours, "policies/guardrail.json"}
        assert [r["name"] for r in resources] == ["guardrail", "qualys-connector"]
    else:
        assert names == ours
        assert [r["name"] for r in resources] == ["qualys-connector"]


def test_buildspec_publishes_nothing_after_a_failed_build() -> None:
    first = BUILDSPEC["phases"]["post_build"]["commands"][0]
    environment = {"PATH": os.environ["PATH"], "CODEBUILD_BUILD_SUCCEEDING": "0"}
    result = subprocess.run(["bash", "-c", first], env=environment, timeout=10, check=False)
    assert result.returncode != 0
