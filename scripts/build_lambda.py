"""Build the provider's Lambda zip for the Lambda runtime: binary wheels for its Python and CPU.

    python scripts/build_lambda.py [--arch arm64|x86_64] [--python 3.12] [--out dist]

The zip holds ``provider/`` and the runtime dependencies of ``provider/requirements.txt``
at its root, without what the Lambda runtime never reads (``LEFT_OUT`` below), plus each
dependency's licence files under ``licenses/<name>-<version>/``. It is named after its own
content (``qualys-connector-provider-<first 16 hex digits of its sha256>.zip``): the same
sources give the same bytes and the same name, and a new build gets a new S3 key, which is
what makes CloudFormation update the function.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from importlib.metadata import PathDistribution
from pathlib import Path, PurePosixPath

from reproducible_zip import write_zip

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "provider"
REQUIREMENTS = PACKAGE_DIR / "requirements.txt"
ZIP_PREFIX = "qualys-connector-provider-"

# Lambda architecture -> manylinux platform tag of the wheels it can load.
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}

# What the zip leaves out, and why. As in .gitignore, a pattern with a "/" is anchored at the
# root of the installed dependencies (or of provider/), one without matches a file or folder
# name at any depth; a matching folder is left out whole.
LEFT_OUT: tuple[tuple[str, str], ...] = (
    ("__pycache__", "bytecode caches: compiled by the build machine's Python"),
    ("*.pyc", "bytecode caches: compiled by the build machine's Python"),
    ("*.pyo", "bytecode caches: compiled by the build machine's Python"),
    ("tests", "tests: the provider's run here, not in Lambda"),
    ("bin", "console scripts: their shebang names the build machine's Python"),
    ("lxml/includes", "lxml's C headers and .pxd files, for compiling against lxml"),
    ("*.pyx", "Cython sources: already compiled into the .so files"),
    ("*.pxd", "Cython declarations: read by the Cython compiler only"),
    ("*.pxi", "Cython include files: read by the Cython compiler only"),
    ("*.h", "C headers: read by a C compiler only"),
    ("*.c", "C sources: already compiled into the .so files"),
    # Nothing in the zip reads its own metadata (importlib.metadata is used only by
    # urllib3.http2, for h2's version, which is neither imported nor bundled). The licences
    # the metadata declares are shipped under licenses/ instead (license_entries).
    ("*.dist-info", "installer metadata: pip's records, not read at run time"),
)
LICENSES_DIR = "licenses"
# Sizes are printed in decimal megabytes (10**6 bytes, as S3 and ls --si count). Lambda's
# quota pages say "250 MB unzipped" but enforce 262,144,000 bytes (250 MiB), so a size
# printed here and compared with them errs on the safe side.
MEGABYTE = 1_000_000


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


def is_left_out(relative: PurePosixPath) -> bool:
    """Whether a file at ``relative`` (to the dependencies' or provider's root) is left out."""
    folders_and_file = ["/".join(relative.parts[: n + 1]) for n in range(len(relative.parts))]
    for pattern, _reason in LEFT_OUT:
        candidates = folders_and_file if "/" in pattern else relative.parts
        if any(fnmatchcase(candidate, pattern) for candidate in candidates):
            return True
    return False


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_file() and not is_left_out(relative):
            yield relative.as_posix(), path


def license_entries(site: Path) -> list[tuple[str, Path]]:
    """Each installed distribution's licence files, as its metadata declares them.

    They are shipped as ``licenses/<name>-<version>/<file>``: third-party code goes nowhere
    without its licence, so a distribution that declares none, or lacks one it declares,
    stops the build.
    """
    entries = []
    for dist_info in sorted(site.glob("*.dist-info")):
        declared = PathDistribution(dist_info).metadata.get_all("License-File") or []
        if not declared:
            raise SystemExit(f"{dist_info.name}: its METADATA declares no License-File")
        folder = f"{LICENSES_DIR}/{dist_info.name.removesuffix('.dist-info')}"
        for name in declared:
            # Metadata 2.4 (PEP 639) keeps them in licenses/, earlier versions beside METADATA.
            found = [p for p in (dist_info / "licenses" / name, dist_info / name) if p.is_file()]
            if not found:
                raise SystemExit(f"{dist_info.name}: declared License-File {name} is missing")
            entries.append((f"{folder}/{name}", found[0]))
    return entries


def zip_entries(*, site: Path, package: Path) -> list[tuple[str, Path]]:
    """The archive's entries: the dependencies and their licences at the root, ``provider/``."""
    entries = list(_files(site)) + license_entries(site)
    entries += [(f"{package.name}/{name}", path) for name, path in _files(package)]
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
    sys.stdout.write(
        f"{target}\nLambda zip for {arch}, Python {python_version}: "
        f"{target.stat().st_size / MEGABYTE:.2f} MB "
        f"(unpacked {unpacked / MEGABYTE:.2f} MB, {len(entries)} files)\n"
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
