"""Shared fixtures of the stack tests: the repository layout and the parsed templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import load

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "templates"
CONNECTOR_TEMPLATE = TEMPLATES_DIR / "qualys-connector.yaml"
PREREQUISITES_TEMPLATE = TEMPLATES_DIR / "qualys-connector-prerequisites.yaml"
# CI checks the project out beside shared/ (the design, the references and vendored schemas).
SHARED_DIR = REPO_ROOT.parent / "shared"


def load_template(path: Path) -> dict[str, Any]:
    """Parse a template, short-form intrinsics (!Ref, !Sub, ...) included."""
    template: dict[str, Any] = load(str(path))
    return template


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def connector_template() -> dict[str, Any]:
    """templates/qualys-connector.yaml, parsed."""
    return load_template(CONNECTOR_TEMPLATE)


@pytest.fixture(scope="session")
def prerequisites_template() -> dict[str, Any]:
    """templates/qualys-connector-prerequisites.yaml, parsed."""
    return load_template(PREREQUISITES_TEMPLATE)
