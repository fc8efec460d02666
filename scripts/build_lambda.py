"""Build the provider's Lambda zip for the Lambda runtime: binary wheels for its Python and CPU.

    python scripts/build_lambda.py [--arch arm64|x86_64] [--python 3.12] [--out dist]

The zip holds ``provider/`` (without tests and caches) and the runtime dependencies of
``provider/requirements.txt`` at its root, and is named after its own content
(``qualys-connector-provider-<first 16 hex digits of its sha256>.zip``): the same sources
give the same bytes and the same name, and a new build gets a new S3 key, which is what makes
CloudFormation update the function.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from reproducible_zip import write_zip

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "provider"
REQUIREMENTS = PACKAGE_DIR / "requirements.txt"
ZIP_PREFIX = "qualys-connector-provider-"

# Lambda architecture -> manylinux platform tag of the wheels it can load.
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}

# Never shipped: caches, and the console scripts pip writes to bin/ (their shebang names the
# build machine's Python, which would also make the zip differ between machines).
_EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "bin"})
_EXCLUDED_SUFFIXES = frozenset({".pyc", ".pyo"})


def install_dependencies(*, target: Path, arch: str, python_version: str) -> None:
    """Install the pinned runtime dependencies for the Lambda runtime into ``target``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        # No .pyc files: they would be compiled by the wrong Python and break reproducibility.
        "--no-compile",
        "--platform",
        PLATFORMS[arch],
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--target",
        str(target),
        "-r",
        str(REQUIREMENTS),
    ]
    # The command is built here from fixed strings and validated arguments, no shell.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"pip install failed with exit code {result.returncode}")


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _EXCLUDED_DIRS for part in relative.parts):
            continue
        if path.is_file() and path.suffix not in _EXCLUDED_SUFFIXES:
            yield path


def zip_entries(*, site: Path, package: Path) -> list[tuple[str, Path]]:
    """The archive's entries: the dependencies at the root, then ``provider/``."""
    entries = [(path.relative_to(site).as_posix(), path) for path in _files(site)]
    entries += [
        (f"{package.name}/{path.relative_to(package).as_posix()}", path) for path in _files(package)
    ]
    return entries


def build(*, arch: str, python_version: str, out: Path) -> Path:
    """Build the zip into ``out`` and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-lambda-") as tmp:
        site = Path(tmp) / "site"
        install_dependencies(target=site, arch=arch, python_version=python_version)
        entries = zip_entries(site=site, package=PACKAGE_DIR)
        unpacked = sum(path.stat().st_size for _, path in entries)
        staging = Path(tmp) / "lambda.zip"
        write_zip(staging, entries)
        digest = hashlib.sha256(staging.read_bytes()).hexdigest()
        target = out / f"{ZIP_PREFIX}{digest[:16]}.zip"
        target.write_bytes(staging.read_bytes())
    mib = 1024 * 1024
    sys.stdout.write(
        f"{target}\n{arch}, Python {python_version}: {target.stat().st_size / mib:.1f} MB "
        f"zipped, {unpacked / mib:.1f} MB unpacked\n"
    )
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--python", default="3.12", dest="python_version", metavar="X.Y")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist")
    args = parser.parse_args(argv)
    build(arch=args.arch, python_version=args.python_version, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
