"""Running an audit: Qualys's connectors (one search, pages of 1,000) against the accounts,
and the deletion of orphans that carry the ownership marker."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import requests

from provider.audit.classify import Account, Audit, Finding, Status, classify, ownership_finding
from provider.audit.errors import AuditError
from provider.config import Settings
from provider.credentials import SecretCredentials, SecretStore
from provider.deadline import Deadline
from provider.qualys.client import QualysClient, RetryPolicy
from provider.qualys.errors import (
    QualysError,
    QualysNotFoundError,
    QualysResponseError,
    QualysUnavailableError,
)
from provider.qualys.models import Connector, Criterion

logger = logging.getLogger(__name__)

PAGE_SIZE: Final = 1000
"""Connectors per search page: Qualys's largest ``limitResults``."""


class ConnectorReader(Protocol):
    """The Qualys operations the audit needs; ``QualysClient`` provides them."""

    def get(self, connector_id: int, *, deadline: Deadline) -> Connector: ...

    def search(
        self, criteria: Sequence[Criterion], *, deadline: Deadline, page_size: int = 100
    ) -> list[Connector]: ...

    def delete(self, connector_id: int, *, deadline: Deadline) -> None: ...


def qualys_client(
    settings: Settings,
    secrets: SecretStore,
    *,
    retry: RetryPolicy | None = None,
    on_page: Callable[[int], None] | None = None,
) -> QualysClient:
    """The Qualys client of the settings; ``on_page(n)`` is told as each search page
    arrives (before it is read), for progress."""
    session = requests.Session()
    if on_page is not None:
        pages = itertools.count(1)

        def count_page(response: requests.Response, *_: Any, **__: Any) -> requests.Response:
            if response.status_code == 200 and "/search/" in (response.request.path_url or ""):
                on_page(next(pages))
            return response

        session.hooks["response"].append(count_page)
    return QualysClient(
        base_url=settings.qualys_api_url,
        credentials=SecretCredentials(secrets, settings.credentials_secret_id),
        api_version=settings.qualys_api_version,
        retry=retry,
        session=session,
    )


def run_audit(
    api: ConnectorReader,
    accounts: Sequence[Account],
    *,
    scope: Collection[str] | None,
    deadline: Deadline,
) -> Audit:
    """Every connector Qualys shows, classified against ``accounts`` (the organisation)."""
    if not accounts:
        raise AuditError("The account list is empty: there is nothing to compare Qualys with")
    connectors = api.search([], deadline=deadline, page_size=PAGE_SIZE)
    logger.info("Read %d connectors from Qualys", len(connectors))
    return classify(connectors, accounts, scope=scope)


@dataclass(frozen=True)
class Deletion:
    """What became of one orphan that ``--delete-orphans --yes`` set out to delete."""

    finding: Finding
    deleted: bool
    outcome: str


def deletable(audit: Audit) -> list[Finding]:
    """The orphans ``--delete-orphans`` deletes: those whose account is known (absent from
    the organisation, or not ACTIVE there)."""
    return [finding for finding in audit.of(Status.ORPHANED) if finding.deletable]


def delete_orphans(api: ConnectorReader, audit: Audit, *, deadline: Deadline) -> list[Deletion]:
    """Delete the audit's deletable orphans, each read again first: one that no longer
    carries the marker, or whose account is now ACTIVE or unknown, is left alone."""
    if not audit.accounts:
        raise AuditError("The account list is empty: refusing to delete anything")
    return [_delete_orphan(api, finding, audit, deadline) for finding in deletable(audit)]


def _delete_orphan(
    api: ConnectorReader, finding: Finding, audit: Audit, deadline: Deadline
) -> Deletion:
    connector_id = finding.connector.id
    try:
        current = api.get(connector_id, deadline=deadline)
    except QualysNotFoundError:
        logger.info("Orphaned connector %s is already gone", connector_id)
        return Deletion(finding, deleted=False, outcome="already gone")
    except QualysError as error:
        logger.warning("Reading orphaned connector %s failed: %s", connector_id, error)
        return Deletion(finding, deleted=False, outcome=f"not deleted: {error}")
    again = ownership_finding(current, audit.accounts)
    if again is None or not again.deletable:
        logger.warning("Connector %s changed since the search: not deleted", connector_id)
        return Deletion(finding, deleted=False, outcome="not deleted: changed since the search")
    try:
        api.delete(connector_id, deadline=deadline)
    except (QualysNotFoundError, QualysUnavailableError, QualysResponseError) as error:
        # The outcome is in doubt (an answer cut off, or "not found" for a connector just
        # read): look it up, never send the delete again.
        logger.warning("Deleting orphaned connector %s: %s; looking it up", connector_id, error)
        return _confirmed(api, finding, deadline, error)
    except QualysError as error:
        logger.warning("Deleting orphaned connector %s failed: %s", connector_id, error)
        return Deletion(finding, deleted=False, outcome=f"not deleted: {error}")
    logger.info("Deleted orphaned connector %s (%s)", connector_id, again.detail)
    return Deletion(finding, deleted=True, outcome="deleted")


def _confirmed(
    api: ConnectorReader, finding: Finding, deadline: Deadline, error: QualysError
) -> Deletion:
    """What a delete whose answer is in doubt did, by reading the connector again."""
    connector_id = finding.connector.id
    try:
        api.get(connector_id, deadline=deadline)
    except QualysNotFoundError:
        logger.info("Deleted orphaned connector %s (%s)", connector_id, finding.detail)
        return Deletion(finding, deleted=True, outcome="deleted")
    except QualysError as again:
        return Deletion(finding, deleted=False, outcome=f"unknown: {error}; then {again}")
    return Deletion(finding, deleted=False, outcome=f"not deleted: {error}")
