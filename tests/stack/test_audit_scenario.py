"""``python -m sandbox audit`` (the fleet audit's scenario) and the audit that ends the demo."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from sandbox import audit_scenario, demo
from sandbox.__main__ import main
from sandbox.aws import Sandbox
from sandbox.steps import StepError, StepReport


@pytest.fixture(scope="module")
def scenario() -> tuple[int, str]:
    out = io.StringIO()
    status = audit_scenario.run(out)
    return status, out.getvalue()


def steps(text: str) -> dict[str, str]:
    parts = re.split(r"^\[(\d)/\d\] ", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_scenario_runs_every_step(scenario: tuple[int, str]) -> None:
    status, text = scenario

    assert status == 0, text
    assert list(steps(text)) == ["1", "2", "3", "4", "5"]
    assert "Scenario complete" in text
    assert max(len(line) for line in text.splitlines()) <= 120
    assert "password" not in text.lower()


def test_the_audit_shows_each_class_in_a_table(scenario: tuple[int, str]) -> None:
    table = steps(scenario[1])["2"]

    for status in ("missing", "orphaned", "duplicate", "unhealthy", "foreign"):
        assert re.search(rf"^  {status} +\d{{12}} ", table, flags=re.MULTILINE), status
    assert "account SUSPENDED" in table
    assert "Unable to assume role" in table
    assert "no marker: not made by" in table
    assert (
        "Not ok: 3 ok, 1 missing, 1 orphaned, 1 duplicate, 1 unhealthy, 1 foreign"
        " (6 accounts, 7 connectors)"
    ) in table
    assert "exit status 1" in table


def test_the_clean_up_removes_exactly_the_orphan(scenario: tuple[int, str]) -> None:
    sections = steps(scenario[1])
    orphan = re.search(r"connector (\d+) \S+ +FINISHED_SUCCESS +\(orphan\)", sections["1"])
    assert orphan is not None

    assert "Dry run: would delete 1 orphaned connector(s)" in sections["3"]
    assert f"removed from Qualys: [{orphan.group(1)}]; 6 connectors left" in sections["4"]
    assert f"Deleted orphaned connector {orphan.group(1)}" in sections["4"]
    assert "0 orphaned" in sections["5"]


def test_the_scenario_names_the_step_that_did_not_happen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audit_scenario.cli, "delete_orphans", lambda *_a, **_k: [])
    out = io.StringIO()

    assert audit_scenario.run(out) == 1
    assert (
        "SCENARIO FAILED at step 'clean-up: --delete-orphans --yes deletes exactly the orphan'"
    ) in out.getvalue()


def test_python_m_sandbox_audit_runs_the_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit"]) == 0
    assert "Scenario complete" in capsys.readouterr().out


# --- the audit at the end of make demo ------------------------------------------------


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def run_demo_audit(box: Sandbox) -> tuple[str, Exception | None]:
    out = io.StringIO()
    report = StepReport(out, lambda: box.secret_values, steps=demo.STEPS)
    try:
        demo._audit(demo._Demo(box, report))
    except StepError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def test_the_demo_ends_with_the_audit_of_its_accounts(box: Sandbox) -> None:
    text, failure = run_demo_audit(box)

    assert failure is None, text
    assert "[audit] python -m provider.audit --accounts demo-accounts.json" in text
    for account, name in demo.DEMO_ACCOUNTS:
        assert re.search(rf"{account} +{name} ", text), account
    assert "0 ok, 3 missing, 0 orphaned, 0 duplicate, 0 unhealthy, 0 foreign" in " ".join(
        text.split()
    )
    assert max(len(line) for line in text.splitlines()) <= 100
    for secret in box.secret_values:
        assert secret not in text


def test_the_demos_audit_fails_when_the_demo_left_a_connector_behind(box: Sandbox) -> None:
    box.qualys.seed(name="left behind", description="no marker")

    _, failure = run_demo_audit(box)

    assert failure is not None
    assert failure.step == "audit what the demo built"
    assert "the demo left connectors behind: {'foreign': 1}" in str(failure)
