"""Unit tests of the Slack message builder: words, colours, StackId parsing, escaping, limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from provider.lifecycle.model import Outcome
from provider.slack.message import (
    FIELD_TEXT_LIMIT,
    HEADER_TEXT_LIMIT,
    OUTCOME_COLOURS,
    SECTION_TEXT_LIMIT,
    Notification,
    StackRef,
    build_message,
    fit_mrkdwn,
)

STACK_ID = (
    "arn:aws:cloudformation:eu-west-1:123456789012:"
    "stack/StackSet-qualys-connector-1a2b/51af3dc0-da77-11e4-872e-1234567890ab"
)


def _notification(outcome: Outcome = Outcome.CREATED, **changes: Any) -> Notification:
    values: dict[str, Any] = {
        "outcome": outcome,
        "stack_id": STACK_ID,
        "request_type": "Create",
        "logical_resource_id": "QualysConnector",
        "connector_name": "prod-account",
        "connector_id": "1234567",
        "state": "DISABLED",
        "reason": None,
    }
    values.update(changes)
    return Notification(**values)


def _attachment(message: dict[str, Any]) -> dict[str, Any]:
    attachments = message["attachments"]
    assert len(attachments) == 1
    attachment: dict[str, Any] = attachments[0]
    return attachment


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [block for block in _attachment(message)["blocks"] if block["type"] == kind]


def _fields(message: dict[str, Any]) -> dict[str, str]:
    """The field texts by label ("*Account*\\n123" becomes {"Account": "123"})."""
    (section,) = [block for block in _blocks(message, "section") if "fields" in block]
    labelled = (field["text"].split("\n", 1) for field in section["fields"])
    return {label.strip("*"): value for label, value in labelled}


def _reason(message: dict[str, Any]) -> str | None:
    texts = [block["text"]["text"] for block in _blocks(message, "section") if "text" in block]
    assert len(texts) <= 1
    return texts[0].removeprefix("*Reason*\n") if texts else None


def _texts(node: Any) -> Iterator[tuple[str, Any]]:
    """Every ("text" key, value) pair anywhere in the payload."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"text", "fallback"}:
                yield key, value
            yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


# --- outcomes ----------------------------------------------------------------------------

OUTCOME_CASES = [
    pytest.param(Outcome.CREATED, "created", id="created"),
    pytest.param(Outcome.ACTIVATED, "activated", id="activated"),
    pytest.param(Outcome.UPDATED, "updated", id="updated"),
    pytest.param(Outcome.DEACTIVATED, "deactivated", id="deactivated"),
    pytest.param(Outcome.DELETED, "deleted", id="deleted"),
    pytest.param(Outcome.FAILED, "failed", id="failed"),
]


@pytest.mark.parametrize(("outcome", "word"), OUTCOME_CASES)
def test_message_names_the_outcome_in_header_and_fallback(outcome: Outcome, word: str) -> None:
    message = build_message(_notification(outcome))

    (header,) = _blocks(message, "header")
    assert header["text"]["type"] == "plain_text"
    assert header["text"]["text"].endswith(f"Qualys connector {word}"), outcome
    assert message["text"].startswith(f"Qualys connector {word}:"), outcome
    assert _attachment(message)["color"] == OUTCOME_COLOURS[outcome], outcome


def test_every_outcome_has_its_own_colour() -> None:
    colours = [_attachment(build_message(_notification(o)))["color"] for o in Outcome]

    assert len(set(colours)) == len(Outcome)
    assert all(colour.startswith("#") and len(colour) == 7 for colour in colours)


def test_colours_follow_the_meaning_of_the_outcome() -> None:
    def rgb(outcome: Outcome) -> tuple[int, int, int]:
        colour = OUTCOME_COLOURS[outcome]
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)

    def dominant(outcome: Outcome) -> str:
        red, green, blue = rgb(outcome)
        return max(("red", red), ("green", green), ("blue", blue), key=lambda pair: pair[1])[0]

    assert dominant(Outcome.CREATED) == "green"
    assert dominant(Outcome.ACTIVATED) == "green"
    assert dominant(Outcome.UPDATED) == "blue"
    assert dominant(Outcome.FAILED) == "red"


def test_fields_name_account_region_stack_connector_state_and_request() -> None:
    message = build_message(_notification(Outcome.ACTIVATED, state="SUCCESS"))

    assert _fields(message) == {
        "Account": "123456789012",
        "Region": "eu-west-1",
        "Stack": "StackSet-qualys-connector-1a2b",
        "Connector": "prod-account",
        "Connector ID": "1234567",
        "State": "SUCCESS",
        "Request": "Create QualysConnector",
    }
    (context,) = _blocks(message, "context")
    assert STACK_ID in context["elements"][0]["text"]


@pytest.mark.parametrize(
    ("outcome", "reason", "expected"),
    [
        pytest.param(Outcome.CREATED, None, None, id="success-without-reason-has-no-reason"),
        pytest.param(Outcome.DELETED, "already gone", "already gone", id="success-with-a-note"),
        pytest.param(
            Outcome.FAILED,
            "Property Regions is required",
            "Property Regions is required",
            id="failure-reason",
        ),
        pytest.param(Outcome.FAILED, None, "see the provider function's log", id="no-reason"),
        pytest.param(Outcome.FAILED, "  ", "see the provider function's log", id="blank-reason"),
    ],
)
def test_reason_section_appears_when_there_is_a_reason_and_always_on_failure(
    outcome: Outcome, reason: str | None, expected: str | None
) -> None:
    message = build_message(_notification(outcome, reason=reason))

    shown = _reason(message)
    if expected is None:
        assert shown is None
        return
    assert shown is not None
    assert expected in shown
    assert expected in message["text"]


# --- StackId -----------------------------------------------------------------------------

STACK_ID_CASES = [
    pytest.param(
        STACK_ID,
        StackRef("aws", "eu-west-1", "123456789012", "StackSet-qualys-connector-1a2b"),
        id="aws",
    ),
    pytest.param(
        "arn:aws-us-gov:cloudformation:us-gov-west-1:210987654321:stack/qualys/0f0e0d0c",
        StackRef("aws-us-gov", "us-gov-west-1", "210987654321", "qualys"),
        id="aws-us-gov",
    ),
    pytest.param(
        "arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/q-cn/guid",
        StackRef("aws-cn", "cn-north-1", "111122223333", "q-cn"),
        id="aws-cn",
    ),
    pytest.param(
        "arn:aws:cloudformation:us-east-1:123456789012:stack/no-guid",
        StackRef("aws", "us-east-1", "123456789012", "no-guid"),
        id="no-guid",
    ),
    pytest.param(
        "arn:aws:cloudformation::123456789012:stack//guid",
        StackRef("aws", "unknown", "123456789012", "unknown"),
        id="empty-parts",
    ),
    pytest.param(
        "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs/guid",
        StackRef("aws", "us-east-1", "123456789012", "unknown"),
        id="not-a-stack",
    ),
    pytest.param(
        "arn:aws:s3:::bucket/key",
        StackRef("unknown", "unknown", "unknown", "unknown"),
        id="other-service",
    ),
    pytest.param("garbage", StackRef("unknown", "unknown", "unknown", "unknown"), id="garbage"),
    pytest.param("", StackRef("unknown", "unknown", "unknown", "unknown"), id="empty"),
]


@pytest.mark.parametrize(("stack_id", "expected"), STACK_ID_CASES)
def test_stack_ref_parses_any_partition_and_never_raises(stack_id: str, expected: StackRef) -> None:
    assert StackRef.parse(stack_id) == expected


def test_unparsable_stack_id_still_builds_a_valid_message() -> None:
    message = build_message(_notification(stack_id="not an arn"))

    fields = _fields(message)
    assert fields["Account"] == fields["Region"] == fields["Stack"] == "unknown"


# --- escaping and limits ---------------------------------------------------------------

HOSTILE = "<!channel> R&D <https://evil.example|click> >"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"connector_name": HOSTILE}, id="connector-name"),
        pytest.param({"connector_id": HOSTILE}, id="connector-id"),
        pytest.param({"state": HOSTILE}, id="state"),
        pytest.param({"reason": HOSTILE}, id="reason"),
        pytest.param({"logical_resource_id": HOSTILE}, id="logical-id"),
        pytest.param({"request_type": HOSTILE}, id="request-type"),
        pytest.param(
            {"stack_id": f"arn:aws:cloudformation:{HOSTILE}:{HOSTILE}:stack/{HOSTILE}/g"},
            id="stack-id",
        ),
    ],
)
def test_user_values_are_escaped_everywhere(changes: dict[str, Any]) -> None:
    message = build_message(_notification(Outcome.FAILED, **changes))

    for key, text in _texts(message):
        if not isinstance(text, str):
            continue
        assert "<" not in text, f"{key}: {text!r}"
        assert ">" not in text, f"{key}: {text!r}"
        assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
    assert "&lt;!channel&gt; R&amp;D" in json.dumps(message)


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        pytest.param("short", 10, "short", id="fits"),
        pytest.param("a&b", 7, "a&amp;b", id="escaped-fits-exactly"),
        pytest.param("abcdefghij", 5, "abcd…", id="cut-with-ellipsis"),
        pytest.param("abc&def", 6, "abc…", id="never-cuts-inside-an-entity"),
        pytest.param("<<<<", 9, "&lt;&lt;…", id="entities-only"),
    ],
)
def test_fit_mrkdwn_escapes_then_cuts_on_entity_boundaries(
    value: str, limit: int, expected: str
) -> None:
    fitted = fit_mrkdwn(value, limit)

    assert fitted == expected
    assert len(fitted) <= limit


def test_a_5000_character_reason_is_cut_to_the_section_limit() -> None:
    reason = "Qualys said no & " * 300  # 5,100 characters, more after escaping

    message = build_message(_notification(Outcome.FAILED, reason=reason))

    shown = _reason(message)
    assert shown is not None
    assert shown.endswith("…")
    (section,) = [block for block in _blocks(message, "section") if "text" in block]
    assert len(section["text"]["text"]) <= SECTION_TEXT_LIMIT
    assert len(message["text"]) < 1000, "the fallback stays a one-liner"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"connector_name": "n" * 5000}, id="connector-name"),
        pytest.param({"connector_id": "&" * 5000}, id="connector-id-of-entities"),
        pytest.param({"state": "s" * 5000}, id="state"),
        pytest.param({"logical_resource_id": "L" * 5000}, id="logical-id"),
        pytest.param({"stack_id": "arn:aws:cloudformation:r:a:stack/" + "x" * 5000}, id="stack"),
    ],
)
def test_long_values_keep_every_text_within_slack_limits(changes: dict[str, Any]) -> None:
    message = build_message(_notification(Outcome.FAILED, **changes))

    (header,) = _blocks(message, "header")
    assert len(header["text"]["text"]) <= HEADER_TEXT_LIMIT
    for field in _blocks(message, "section")[0]["fields"]:
        assert len(field["text"]) <= FIELD_TEXT_LIMIT
    (context,) = _blocks(message, "context")
    assert len(context["elements"][0]["text"]) <= SECTION_TEXT_LIMIT
    assert len(message["text"]) < 1000


# --- never empty -----------------------------------------------------------------------

EMPTY_CASES = [
    pytest.param({}, id="all-set"),
    pytest.param(
        {"connector_name": None, "connector_id": None, "state": None, "reason": None},
        id="all-none",
    ),
    pytest.param(
        {"connector_name": "", "connector_id": " ", "state": "\n", "reason": ""},
        id="all-blank",
    ),
    pytest.param({"stack_id": "", "request_type": "", "logical_resource_id": ""}, id="no-ids"),
]


@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda outcome: outcome.value)
@pytest.mark.parametrize("changes", EMPTY_CASES)
def test_no_text_in_the_payload_is_ever_empty(outcome: Outcome, changes: dict[str, Any]) -> None:
    message = build_message(_notification(outcome, **changes))

    texts = list(_texts(message))
    assert texts, "the payload has text"
    for key, text in texts:
        if isinstance(text, dict):  # a text object; its own "text" is checked on its own
            continue
        assert isinstance(text, str), f"{key} is {text!r}"
        assert text.strip(), f"{key} is empty"
    for value in _fields(message).values():
        assert value.strip(), "a field shows a value, or a dash when there is none"
    assert message["text"] == _attachment(message)["fallback"]
    json.dumps(message)  # serialisable as it is


def test_missing_values_show_a_dash() -> None:
    message = build_message(_notification(Outcome.FAILED, connector_id=None, state=""))

    fields = _fields(message)
    assert fields["Connector ID"] == "—"
    assert fields["State"] == "—"
