"""Central mode, each test in a sandbox of its own: a request Qualys throttles through the
whole stack, and ``make demo-org`` (a StackSet of member stacks served by the central
provider)."""

from __future__ import annotations

import importlib
import io
import os
import sys
from typing import Any

import pytest

from sandbox import org_demo
from sandbox.aws import Sandbox
from sandbox.qualys.faults import Fault

MEMBER = "210000000001"
STACK = "qualys-connector"
CENTRAL_MODE = org_demo.MEMBER_NEEDS_NONE


class _QuickToRequeue:
    """The provider's entry point, giving up on throttling inline after a second (not 20 s)
    so that a throttled request goes back to the queue at once."""

    def __init__(self) -> None:
        self._containers: dict[str, Any] = {}

    def __call__(self, event: Any, context: Any) -> Any:
        handler = importlib.import_module("provider.handler")
        arn = context.invoked_function_arn
        if arn not in self._containers:
            self._containers[arn] = handler.Container(os.environ, queue_patience=1.0)
        return self._containers[arn](event, context)


def test_a_request_qualys_throttles_waits_in_the_queue_and_the_stack_completes() -> None:
    quick = {"provider.handler.lambda_handler": _QuickToRequeue()}
    with Sandbox(handler_overrides=quick) as box:
        token = box.deploy_central().outputs["ProviderServiceToken"]
        box.qualys.inject("create", Fault.http(409, headers={"X-RateLimit-ToWait-Sec": "2"}))

        view = box.deploy(STACK, {"ProviderServiceToken": token, **CENTRAL_MODE}, account_id=MEMBER)

        assert view.status == "CREATE_COMPLETE"
        assert len(box.qualys.connectors()) == 1
        creates = [e for e in box.engine.events if e.logical_id == "QualysConnector"]
        assert [e.outcome.status for e in creates] == ["SUCCESS"]
        # The connector's request was received twice (throttled, then done); the
        # activation's once.
        assert [mapping.invocations for mapping in box.topics.mappings] == [2, 1]
        assert not box.engine.anomalies


def test_the_organisation_demo_runs_every_step() -> None:
    out = io.StringIO()

    status = org_demo.run(out)

    text = out.getvalue()
    assert status == 0, text
    assert "DEMO FAILED" not in text
    for number in range(1, org_demo.STEPS + 1):
        assert f"[{number}/{org_demo.STEPS}]" in text
    assert text.count("CREATE_COMPLETE  ") == len(org_demo.ACCOUNTS)
    assert "Connectors left in Qualys: 0" in text
    assert "0 rejected" in text


def test_the_organisation_demo_names_the_step_that_did_not_happen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A StackSet whose members run their own provider: the demo must notice.
    original = Sandbox.create_stack_set

    def per_account(self: Sandbox, name: str, accounts: Any, parameters: Any) -> Any:
        central = ("ProviderServiceToken", *CENTRAL_MODE)
        own = {k: v for k, v in parameters.items() if k not in central}
        return original(self, name, accounts, own)

    monkeypatch.setattr(Sandbox, "create_stack_set", per_account)
    out = io.StringIO()

    status = org_demo.run(out)

    assert status == 1
    assert "DEMO FAILED at step 'StackSet qualys-connector into 5 accounts" in out.getvalue()
    assert "a provider of its own" in out.getvalue()


def test_python_m_sandbox_demo_org_is_the_organisation_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sandbox.__main__ import main

    calls: list[Any] = []
    monkeypatch.setattr(org_demo, "run", lambda out: calls.append(out) or 0)

    assert main(["demo-org"]) == 0
    assert calls == [sys.stdout]
