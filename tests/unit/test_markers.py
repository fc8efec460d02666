"""Ownership markers: a connector belongs to one resource of one stack."""

from __future__ import annotations

import pytest

from provider.markers import marker, owned_by_resource, owned_by_stack, stack_hash, with_marker
from provider.qualys.models import Connector

STACK = "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/0f9e9f60-cb3a-11ef-9d6c-0a7c5f3e1b2d"
OTHER = "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/7a1b2c3d-cb3a-11ef-9d6c-0a7c5f3e1b2d"


def test_marker_is_stable_and_short() -> None:
    assert marker(STACK, "QualysConnector") == marker(STACK, "QualysConnector")
    assert marker(STACK, "QualysConnector") == f"[qualys-cfn:{stack_hash(STACK)}:QualysConnector]"
    assert len(stack_hash(STACK)) == 16


def test_a_recreated_stack_of_the_same_name_does_not_own_the_old_connector() -> None:
    connector = Connector(id=1, description=with_marker("d", marker(STACK, "QualysConnector")))

    assert owned_by_resource(connector, STACK, "QualysConnector")
    assert not owned_by_resource(connector, OTHER, "QualysConnector")
    assert not owned_by_resource(connector, STACK, "OtherConnector")
    assert owned_by_stack(connector, STACK)
    assert not owned_by_stack(connector, OTHER)


def test_the_marker_goes_first_and_the_user_description_follows_as_given() -> None:
    mark = marker(STACK, "QualysConnector")

    assert with_marker("ACME & <Sons>", mark) == f"{mark} ACME & <Sons>"
    assert with_marker("", mark) == mark
    assert " " not in mark, "the marker is one word"


MARK = marker(STACK, "QualysConnector")


@pytest.mark.parametrize(
    ("case", "description", "owned"),
    [
        pytest.param("alone", MARK, True, id="alone"),
        pytest.param("first word", f"{MARK} Production account", True, id="first-word"),
        pytest.param("copied after text", f"Copied: {MARK}", False, id="copied-after"),
        pytest.param("old place at the end", f"d\n{MARK}", False, id="at-the-end"),
        pytest.param("glued to text", f"{MARK}x", False, id="glued"),
        pytest.param("inside a word", f"x{MARK} d", False, id="inside"),
        pytest.param("cut short", MARK[:-1], False, id="cut-short"),
        pytest.param("leading space", f" {MARK}", False, id="leading-space"),
        pytest.param("other resource", marker(STACK, "Other"), False, id="other-resource"),
    ],
)
def test_ownership_is_the_whole_marker_as_the_first_word_never_a_substring(
    case: str, description: str, owned: bool
) -> None:
    connector = Connector(id=1, description=description)

    assert owned_by_resource(connector, STACK, "QualysConnector") is owned, case
    assert owned_by_stack(connector, STACK) is (owned or case == "other resource"), case


def test_connector_without_description_is_nobodys() -> None:
    assert not owned_by_stack(Connector(id=1), STACK)
