"""Merging into an organisation's CfCT configuration: theirs is kept whole, ours is added.

CfCT reads one ``custom-control-tower-configuration.zip``; most organisations have one with
SCPs and StackSets of their own. ``make package CFCT_MERGE_INTO=...`` builds the package
from their configuration plus this project's entry and files.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from pykwalify.core import Core

from scripts.cfct_config import check

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_cfct_package.py"
CFCT_SCHEMA = REPO_ROOT.parent / "shared" / "vendor" / "cfct" / "manifest-v2.schema.yaml"
OURS = ("templates/qualys-connector.yaml", "parameters/qualys-connector.json")

THEIR_MANIFEST = """\
# Our organisation's guardrails: owned by the platform team.
region: us-east-1
version: 2021-03-15
enable_stack_set_deletion: false

resources:
  # Deny leaving the organisation, everywhere but the sandbox OU.
  - name: deny-leave-organization
    resource_file: policies/deny-leave-organization.json
    deploy_method: scp
    deployment_targets:
      organizational_units:
        - Workloads
        - Security

  - name: config-recorder
    description: AWS Config recorder in every account
    resource_file: templates/config-recorder.yaml
    parameter_file: parameters/config-recorder.json
    deploy_method: stack_set
    deployment_targets:
      organizational_units:
        - Workloads
    regions:
      - us-east-1
      - eu-west-1
"""

THEIR_FILES = {
    "policies/deny-leave-organization.json": (
        b'{"Version": "2012-10-17", "Statement": [{"Effect": "Deny",'
        b' "Action": "organizations:LeaveOrganization", "Resource": "*"}]}'
    ),
    "templates/config-recorder.yaml": (
        b'AWSTemplateFormatVersion: "2010-09-09"\n'
        b"Parameters:\n  RecorderName:\n    Type: String\n"
        b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
    ),
    "parameters/config-recorder.json": (
        b'[{"ParameterKey": "RecorderName", "ParameterValue": "default"}]'
    ),
    "README.txt": b"not named by the manifest, kept all the same\n",
}


def their_configuration(root: Path, manifest: str = THEIR_MANIFEST) -> Path:
    root.mkdir(parents=True)
    (root / "manifest.yaml").write_text(manifest, encoding="utf-8")
    for path, content in THEIR_FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    return root


def as_zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, str(path.relative_to(folder)))
    return target


def merge(into: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--out", str(out), "--merge-into", str(into)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def merged(into: Path, out: Path) -> dict[str, bytes]:
    result = merge(into, out)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out / "custom-control-tower-configuration.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def resources(manifest: bytes) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(manifest)["resources"]
    return loaded


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_merge_keeps_all_of_theirs_and_adds_ours(form: str, tmp_path: Path) -> None:
    folder = their_configuration(tmp_path / "theirs")
    source = folder if form == "folder" else as_zip(folder, tmp_path / "theirs.zip")

    files = merged(source, tmp_path / "out")

    assert set(files) == {"manifest.yaml", *THEIR_FILES, *OURS}
    for path, content in THEIR_FILES.items():
        assert files[path] == content, path
    text = files["manifest.yaml"].decode()
    assert text.startswith(THEIR_MANIFEST), "their text and comments are kept as written"
    ours = yaml.safe_load((REPO_ROOT / "stackset" / "manifest.yaml").read_text("utf-8"))
    assert resources(files["manifest.yaml"]) == [
        *yaml.safe_load(THEIR_MANIFEST)["resources"],
        *ours["resources"],
    ]
    assert yaml.safe_load(text)["enable_stack_set_deletion"] is False


def test_the_merged_configuration_passes_the_checks(tmp_path: Path) -> None:
    files = merged(their_configuration(tmp_path / "theirs"), tmp_path / "out")
    unpacked = tmp_path / "unpacked"
    for path, content in files.items():
        (unpacked / path).parent.mkdir(parents=True, exist_ok=True)
        (unpacked / path).write_bytes(content)

    assert [str(problem) for problem in check(unpacked)] == []
    if CFCT_SCHEMA.is_file():
        Core(source_file=str(unpacked / "manifest.yaml"), schema_files=[str(CFCT_SCHEMA)]).validate(
            raise_exception=True
        )


def test_merging_again_replaces_our_earlier_entry(tmp_path: Path) -> None:
    # The pipeline merges into the bucket's current zip, which holds our entry from last time.
    first = merged(their_configuration(tmp_path / "theirs"), tmp_path / "first")
    again = merge(tmp_path / "first" / "custom-control-tower-configuration.zip", tmp_path / "b")

    assert again.returncode == 0, again.stderr
    assert "replaced this project's earlier entry 'qualys-connector'" in again.stderr
    with zipfile.ZipFile(tmp_path / "b" / "custom-control-tower-configuration.zip") as archive:
        second = {name: archive.read(name) for name in archive.namelist()}
    assert second == first


def test_merging_into_a_manifest_without_resources_writes_it_anew(tmp_path: Path) -> None:
    manifest = "region: us-east-1\nversion: 2021-03-15\nresources: []\n"
    files = merged(their_configuration(tmp_path / "theirs", manifest), tmp_path / "out")

    assert [r["name"] for r in resources(files["manifest.yaml"])] == ["qualys-connector"]


REFUSALS = {
    "a resource of theirs with our name": (
        THEIR_MANIFEST.replace("name: config-recorder", "name: qualys-connector"),
        "their manifest has a resource named 'qualys-connector' already",
    ),
    "a manifest version it cannot merge": (
        THEIR_MANIFEST.replace("version: 2021-03-15", "version: 2020-01-01"),
        "only manifests of version 2021-03-15 (unquoted) can be merged",
    ),
    "a quoted version": (
        THEIR_MANIFEST.replace("version: 2021-03-15", 'version: "2021-03-15"'),
        "only manifests of version 2021-03-15",
    ),
    "another home region": (
        THEIR_MANIFEST.replace("region: us-east-1", "region: eu-west-1"),
        "their home region is 'eu-west-1'",
    ),
    "not YAML": ("resources: [\n", "their manifest.yaml is not YAML"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_merge_refuses_and_writes_nothing(case: str, tmp_path: Path) -> None:
    manifest, expected = REFUSALS[case]
    result = merge(their_configuration(tmp_path / "theirs", manifest), tmp_path / "out")

    assert result.returncode != 0
    assert "cannot merge: " in result.stderr
    assert expected in result.stderr, result.stderr
    assert not (tmp_path / "out" / "custom-control-tower-configuration.zip").exists()


def test_merge_refuses_a_file_of_theirs_where_ours_goes(tmp_path: Path) -> None:
    folder = their_configuration(tmp_path / "theirs")
    (folder / "parameters" / "qualys-connector.json").write_text("[]")

    result = merge(folder, tmp_path / "out")

    assert result.returncode != 0
    assert "their configuration has files where ours go: parameters/qualys-connector.json" in (
        result.stderr
    )


def test_merge_refuses_what_is_not_a_configuration(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    stray = tmp_path / "stray.txt"
    stray.write_text("hello")

    for source, expected in ((tmp_path / "empty", "has no manifest.yaml"), (stray, "neither")):
        result = merge(source, tmp_path / "out")
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr
