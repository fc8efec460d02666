"""Classifying every connector and every account of an audit: pure, no I/O.

Rules (design section 10):

- A connector is *ours* when it carries the provider's ownership marker where the provider
  writes it (``provider.markers.leading_marker``); any other connector is ``foreign``: it is
  reported, never covers an account and never makes a duplicate.
- A connector's account is its ``awsAccountId``, else the account of its role ``arn``, else
  the id in an ``aws-<12 digits>`` name (the default connector name).
- One of ours whose account is unknown, absent from the organisation or not ``ACTIVE`` is
  ``orphaned``. Only those whose account is known (absent or not ACTIVE) may be deleted:
  a connector whose account cannot be told may be one a stack is still creating.
- Of ours for one ACTIVE account, the account's connector is the oldest healthy one (lowest
  id first; the oldest of all when none is healthy); the others are ``duplicate``. The
  account's connector is ``unhealthy`` when it is not healthy, else ``ok``.
- Healthy: enabled and not in ERROR. Not healthy: state ``ERROR`` (the detail is Qualys's
  ``lastError``), or disabled (``disabled`` true or state ``DISABLED``): never activated,
  or disabled since. An enabled connector still ``QUEUED`` for its first sync is ``ok``;
  ``FINISHED_ERRORS`` (the sync ran, with errors) is ``ok`` with its ``lastError`` as the
  detail.
- Where several classes apply, orphaned wins over duplicate, and duplicate over unhealthy.
- Every ACTIVE account in scope (all of them, or those of the ``--ou`` OUs) without one of
  ours is ``missing``. Connectors are always judged against the whole organisation.
"""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from provider.ids import ACCOUNT_ID
from provider.markers import leading_marker
from provider.qualys.models import Connector
from provider.text import shorten

ACTIVE: Final = "ACTIVE"
_DEFAULT_NAME: Final = re.compile(r"aws-([0-9]{12})")
_DETAIL_CHARS: Final = 300


class Status(enum.Enum):
    """The class of a connector or account, in the order reports list them."""

    MISSING = "missing"
    ORPHANED = "orphaned"
    DUPLICATE = "duplicate"
    UNHEALTHY = "unhealthy"
    FOREIGN = "foreign"
    OK = "ok"


SUMMARY_ORDER: Final = (
    Status.OK,
    Status.MISSING,
    Status.ORPHANED,
    Status.DUPLICATE,
    Status.UNHEALTHY,
    Status.FOREIGN,
)
"""The keys of the JSON summary, in the design's order."""


@dataclass(frozen=True)
class Account:
    """An AWS account of the organisation; ``status`` as Organizations reports it."""

    id: str
    name: str
    status: str

    @property
    def active(self) -> bool:
        """Whether the account is ACTIVE (SUSPENDED, PENDING_CLOSURE, CLOSED are not)."""
        return self.status == ACTIVE


@dataclass(frozen=True)
class Finding:
    """One connector's class, the account it maps to, and why."""

    connector: Connector
    account: str | None
    status: Status
    detail: str

    @property
    def deletable(self) -> bool:
        """Whether ``--delete-orphans --yes`` deletes it: orphaned, and its account is known
        (absent from the organisation, or there and not ACTIVE)."""
        return self.status is Status.ORPHANED and self.account is not None


@dataclass(frozen=True)
class Audit:
    """Every connector's finding (by id) and every missing account (by id)."""

    findings: tuple[Finding, ...]
    missing: tuple[Account, ...]
    accounts: Mapping[str, Account]
    """The whole organisation, by account id."""

    def count(self, status: Status) -> int:
        """How many connectors (or, for ``missing``, accounts) are of this class."""
        if status is Status.MISSING:
            return len(self.missing)
        return sum(1 for f in self.findings if f.status is status)

    def summary(self) -> dict[str, int]:
        """The count of every class, keyed by its name, in the design's order."""
        return {status.value: self.count(status) for status in SUMMARY_ORDER}

    def of(self, status: Status) -> list[Finding]:
        """The connectors of one class, by id."""
        return [f for f in self.findings if f.status is status]

    @property
    def all_ok(self) -> bool:
        """Whether every connector is ``ok`` and no account is missing."""
        return not self.missing and all(f.status is Status.OK for f in self.findings)

    def account_name(self, account_id: str | None) -> str | None:
        """The organisation's name of an account, when it is in the organisation."""
        account = self.accounts.get(account_id) if account_id is not None else None
        return account.name if account is not None else None


def account_of(connector: Connector) -> str | None:
    """The AWS account a connector is for: awsAccountId, else its role's, else its name's."""
    if connector.aws_account_id and ACCOUNT_ID.fullmatch(connector.aws_account_id):
        return connector.aws_account_id
    parts = (connector.arn or "").split(":", 5)
    if (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[2] == "iam"
        and ACCOUNT_ID.fullmatch(parts[4])
    ):
        return parts[4]
    match = _DEFAULT_NAME.fullmatch(connector.name or "")
    return match.group(1) if match else None


def health_problem(connector: Connector) -> str | None:
    """Why the connector is unhealthy (for ERROR, Qualys's ``lastError``), or None."""
    if connector.disabled or connector.state == "DISABLED":
        return "disabled: never activated, or disabled since"
    if connector.state == "ERROR":
        return shorten(connector.last_error, _DETAIL_CHARS, empty="ERROR, with no lastError")
    return None


def _ok_detail(connector: Connector) -> str:
    if connector.state == "FINISHED_ERRORS" and connector.last_error:
        return "last sync had errors: " + shorten(connector.last_error, _DETAIL_CHARS)
    return ""


def ownership_finding(connector: Connector, accounts: Mapping[str, Account]) -> Finding | None:
    """The connector's finding when it is ``foreign`` or ``orphaned``; None when it is one
    of ours for an ACTIVE account (which the account's other connectors decide about)."""
    account_id = account_of(connector)
    account = accounts.get(account_id) if account_id is not None else None
    if leading_marker(connector) is None:
        detail = "no marker: not made by this project, never touched"
        return Finding(connector, account_id, Status.FOREIGN, detail)
    if account_id is None:
        detail = "account unknown (no awsAccountId, role ARN or aws-<id> name): never deleted"
        return Finding(connector, None, Status.ORPHANED, detail)
    if account is None:
        detail = "account not in the organisation"
        return Finding(connector, account_id, Status.ORPHANED, detail)
    if not account.active:
        detail = f"account {account.status}"
        return Finding(connector, account_id, Status.ORPHANED, detail)
    return None


def classify(
    connectors: Iterable[Connector],
    accounts: Sequence[Account],
    *,
    scope: Collection[str] | None = None,
) -> Audit:
    """Classify every connector against ``accounts`` (the whole organisation); ``scope``
    (account ids) narrows which ACTIVE accounts can be missing, None meaning all."""
    by_id = {account.id: account for account in accounts}
    findings: list[Finding] = []
    ours: defaultdict[str, list[Connector]] = defaultdict(list)

    for connector in connectors:
        finding = ownership_finding(connector, by_id)
        if finding is not None:
            findings.append(finding)
        else:
            account_id = account_of(connector)
            assert account_id is not None
            ours[account_id].append(connector)

    for account_id, group in ours.items():
        group.sort(key=lambda c: c.id)
        healthy = [c for c in group if health_problem(c) is None]
        keeper = (healthy or group)[0]
        for connector in group:
            if connector is not keeper:
                detail = f"the account's connector is {keeper.id}"
                findings.append(Finding(connector, account_id, Status.DUPLICATE, detail))
                continue
            problem = health_problem(connector)
            if problem is None:
                findings.append(Finding(connector, account_id, Status.OK, _ok_detail(connector)))
            else:
                findings.append(Finding(connector, account_id, Status.UNHEALTHY, problem))

    missing = tuple(
        account
        for account in sorted(accounts, key=lambda a: a.id)
        if account.active and account.id not in ours and (scope is None or account.id in scope)
    )
    return Audit(
        findings=tuple(sorted(findings, key=lambda f: f.connector.id)),
        missing=missing,
        accounts=by_id,
    )
