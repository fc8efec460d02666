"""Guards the crhelper internals the handler overrides, so an upgrade fails loudly here."""

from __future__ import annotations

import inspect
import logging

import boto3
import pytest
from crhelper import CfnResource

from provider.handler import _CfnResource


def test_crhelper_still_finds_the_function_through_get_func_and_asks_poll_enabled() -> None:
    # provider.handler._CfnResource overrides both, so that every RequestType reaches the
    # provider's routing table instead of crhelper answering with an empty id.
    init = inspect.getsource(CfnResource._crhelper_init)
    call = inspect.getsource(CfnResource.__call__)

    assert "self._wrap_function(self._get_func())" in init, "crhelper: _get_func moved"
    assert "self._poll_enabled()" in call, "crhelper: _poll_enabled moved"
    assert list(inspect.signature(CfnResource._get_func).parameters) == ["self"]


def test_the_provider_builds_crhelper_as_crhelper_does_without_its_polling_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # provider.handler._CfnResource does not call crhelper's constructor, which builds
    # boto3 clients for polling the provider never does; everything else must be the same.
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    polling_clients = {"_lambda_client", "_events_client", "_logs_client"}
    built: list[str] = []
    monkeypatch.setattr(boto3, "client", lambda service, **_: built.append(service))

    theirs = vars(CfnResource(log_level="INFO", boto_level="ERROR", sleep_on_delete=7))
    assert set(theirs) >= polling_clients, "crhelper: its polling clients changed"
    built.clear()
    ours = vars(_CfnResource(lambda _event, _context: "", sleep_on_delete=7))

    assert built == []
    assert set(ours) - {"_run", "deferred"} == set(theirs) - polling_clients
    assert {k: ours[k] for k in set(theirs) - polling_clients} == {
        k: theirs[k] for k in set(theirs) - polling_clients
    }
    assert logging.getLogger("botocore").level == logging.ERROR
