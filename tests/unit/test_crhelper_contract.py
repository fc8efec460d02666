"""Guards the crhelper internals the handler overrides, so an upgrade fails loudly here."""

from __future__ import annotations

import inspect

from crhelper import CfnResource


def test_crhelper_still_finds_the_function_through_get_func_and_asks_poll_enabled() -> None:
    # provider.handler._CfnResource overrides both, so that every RequestType reaches the
    # provider's routing table instead of crhelper answering with an empty id.
    init = inspect.getsource(CfnResource._crhelper_init)
    call = inspect.getsource(CfnResource.__call__)

    assert "self._wrap_function(self._get_func())" in init, "crhelper: _get_func moved"
    assert "self._poll_enabled()" in call, "crhelper: _poll_enabled moved"
    assert list(inspect.signature(CfnResource._get_func).parameters) == ["self"]
