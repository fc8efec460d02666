"""Assemble the CfCT configuration package (custom-control-tower-configuration.zip).

    python scripts/build_cfct_package.py [--out dist] [--config stackset]
        [--code-s3-key KEY] [--merge-into EXISTING.zip|FOLDER]

The package holds the configuration's ``manifest.yaml`` and every file its resources name:
``resource_file`` and ``parameter_file``, looked up in the configuration folder (``--config``,
the example ``stackset/`` by default), then at the repository root (so ``templates/...`` is
this project's template), at the same relative paths. ``--code-s3-key`` writes the published
Lambda zip's key into the ``CodeS3Key`` parameter of every parameter file that has one, so
the package always names the code it was built with.

CfCT reads one configuration, so an organisation that has one already merges into it
(``--merge-into``, a zip or a folder): the result is their manifest, text and comments as
they wrote them, with this configuration's resources added at the end of ``resources``, and
all their files. An entry of theirs with the same name as one of ours is refused, unless it
is this project's own from an earlier merge (same name, same ``resource_file``), which is
replaced; so is a file of theirs at a path ours takes. A manifest that is not version
2021-03-15, or is for another home region, is refused too.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from reproducible_zip import write_zip

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKSET_DIR = REPO_ROOT / "stackset"
PACKAGE_NAME = "custom-control-tower-configuration.zip"
MANIFEST = "manifest.yaml"
CODE_KEY_PARAMETER = "CodeS3Key"
MANIFEST_VERSION = datetime.date(2021, 3, 15)


class MergeError(SystemExit):
    """The configuration cannot be merged into the organisation's: nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(f"cannot merge: {message}")


def _source(config: Path, relative: str) -> Path:
    """The file that goes into the package at ``relative``."""
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise SystemExit(f"{relative}: manifest paths must stay inside the package")
    for root in (config, REPO_ROOT):
        candidate = root / relative
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{relative}: named in {MANIFEST} but found in neither {config} nor the repo")


def referenced_files(manifest: dict[str, Any]) -> list[str]:
    """The package-relative paths the manifest's resources name, in manifest order."""
    paths: list[str] = []
    for resource in manifest.get("resources") or []:
        for key in ("resource_file", "parameter_file"):
            value = resource.get(key)
            if isinstance(value, str) and value not in paths:
                paths.append(value)
    return paths


def _with_code_key(parameters_file: Path, code_s3_key: str, staging: Path) -> tuple[Path, bool]:
    parameters: list[dict[str, str]] = json.loads(parameters_file.read_text(encoding="utf-8"))
    changed = False
    for parameter in parameters:
        if parameter.get("ParameterKey") == CODE_KEY_PARAMETER:
            parameter["ParameterValue"] = code_s3_key
            changed = True
    if not changed:
        return parameters_file, False
    staged = staging / parameters_file.name
    staged.write_text(json.dumps(parameters, indent=2) + "\n", encoding="utf-8")
    return staged, True


# --- merging into the organisation's configuration ------------------------------------------


@dataclass(frozen=True)
class Existing:
    """The organisation's configuration: its manifest's text and its files."""

    manifest_text: str
    files: dict[str, bytes]

    @classmethod
    def read(cls, path: Path) -> Existing:
        """A configuration zip (as CfCT's bucket holds it) or a folder."""
        if path.is_dir():
            files = {
                str(f.relative_to(path)): f.read_bytes()
                for f in sorted(path.rglob("*"))
                if f.is_file() and ".git" not in f.relative_to(path).parts
            }
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                files = {
                    info.filename: archive.read(info)
                    for info in archive.infolist()
                    if not info.is_dir()
                }
        else:
            raise MergeError(f"{path} is neither a configuration zip nor a folder")
        if MANIFEST not in files:
            raise MergeError(f"{path} has no {MANIFEST} at its top level")
        try:
            text = files.pop(MANIFEST).decode("utf-8")
        except UnicodeDecodeError:
            raise MergeError(f"{path}: {MANIFEST} is not UTF-8 text") from None
        return cls(text, files)


def merge_manifest(theirs: str, ours: dict[str, Any]) -> tuple[str, list[str]]:
    """Their manifest's text with our resources added (or our earlier ones replaced), and the
    names of the entries replaced. Their text is kept as written, comments included."""
    try:
        loaded = yaml.safe_load(theirs)
        root = yaml.compose(theirs)
    except yaml.YAMLError as error:
        raise MergeError(f"their {MANIFEST} is not YAML: {error}") from None
    if not isinstance(loaded, dict) or not isinstance(root, yaml.MappingNode):
        raise MergeError(f"their {MANIFEST} is not a mapping")
    if loaded.get("version") != MANIFEST_VERSION:
        raise MergeError(
            f"their {MANIFEST} has version {loaded.get('version')!r}; only manifests of"
            f" version {MANIFEST_VERSION} (unquoted) can be merged"
        )
    if loaded.get("region") != ours.get("region"):
        raise MergeError(
            f"their home region is {loaded.get('region')!r}, this configuration's is"
            f" {ours.get('region')!r}: set region in {MANIFEST} to theirs"
        )
    their_resources = loaded.get("resources") or []
    if not isinstance(their_resources, list):
        raise MergeError(f"their {MANIFEST}'s resources is not a list")
    replaced: list[int] = []
    for resource in ours.get("resources") or []:
        for index, existing in enumerate(their_resources):
            if isinstance(existing, dict) and existing.get("name") == resource["name"]:
                if existing.get("resource_file") != resource.get("resource_file"):
                    raise MergeError(
                        f"their manifest has a resource named {resource['name']!r} already"
                        f" (resource_file {existing.get('resource_file')}): rename ours"
                    )
                replaced.append(index)
    lines = theirs.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    sequence = _resources_node(root)
    added = list(ours.get("resources") or [])
    if sequence is None or sequence.flow_style or not sequence.value:
        # No block list to extend: write the manifest anew (comments there are lost).
        merged = {**loaded, "resources": [*their_resources, *added]}
        text = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True)
        return text, [their_resources[i]["name"] for i in replaced]
    spans = _item_lines(sequence, len(lines))
    indent = sequence.value[0].start_mark.column - 2
    kept = [
        line
        for number, line in enumerate(lines)
        if not any(spans[i][0] <= number < spans[i][1] for i in replaced)
    ]
    end = spans[-1][1] - sum(spans[i][1] - spans[i][0] for i in replaced)
    rendered = yaml.safe_dump(added, sort_keys=False, allow_unicode=True, width=1000)
    block = "".join(
        " " * indent + line if line.strip() else line for line in rendered.splitlines(keepends=True)
    )
    merged_text = "".join(kept[:end]) + block + "".join(kept[end:])
    return merged_text, [their_resources[i]["name"] for i in replaced]


def _resources_node(root: yaml.MappingNode) -> yaml.SequenceNode | None:
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "resources":
            return value if isinstance(value, yaml.SequenceNode) else None
    return None


def _item_lines(sequence: yaml.SequenceNode, line_count: int) -> list[tuple[int, int]]:
    """For each item of a block list, the lines [first, past-last) that hold it."""
    starts = [item.start_mark.line for item in sequence.value]
    last_end = sequence.value[-1].end_mark
    # The last item ends where its content ends (its end mark's line, or the line before
    # when the mark is at a line's start).
    end = last_end.line + (1 if last_end.column > 0 else 0)
    return [
        (start, starts[i + 1] if i + 1 < len(starts) else min(end, line_count))
        for i, start in enumerate(starts)
    ]


# --- building -----------------------------------------------------------------------------------


def build(
    *,
    out: Path,
    config: Path = STACKSET_DIR,
    code_s3_key: str | None = None,
    merge_into: Path | None = None,
) -> Path:
    """Write the package into ``out`` and return its path."""
    manifest_path = config / MANIFEST
    if not manifest_path.is_file():
        raise SystemExit(f"{manifest_path}: no such file (is --config the configuration folder?)")
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    target = out / PACKAGE_NAME
    with tempfile.TemporaryDirectory(prefix="build-cfct-") as tmp:
        ours: dict[str, Path] = {}
        keys_written = 0
        for relative in referenced_files(manifest):
            source = _source(config, relative)
            if code_s3_key is not None and source.suffix == ".json":
                staging = Path(tmp) / str(len(ours))
                staging.mkdir()
                source, changed = _with_code_key(source, code_s3_key, staging)
                keys_written += changed
            ours[relative] = source
        if code_s3_key is not None and keys_written == 0:
            raise SystemExit(f"--code-s3-key given but no parameter file has {CODE_KEY_PARAMETER}")
        entries = [(MANIFEST, manifest_path), *ours.items()]
        if merge_into is not None:
            entries = _merged_entries(merge_into, manifest, ours, Path(tmp))
        write_zip(target, entries)
    sys.stdout.write(f"{target}\n")
    return target


def _merged_entries(
    merge_into: Path, manifest: dict[str, Any], ours: dict[str, Path], staging: Path
) -> list[tuple[str, Path]]:
    existing = Existing.read(merge_into)
    text, replaced = merge_manifest(existing.manifest_text, manifest)
    replaced_files = set(referenced_files(_replaced_only(existing.manifest_text, replaced)))
    still_used = set(referenced_files(yaml.safe_load(text))) - set(ours)
    clashes = sorted(path for path in ours if path in existing.files and path not in replaced_files)
    if clashes:
        raise MergeError(f"their configuration has files where ours go: {', '.join(clashes)}")
    entries: list[tuple[str, Path]] = []
    for number, (path, content) in enumerate(sorted(existing.files.items())):
        if path in ours or (path in replaced_files and path not in still_used):
            continue
        staged = staging / "theirs" / str(number)
        staged.parent.mkdir(exist_ok=True)
        staged.write_bytes(content)
        entries.append((path, staged))
    merged_manifest = staging / MANIFEST
    merged_manifest.write_text(text, encoding="utf-8")
    for name in replaced:
        sys.stderr.write(f"replaced this project's earlier entry {name!r} in their manifest\n")
    return [(MANIFEST, merged_manifest), *entries, *ours.items()]


def _replaced_only(text: str, names: list[str]) -> dict[str, Any]:
    loaded = yaml.safe_load(text) or {}
    return {"resources": [r for r in loaded.get("resources") or [] if r.get("name") in names]}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist")
    parser.add_argument(
        "--config",
        type=Path,
        default=STACKSET_DIR,
        help="the configuration folder (manifest.yaml, parameters/); default: the example",
    )
    parser.add_argument(
        "--code-s3-key",
        help="S3 key of the published Lambda zip, written into every CodeS3Key parameter",
    )
    parser.add_argument(
        "--merge-into",
        type=Path,
        help="the organisation's CfCT configuration (zip or folder) to add this one to",
    )
    args = parser.parse_args(argv)
    build(
        out=args.out, config=args.config, code_s3_key=args.code_s3_key, merge_into=args.merge_into
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
