"""Assemble the CfCT configuration package (custom-control-tower-configuration.zip).

    python scripts/build_cfct_package.py [--out dist] [--code-s3-key KEY]

The package holds ``manifest.yaml`` and every file its resources name: ``resource_file``
(looked up in ``stackset/``, then at the repository root, so ``templates/...`` is the
repository's template) and ``parameter_file`` (from ``stackset/``), at the same relative
paths. ``--code-s3-key`` writes the published Lambda zip's key into the ``CodeS3Key``
parameter of every parameter file that has one, so the package always names the code it
was built with.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from reproducible_zip import write_zip

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKSET_DIR = REPO_ROOT / "stackset"
PACKAGE_NAME = "custom-control-tower-configuration.zip"
MANIFEST = "manifest.yaml"
CODE_KEY_PARAMETER = "CodeS3Key"


def _source(relative: str) -> Path:
    """The file that goes into the package at ``relative``."""
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise SystemExit(f"{relative}: manifest paths must stay inside the package")
    for root in (STACKSET_DIR, REPO_ROOT):
        candidate = root / relative
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{relative}: named in {MANIFEST} but found in neither stackset/ nor the repo")


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


def build(*, out: Path, code_s3_key: str | None = None) -> Path:
    """Write the package into ``out`` and return its path."""
    manifest_path = STACKSET_DIR / MANIFEST
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    target = out / PACKAGE_NAME
    with tempfile.TemporaryDirectory(prefix="build-cfct-") as tmp:
        entries: list[tuple[str, Path]] = [(MANIFEST, manifest_path)]
        keys_written = 0
        for relative in referenced_files(manifest):
            source = _source(relative)
            if code_s3_key is not None and source.suffix == ".json":
                staging = Path(tmp) / str(len(entries))
                staging.mkdir()
                source, changed = _with_code_key(source, code_s3_key, staging)
                keys_written += changed
            entries.append((relative, source))
        if code_s3_key is not None and keys_written == 0:
            raise SystemExit(f"--code-s3-key given but no parameter file has {CODE_KEY_PARAMETER}")
        write_zip(target, entries)
    sys.stdout.write(f"{target}\n")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist")
    parser.add_argument(
        "--code-s3-key",
        help="S3 key of the published Lambda zip, written into every CodeS3Key parameter",
    )
    args = parser.parse_args(argv)
    build(out=args.out, code_s3_key=args.code_s3_key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
