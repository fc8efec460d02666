"""The provider's Lambda zip: contents, target architecture, reproducibility, importability."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from importlib.metadata import PathDistribution
from pathlib import Path, PurePosixPath
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_lambda.py"
PROVIDER_DIR = REPO_ROOT / "provider"
ZIP_NAME = re.compile(r"qualys-connector-provider-(?P<digest>[0-9a-f]{16})\.zip")
# ELF e_machine values (System V ABI): what the shared libraries were compiled for.
EM_X86_64 = 62
EM_AARCH64 = 183
# Provided by the Lambda runtime: shipping them would only shadow the runtime's copies.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# C and Cython sources and headers: read by compilers, never by the Lambda runtime.
SOURCE_SUFFIXES = (".pyx", ".pxd", ".pxi", ".h", ".c")
SIZE_LINE = re.compile(
    r"Lambda zip for (arm64|x86_64), Python 3\.12: [\d.]+ MB \(unpacked [\d.]+ MB, \d+ files\)"
)


def build(arch: str, out: Path) -> Path:
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--arch", arch, "--python", "3.12", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    path = Path(result.stdout.splitlines()[0])
    assert path.parent == out
    assert SIZE_LINE.search(result.stdout), result.stdout
    return path


def build_script() -> ModuleType:
    """scripts/build_lambda.py as a module (it imports its neighbour as a script does)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BUILD_SCRIPT.parent))
        return importlib.import_module(BUILD_SCRIPT.stem)


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def required_distributions() -> set[str]:
    lines = (PROVIDER_DIR / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line.split("#", 1)[0].strip() for line in lines]
    return {normalise(re.split(r"[=<>!~ ;\[]", pin, maxsplit=1)[0]) for pin in pins if pin}


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2, "not 64-bit"
    assert data[5] == 1, "not little-endian"
    (machine,) = struct.unpack_from("<H", data, 18)
    return int(machine)


def python_3_12() -> str | None:
    """A CPython 3.12 interpreter (the Lambda runtime's version) that really runs."""
    candidates = [shutil.which("python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"))]
    for candidate in filter(None, candidates):
        # A pyenv shim exists even when 3.12 is not selected; it then fails to run.
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 12)":
            return candidate
    return None


@pytest.fixture(scope="module")
def arm64_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip for the template's architecture, built once."""
    return build("arm64", tmp_path_factory.mktemp("arm64"))


@pytest.fixture(scope="module")
def arm64_names(arm64_zip: Path) -> list[str]:
    with zipfile.ZipFile(arm64_zip) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def arm64_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the build's own install step puts in the zip's place, before anything is left out."""
    site = tmp_path_factory.mktemp("arm64-site")
    build_script().install_dependencies(target=site, arch="arm64", python_version="3.12")
    return site


def installed_files(site: Path) -> set[str]:
    """Every file the installed distributions' RECORDs list in ``site``.

    Console scripts are recorded outside it (``../../bin/...``): pip --target moves them to
    ``bin/``, which the zip leaves out.
    """
    names = {
        line.split(",", 1)[0]
        for record in site.glob("*.dist-info/RECORD")
        for line in record.read_text(encoding="utf-8").splitlines()
    }
    return {name for name in names if not name.startswith("../")}


def dependency_names(names: list[str]) -> set[str]:
    return {name for name in names if not name.startswith(("provider/", "licenses/"))}


def never_read_at_run_time(name: str) -> bool:
    """What the zip should leave out of an install, said independently of the build's rules."""
    parts = name.split("/")
    return (
        name.startswith("lxml/includes/")
        or name.endswith((*SOURCE_SUFFIXES, ".pyc", ".pyo"))
        or any(part in {"__pycache__", "tests"} or part.endswith(".dist-info") for part in parts)
    )


def test_zip_is_named_after_its_content(arm64_zip: Path) -> None:
    match = ZIP_NAME.fullmatch(arm64_zip.name)
    assert match is not None, arm64_zip.name
    assert hashlib.sha256(arm64_zip.read_bytes()).hexdigest()[:16] == match["digest"]


def test_zip_holds_the_provider_package_as_in_the_repository(arm64_names: list[str]) -> None:
    expected = {
        f"provider/{path.relative_to(PROVIDER_DIR).as_posix()}"
        for path in PROVIDER_DIR.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and "tests" not in path.relative_to(PROVIDER_DIR).parts
        and path.suffix != ".pyc"
    }
    assert "provider/handler.py" in expected or "provider/__init__.py" in expected
    assert {name for name in arm64_names if name.startswith("provider/")} == expected


def test_the_install_holds_exactly_the_runtime_requirements(arm64_site: Path) -> None:
    distributions = {
        normalise(path.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        for path in arm64_site.glob("*.dist-info")
    }
    assert distributions == required_distributions()


def test_zip_has_a_licence_folder_for_exactly_the_runtime_requirements(
    arm64_names: list[str],
) -> None:
    folders = {name.split("/")[1] for name in arm64_names if name.startswith("licenses/")}
    distributions = {normalise(folder.rsplit("-", 1)[0]) for folder in folders}
    assert distributions == required_distributions()


def test_zip_ships_every_licence_file_each_distribution_declares(
    arm64_zip: Path, arm64_site: Path
) -> None:
    with zipfile.ZipFile(arm64_zip) as archive:
        for dist_info in sorted(arm64_site.glob("*.dist-info")):
            declared = PathDistribution(dist_info).metadata.get_all("License-File") or []
            assert declared, f"{dist_info.name} declares its licence files"
            folder = f"licenses/{dist_info.name.removesuffix('.dist-info')}"
            for name in declared:
                installed = dist_info / "licenses" / name
                source = installed if installed.is_file() else dist_info / name
                assert archive.read(f"{folder}/{name}") == source.read_bytes(), name


def test_every_dependency_file_was_installed_by_a_required_distribution(
    arm64_names: list[str], arm64_site: Path
) -> None:
    assert sorted(dependency_names(arm64_names) - installed_files(arm64_site)) == []


def test_zip_leaves_out_sources_headers_and_metadata_the_runtime_never_reads(
    arm64_names: list[str],
) -> None:
    for name in arm64_names:
        assert not name.startswith("lxml/includes/"), name
        assert not name.endswith(SOURCE_SUFFIXES), name
        assert ".dist-info/" not in name, name


def test_zip_keeps_everything_else_that_was_installed(
    arm64_names: list[str], arm64_site: Path
) -> None:
    installed = installed_files(arm64_site)
    kept = {name for name in installed if not never_read_at_run_time(name)}
    assert kept != installed, "the install has files the zip leaves out"
    assert sorted(kept - set(arm64_names)) == []


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("lxml/etree.cpython-312-aarch64-linux-gnu.so", False),
        ("lxml/isoschematron/resources/xsl/iso-schematron-xslt1/iso_dsdl_include.xsl", False),
        ("certifi/cacert.pem", False),
        ("charset_normalizer/py.typed", False),
        ("provider/handler.py", False),
        ("lxml/includes/libxml/tree.h", True),
        ("lxml/includes/__init__.py", True),
        ("lxml/etree.pyx", True),
        ("lxml/parser.pxi", True),
        ("lxml/etree_api.h", True),
        ("somepackage/_speedups.c", True),
        ("idna-3.20.dist-info/METADATA", True),
        ("requests/__pycache__/api.cpython-312.pyc", True),
        ("bin/normalizer", True),
        ("tests/unit/test_handler.py", True),
        # Anchored patterns stay anchored: only lxml's own includes folder goes.
        ("provider/lxml/includes/notes.txt", False),
    ],
)
def test_left_out_rules(path: str, left_out: bool) -> None:
    assert build_script().is_left_out(PurePosixPath(path)) is left_out, path


def test_zip_leaves_out_runtime_libraries_caches_and_tests(arm64_names: list[str]) -> None:
    for name in arm64_names:
        parts = name.split("/")
        assert parts[0] not in RUNTIME_PROVIDED, name
        assert not parts[0].startswith(RUNTIME_PROVIDED), name
        assert "__pycache__" not in parts, name
        assert not name.endswith((".pyc", ".pyo")), name
        assert parts[0] not in {"bin", "tests"}, name
        assert not (parts[0] == "provider" and "tests" in parts), name


# The audit's command line draws its table with rich; the Lambda function never imports it.
COMMAND_LINE_ONLY = {"rich": "rich", "markdown-it-py": "markdown_it", "mdurl": "mdurl"}


def test_zip_holds_nothing_only_the_audits_command_line_needs(arm64_names: list[str]) -> None:
    assert not required_distributions() & set(COMMAND_LINE_ONLY)
    packages = {name.split("/")[0] for name in arm64_names}
    assert not packages & set(COMMAND_LINE_ONLY.values())
    licences = {name.split("/")[1] for name in arm64_names if name.startswith("licenses/")}
    assert not {normalise(folder.rsplit("-", 1)[0]) for folder in licences} & set(COMMAND_LINE_ONLY)


def test_shared_libraries_are_built_for_lambda_arm64_python_3_12(arm64_zip: Path) -> None:
    with zipfile.ZipFile(arm64_zip) as archive:
        libraries = [name for name in archive.namelist() if name.endswith(".so")]
        assert any(name.startswith("lxml/etree.") for name in libraries), "lxml is in the zip"
        for name in libraries:
            assert ".cpython-312-aarch64-linux-gnu.so" in name, name
            assert elf_machine(archive.read(name)[:64]) == EM_AARCH64, name


def test_build_is_reproducible(arm64_zip: Path, tmp_path: Path) -> None:
    again = build("arm64", tmp_path)
    assert again.name == arm64_zip.name
    assert again.read_bytes() == arm64_zip.read_bytes()


def test_zip_imports_under_the_runtime_python(tmp_path: Path) -> None:
    interpreter = python_3_12()
    if interpreter is None:
        pytest.skip("no CPython 3.12 (the Lambda runtime's version) on this machine")
    native = os.uname().machine
    arch, machine = ("x86_64", EM_X86_64) if native == "x86_64" else ("arm64", EM_AARCH64)
    zip_path = build(arch, tmp_path / "out")
    task = tmp_path / "task"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task)
    for library in task.rglob("*.so"):
        assert elf_machine(library.read_bytes()[:64]) == machine, library
    modules = sorted(
        ".".join(path.relative_to(task).with_suffix("").parts).removesuffix(".__init__")
        for path in (task / "provider").rglob("*.py")
    )
    # What the Lambda runtime adds to the function's code: boto3 and what it needs, taken
    # from the development environment (pure Python), after the code as in Lambda.
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in ("boto3", "botocore", "dateutil", "jmespath", "s3transfer", "six"):
        spec = importlib.util.find_spec(name)
        assert spec is not None, f"{name} is in the development environment"
        assert spec.origin is not None
        origin = Path(spec.origin)
        # A package links its folder; a single-module distribution (six) links its file.
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    script = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(task)!r}, {str(runtime)!r}]\n"
        "import lxml.etree, lxml.objectify, requests, crhelper, certifi, os\n"
        "assert lxml.etree.fromstring(b'<a><b/></a>')[0].tag == 'b'\n"
        "assert os.path.isfile(certifi.where())\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "for name in ('lxml', 'requests', 'crhelper', 'provider'):\n"
        f"    assert sys.modules[name].__file__.startswith({str(task)!r}), name\n"
        "print('imported', len(sys.modules))\n"
    )
    # -I -S: nothing from the interpreter's own site-packages or the environment's PYTHON*.
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [interpreter, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported"), result.stdout
    assert "provider" in modules
