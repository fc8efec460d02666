"""What an audit reports: the JSON document (design section 10), table rows, the summary
line and the Slack digest, which stays within Block Kit's limits whatever the fleet."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provider.audit import report
from provider.audit.classify import Account, Audit, classify
from provider.markers import marker
from provider.qualys.models import Connector
from sandbox.slack import check_message

A, B, GONE = "111111111111", "222222222222", "999999999999"
MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
FIELDS = 10
FIELD_TEXT = 2000


def ours(connector_id: int, account: str, **fields: Any) -> Connector:
    stack = f"arn:aws:cloudformation:eu-west-1:{account}:stack/s/{connector_id}"
    values: dict[str, Any] = {
        "name": f"aws-{account}",
        "description": marker(stack, "QualysConnector"),
        "aws_account_id": account,
        "disabled": False,
        "state": "FINISHED_SUCCESS",
        **fields,
    }
    return Connector(id=connector_id, **values)


def small_audit() -> Audit:
    return classify(
        [
            ours(1, A),
            ours(2, A, state="ERROR", last_error="dup"),
            ours(3, GONE),
            Connector(id=4, name="by hand", description="mine", aws_account_id=A, state="ERROR"),
        ],
        [Account(A, "prod", "ACTIVE"), Account(B, "new", "ACTIVE")],
    )


def big_audit(per_class: int = 1500) -> Audit:
    """Thousands of findings of every class, with long, markup-laden names and errors."""
    hostile = "<!channel> *bold* & `code` " + "x" * 2000
    accounts = [Account(f"{n:012d}", f"name {n} {hostile}", "ACTIVE") for n in range(per_class)]
    accounts += [Account(f"5{n:011d}", f"closed {n}", "SUSPENDED") for n in range(per_class)]
    accounts += [Account(f"6{n:011d}", f"broken {n}", "ACTIVE") for n in range(per_class)]
    connectors = []
    for n in range(per_class):
        connectors.append(ours(10_000 + n, f"5{n:011d}", name=hostile))  # orphaned
        connectors.append(ours(20_000 + n, f"6{n:011d}", state="ERROR", last_error=hostile))
        connectors.append(ours(30_000 + n, f"{n:012d}"))  # ok
        connectors.append(ours(35_000 + n, f"{n:012d}"))  # duplicate
        connectors.append(Connector(id=40_000 + n, name=hostile, description=hostile))
    missing = [Account(f"7{n:011d}", hostile, "ACTIVE") for n in range(per_class)]
    return classify(connectors, accounts + missing)


def test_the_json_document_has_exactly_the_designs_keys() -> None:
    document = report.as_json(small_audit())

    assert list(document) == ["summary", "connectors", "missing"]
    assert list(document["summary"]) == [
        "ok",
        "missing",
        "orphaned",
        "duplicate",
        "unhealthy",
        "foreign",
    ]
    for connector in document["connectors"]:
        assert list(connector) == ["id", "name", "account", "state", "status", "detail"]
    for account in document["missing"]:
        assert list(account) == ["account", "name"]


def test_the_json_document_lists_every_connector_ok_ones_too() -> None:
    document = report.as_json(small_audit())

    assert document["summary"] == {
        "ok": 1,
        "missing": 1,
        "orphaned": 1,
        "duplicate": 1,
        "unhealthy": 0,
        "foreign": 1,
    }
    assert [(c["id"], c["status"], c["state"]) for c in document["connectors"]] == [
        (1, "ok", "FINISHED_SUCCESS"),
        (2, "duplicate", "ERROR"),
        (3, "orphaned", "FINISHED_SUCCESS"),
        (4, "foreign", "ERROR"),
    ]
    assert document["connectors"][2]["account"] == GONE
    assert document["missing"] == [{"account": B, "name": "new"}]
    assert json.loads(json.dumps(document)) == document


def test_rows_name_the_account_the_connector_its_state_and_the_reason() -> None:
    audit = classify(
        [ours(1, A, state="ERROR", last_error="Unable to assume role")],
        [Account(A, "prod", "ACTIVE"), Account(B, "", "ACTIVE")],
    )

    assert report.rows(audit, report.Status.UNHEALTHY) == [
        (A, "prod", "1", f"aws-{A}", "ERROR", "Unable to assume role")
    ]
    assert report.rows(audit, report.Status.MISSING) == [
        (B, "—", "—", "—", "—", "no connector of this project")
    ]


def test_the_summary_line_counts_every_class_and_what_was_compared() -> None:
    assert report.summary_line(small_audit()) == (
        "Not ok: 1 ok, 1 missing, 1 orphaned, 1 duplicate, 0 unhealthy, 1 foreign"
        " (2 accounts, 4 connectors)"
    )


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    (attachment,) = message["attachments"]
    blocks: list[dict[str, Any]] = attachment["blocks"]
    return blocks


def assert_within_block_kit_limits(message: dict[str, Any]) -> None:
    check_message(message)  # the receiver's rules, the ones Slack enforces
    blocks = blocks_of(message)
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= HEADER_TEXT
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= SECTION_TEXT
            assert len(block.get("fields", [])) <= FIELDS
            for field in block.get("fields", []):
                assert len(field["text"]) <= FIELD_TEXT
    assert len(json.dumps(message)) < 40_000


def test_a_digest_of_thousands_of_findings_stays_within_block_kit_limits() -> None:
    audit = big_audit()

    message = report.digest(audit)

    assert_within_block_kit_limits(message)
    assert len(blocks_of(message)) == 8, "header, counts, five classes, context"
    text = json.dumps(message)
    assert "<!channel>" not in text, "names from Qualys must not ping a channel"
    assert "&lt;!channel&gt;" in text


def test_a_digest_lists_the_first_items_and_counts_the_rest() -> None:
    audit = big_audit(per_class=40)

    sections = [b["text"]["text"] for b in blocks_of(report.digest(audit)) if "text" in b]
    orphaned = next(s for s in sections if s.startswith("*Orphaned"))

    assert "(40)" in orphaned.splitlines()[0]
    assert orphaned.count("\n• ") == report.DIGEST_ITEMS
    assert orphaned.endswith(f"_…and {40 - report.DIGEST_ITEMS} more_")


def test_a_digest_has_the_summary_and_one_section_per_class_found() -> None:
    message = report.digest(small_audit())
    blocks = blocks_of(message)

    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == ":mag: Qualys connector audit: 4 to look at"
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields == [
        "*ok*\n1",
        "*missing*\n1",
        "*orphaned*\n1",
        "*duplicate*\n1",
        "*unhealthy*\n0",
        "*foreign*\n1",
    ]
    titles = [b["text"]["text"].split("\n")[0].rsplit(" (", 1)[0] for b in blocks if "text" in b]
    assert titles[1:] == [
        "*Orphaned: the account is gone or not ACTIVE*",
        "*Missing: ACTIVE accounts without a connector*",
        "*Duplicate: more than one connector for an account*",
        "*Foreign: no ownership marker (never touched)*",
    ]
    assert message["text"] == report.summary_line(small_audit())
    assert_within_block_kit_limits(message)


def test_an_all_clear_digest_says_so() -> None:
    audit = classify([ours(1, A)], [Account(A, "prod", "ACTIVE")])

    message = report.digest(audit)

    assert "all clear" in blocks_of(message)[0]["text"]["text"]
    assert_within_block_kit_limits(message)


@pytest.mark.parametrize("reason", ["Qualys rejected the credentials", "x" * 10_000], ids=len)
def test_the_digest_of_an_audit_that_could_not_run_stays_within_limits(reason: str) -> None:
    message = report.failure_digest(reason)

    assert_within_block_kit_limits(message)
    assert "could not run" in message["text"]
