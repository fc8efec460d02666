"""The fleet audit's classification (design section 10), as a table of named cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from provider.audit.classify import Account, Status, account_of, classify
from provider.markers import marker
from provider.qualys.models import Connector

STACK = "arn:aws:cloudformation:eu-west-1:{account}:stack/qualys-connector/{n}"
A, B, C, GONE = "111111111111", "222222222222", "333333333333", "999999999999"
MANAGEMENT = "123456789012"


def ours(connector_id: int, account: str | None, **fields: Any) -> Connector:
    """A connector as the provider makes it, for ``account`` (its awsAccountId)."""
    stack = STACK.format(account=account or "000000000000", n=connector_id)
    values: dict[str, Any] = {
        "name": f"aws-{account}" if account else f"connector-{connector_id}",
        "description": f"{marker(stack, 'QualysConnector')} managed by CloudFormation",
        "aws_account_id": account,
        "disabled": False,
        "state": "FINISHED_SUCCESS",
        **fields,
    }
    return Connector(id=connector_id, **values)


def foreign(connector_id: int, account: str | None, **fields: Any) -> Connector:
    """A connector made by hand in the Qualys UI: no marker."""
    return ours(connector_id, account, description="made by hand", **fields)


def org(*accounts: tuple[str, str]) -> list[Account]:
    return [Account(id=i, name=f"account-{i[:3]}", status=status) for i, status in accounts]


ACTIVE_ABC = org((A, "ACTIVE"), (B, "ACTIVE"), (C, "ACTIVE"))


@dataclass(frozen=True)
class Case:
    name: str
    connectors: list[Connector]
    accounts: list[Account]
    expected: dict[int, Status]
    missing: list[str] = field(default_factory=list)
    scope: set[str] | None = None
    detail: dict[int, str] = field(default_factory=dict)
    """Text the finding's detail must contain, by connector id."""


OK, MISSING, ORPHANED = Status.OK, Status.MISSING, Status.ORPHANED
DUPLICATE, UNHEALTHY, FOREIGN = Status.DUPLICATE, Status.UNHEALTHY, Status.FOREIGN

CASES = [
    Case(
        "one healthy connector of ours for an ACTIVE account is ok",
        [ours(1, A)],
        org((A, "ACTIVE")),
        {1: OK},
    ),
    Case(
        "a connector queued for its first sync is ok: enabled and not in ERROR",
        [ours(1, A, state="QUEUED", last_sync=None)],
        org((A, "ACTIVE")),
        {1: OK},
    ),
    Case(
        "a sync that finished with errors is ok, its lastError as the detail",
        [ours(1, A, state="FINISHED_ERRORS", last_error="Region ap-east-1 is not enabled")],
        org((A, "ACTIVE")),
        {1: OK},
        detail={1: "Region ap-east-1 is not enabled"},
    ),
    Case(
        "a connector in ERROR is unhealthy, with Qualys's lastError as the reason",
        [ours(1, A, state="ERROR", last_error="Unable to assume role arn:aws:iam::1:role/x")],
        org((A, "ACTIVE")),
        {1: UNHEALTHY},
        detail={1: "Unable to assume role arn:aws:iam::1:role/x"},
    ),
    Case(
        "a connector in ERROR without a lastError says so",
        [ours(1, A, state="ERROR", last_error=None)],
        org((A, "ACTIVE")),
        {1: UNHEALTHY},
        detail={1: "no lastError"},
    ),
    Case(
        "a connector never activated (still disabled) is unhealthy",
        [ours(1, A, disabled=True, state="DISABLED", arn=None)],
        org((A, "ACTIVE")),
        {1: UNHEALTHY},
        detail={1: "never activated"},
    ),
    Case(
        "state DISABLED is unhealthy even when disabled is not reported",
        [ours(1, A, disabled=None, state="DISABLED")],
        org((A, "ACTIVE")),
        {1: UNHEALTHY},
    ),
    Case(
        "a SUSPENDED (closed) account's connector is orphaned",
        [ours(1, A)],
        org((A, "SUSPENDED"), (B, "ACTIVE")),
        {1: ORPHANED},
        missing=[B],
        detail={1: "SUSPENDED"},
    ),
    Case(
        "a PENDING_CLOSURE account's connector is orphaned",
        [ours(1, A)],
        org((A, "PENDING_CLOSURE")),
        {1: ORPHANED},
    ),
    Case(
        "a connector for an account absent from the organisation is orphaned",
        [ours(1, GONE), ours(2, A)],
        org((A, "ACTIVE")),
        {1: ORPHANED, 2: OK},
        detail={1: "not in the organisation"},
    ),
    Case(
        "a connector whose account cannot be told is orphaned",
        [ours(1, None, arn=None)],
        org((A, "ACTIVE")),
        {1: ORPHANED},
        missing=[A],
        detail={1: "account unknown"},
    ),
    Case(
        "the account comes from the role ARN when awsAccountId is absent",
        [ours(1, None, arn=f"arn:aws-us-gov:iam::{A}:role/qualys")],
        org((A, "ACTIVE")),
        {1: OK},
    ),
    Case(
        "the account comes from the aws-<id> default name when nothing else tells it",
        [ours(1, None, name=f"aws-{A}", arn=None)],
        org((A, "ACTIVE")),
        {1: OK},
    ),
    Case(
        "awsAccountId wins over the role ARN and the name",
        [ours(1, A, arn=f"arn:aws:iam::{B}:role/qualys", name=f"aws-{C}")],
        ACTIVE_ABC,
        {1: OK},
        missing=[B, C],
    ),
    Case(
        "a name that only looks like the default (too short) maps no account",
        [ours(1, None, name="aws-12345", arn=None)],
        org((A, "ACTIVE")),
        {1: ORPHANED},
        missing=[A],
    ),
    Case(
        "two of ours for one account: the lowest healthy id is ok, the other a duplicate",
        [ours(7, A), ours(3, A)],
        org((A, "ACTIVE")),
        {3: OK, 7: DUPLICATE},
        detail={7: "is 3"},
    ),
    Case(
        "the oldest healthy one is kept even when an older one is unhealthy",
        [ours(1, A, state="ERROR", last_error="boom"), ours(2, A)],
        org((A, "ACTIVE")),
        {1: DUPLICATE, 2: OK},
    ),
    Case(
        "none healthy: the oldest is the account's (unhealthy), the others duplicates",
        [ours(1, A, state="ERROR", last_error="x"), ours(2, A, disabled=True)],
        org((A, "ACTIVE")),
        {1: UNHEALTHY, 2: DUPLICATE},
    ),
    Case(
        "duplicate wins over unhealthy",
        [ours(1, A), ours(2, A, state="ERROR", last_error="x")],
        org((A, "ACTIVE")),
        {1: OK, 2: DUPLICATE},
    ),
    Case(
        "orphaned wins over duplicate: two of ours for a closed account are both orphans",
        [ours(1, A), ours(2, A)],
        org((A, "SUSPENDED")),
        {1: ORPHANED, 2: ORPHANED},
    ),
    Case(
        "orphaned wins over unhealthy",
        [ours(1, A, state="ERROR", last_error="x")],
        org((A, "CLOSED")),
        {1: ORPHANED},
    ),
    Case(
        "a connector without the marker is foreign, whatever its state or account",
        [foreign(1, A), foreign(2, GONE), foreign(3, A, state="ERROR", last_error="x")],
        org((A, "ACTIVE")),
        {1: FOREIGN, 2: FOREIGN, 3: FOREIGN},
        missing=[A],
    ),
    Case(
        "a foreign connector neither covers an account nor makes a duplicate",
        [foreign(1, A), ours(2, A)],
        org((A, "ACTIVE"), (B, "ACTIVE")),
        {1: FOREIGN, 2: OK},
        missing=[B],
    ),
    Case(
        "a marker copied inside a description (not its first word) is not ownership",
        [ours(1, A, description=f"copied {marker('arn:x', 'QualysConnector')}")],
        org((A, "ACTIVE")),
        {1: FOREIGN},
        missing=[A],
    ),
    Case(
        "every ACTIVE account without one of ours is missing; a closed one is not",
        [],
        org((A, "ACTIVE"), (B, "SUSPENDED"), (C, "ACTIVE"), (MANAGEMENT, "ACTIVE")),
        {},
        missing=[A, C, MANAGEMENT],
    ),
    Case(
        "an account whose only connector is unhealthy is not missing",
        [ours(1, A, state="ERROR", last_error="x")],
        org((A, "ACTIVE")),
        {1: UNHEALTHY},
    ),
    Case(
        "the scope narrows which accounts can be missing",
        [],
        ACTIVE_ABC,
        {},
        missing=[B],
        scope={B},
    ),
    Case(
        "connectors are judged against the whole organisation, whatever the scope",
        [ours(1, A), ours(2, GONE), ours(3, C), ours(4, C)],
        ACTIVE_ABC,
        {1: OK, 2: ORPHANED, 3: OK, 4: DUPLICATE},
        missing=[B],
        scope={B},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_classification(case: Case) -> None:
    audit = classify(case.connectors, case.accounts, scope=case.scope)

    found = {f.connector.id: f.status for f in audit.findings}
    assert found == case.expected, case.name
    assert [a.id for a in audit.missing] == sorted(case.missing), case.name
    details = {f.connector.id: f.detail for f in audit.findings}
    for connector_id, text in case.detail.items():
        assert text in details[connector_id], f"{case.name}: {details[connector_id]!r}"


def test_every_connector_is_classified_exactly_once_in_id_order() -> None:
    connectors = [ours(5, A), foreign(2, A), ours(9, GONE), ours(1, B)]

    audit = classify(connectors, ACTIVE_ABC)

    assert [f.connector.id for f in audit.findings] == [1, 2, 5, 9]


def test_summary_counts_every_class_in_the_designs_order() -> None:
    audit = classify(
        [ours(1, A), ours(2, A), ours(3, GONE), foreign(4, B), ours(5, C, disabled=True)],
        org((A, "ACTIVE"), (B, "ACTIVE"), (C, "ACTIVE")),
    )

    assert list(audit.summary().items()) == [
        ("ok", 1),
        ("missing", 1),
        ("orphaned", 1),
        ("duplicate", 1),
        ("unhealthy", 1),
        ("foreign", 1),
    ]
    assert not audit.all_ok


def test_all_ok_only_when_nothing_else_and_nothing_missing() -> None:
    assert classify([ours(1, A)], org((A, "ACTIVE"))).all_ok
    assert not classify([ours(1, A)], org((A, "ACTIVE"), (B, "ACTIVE"))).all_ok
    assert not classify([ours(1, A), foreign(2, A)], org((A, "ACTIVE"))).all_ok


@pytest.mark.parametrize(
    ("connector", "deletable"),
    [
        (ours(1, A), True),
        (ours(1, GONE), True),
        (ours(1, None, arn=None), False),
        (foreign(1, A), False),
    ],
    ids=[
        "orphan of a closed account",
        "orphan of an absent account",
        "orphan whose account is unknown (maybe a stack still creating it)",
        "foreign connector of a closed account",
    ],
)
def test_only_orphans_of_a_known_account_are_deletable(
    connector: Connector, deletable: bool
) -> None:
    (finding,) = classify([connector], org((A, "SUSPENDED"), (B, "ACTIVE"))).findings

    assert finding.deletable is deletable


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"aws_account_id": A}, A),
        ({"aws_account_id": "\uff11" * 12}, None),  # fullwidth 1
        ({"arn": f"arn:aws:iam::{B}:role/x"}, B),
        ({"arn": f"arn:aws:sts::{B}:assumed-role/x"}, None),
        ({"arn": "not an arn"}, None),
        ({"name": f"aws-{C}"}, C),
        ({"name": f"aws-{C}-eu"}, None),
        ({}, None),
    ],
    ids=[
        "awsAccountId",
        "fullwidth digits are no account id",
        "IAM role ARN",
        "an STS ARN is not a role's",
        "not an ARN",
        "default name",
        "default name with a suffix",
        "nothing to tell",
    ],
)
def test_account_of(fields: dict[str, Any], expected: str | None) -> None:
    assert account_of(Connector(id=1, **fields)) == expected
