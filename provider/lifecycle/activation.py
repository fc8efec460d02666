"""``Custom::QualysConnectorActivation``: Create, Update and Delete of a role and enablement."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from provider.deadline import Deadline
from provider.errors import ActivationError, ConnectorGoneError, OwnershipError, ProviderError
from provider.ids import ACTIVATION_ID
from provider.lifecycle.model import ConnectorApi, Outcome, Request, Result
from provider.markers import owned_by_stack
from provider.properties import ActivationProperties
from provider.qualys.errors import QualysError, QualysNotFoundError
from provider.qualys.models import Connector, ConnectorChanges
from provider.text import shorten

logger = logging.getLogger(__name__)

_LAST_ERROR_CHARS = 90


@dataclass(frozen=True)
class ActivationPolicy:
    """How long activation waits for a new role to become assumable (IAM propagation)."""

    max_wait: float = 120.0
    """Seconds, at most, of applying the activation again while Qualys reports an error."""
    first_delay: float = 2.0
    max_delay: float = 20.0
    sync_poll: float = 5.0
    """Seconds between reads while waiting for the first sync (``WaitForFirstSync``)."""


SYNCING: Final = frozenset({"QUEUED", "PENDING", "RUNNING", "PROCESSING"})
"""States of a sync that has not finished (a new connector is QUEUED until its first)."""
_SYNC_FAILED: Final = frozenset({"ERROR", "FINISHED_ERRORS"})
_READ_RESERVE: Final = 5.0
"""Seconds a read of the connector needs after a pause in the wait for its sync."""
_ATTEMPT_RESERVE: Final = 10.0
"""Seconds another attempt (update, run, read) needs after a pause: a pause that leaves
less answers with Qualys's lastError now, not with "no time left" after it."""


def _last_error(connector: Connector) -> str:
    return shorten(connector.last_error, _LAST_ERROR_CHARS, empty="no error given")


def _sync_note(state: str | None, *, waited: bool) -> str | None:
    if state not in SYNCING:
        return None
    if waited:
        return "The first sync was still running when the time ran out; see it in Qualys."
    return "Queued for first sync: its result shows in Qualys."


def activation_id(connector_id: int) -> str:
    """The PhysicalResourceId of a connector's activation."""
    return f"{connector_id}/activation"


class ActivationResource:
    """``Custom::QualysConnectorActivation``: the role set on the connector, enabled."""

    def __init__(
        self,
        api: ConnectorApi,
        *,
        policy: ActivationPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = api
        self._policy = policy or ActivationPolicy()
        self._sleep = sleep

    # --- Create and Update ------------------------------------------------------------

    def create(self, request: Request, deadline: Deadline) -> Result:
        """Set the role and enable the connector."""
        return self._apply(request, deadline)

    def update(self, request: Request, deadline: Deadline) -> Result:
        """Set the role and enable the connector again (the role or connector changed)."""
        return self._apply(request, deadline)

    def _apply(self, request: Request, deadline: Deadline) -> Result:
        props = ActivationProperties.parse(request.properties)
        physical_id = activation_id(props.connector_id)
        name: str | None = None
        try:
            connector = self._stack_connector(props.connector_id, request, deadline)
            if connector is None:
                raise ConnectorGoneError(
                    f"Connector {props.connector_id} does not exist in Qualys: check ConnectorId"
                )
            name = connector.name
            connector = self._activate(props, deadline)
        except ProviderError as error:
            # After a failed Create the rollback Delete must find the connector to disable
            # it again; a failed Update keeps the id it had.
            failed_id = physical_id if request.request_type == "Create" else None
            error.concerning(
                physical_resource_id=failed_id or request.physical_resource_id or physical_id,
                connector_name=name,
            )
            raise
        return Result(
            physical_resource_id=physical_id,
            outcome=Outcome.ACTIVATED,
            data={"ConnectorState": connector.state or "UNKNOWN"},
            connector_name=connector.name,
            connector_id=str(props.connector_id),
            state=connector.state,
            note=_sync_note(connector.state, waited=props.wait_for_first_sync),
        )

    def _activate(self, props: ActivationProperties, deadline: Deadline) -> Connector:
        """Set the role, enable, start a sync; while Qualys reports an error, again."""
        policy = self._policy
        budget = deadline.capped(policy.max_wait)
        delay = policy.first_delay
        changes = ConnectorChanges(arn=props.role_arn, disabled=False)
        while True:
            self._api.update(props.connector_id, changes, deadline=deadline)
            self._start_sync(props.connector_id, deadline)
            connector = self._api.get(props.connector_id, deadline=deadline)
            if props.wait_for_first_sync:
                connector = self._first_sync(connector, deadline)
            failed = connector.state == "ERROR" or (
                props.wait_for_first_sync and connector.state in _SYNC_FAILED
            )
            if not failed:
                logger.info("Connector %s enabled: %s", connector.id, connector.state)
                return connector
            if not (budget.allows(delay) and deadline.allows(delay + _ATTEMPT_RESERVE)):
                raise ActivationError(
                    f"Qualys cannot use role for connector {connector.id}:"
                    f" {_last_error(connector)}. Check the role's trust policy"
                )
            # A role minutes old may not be assumable yet (IAM is eventually consistent).
            logger.info(
                "Connector %s is in ERROR (%s); applying again in %.0fs",
                connector.id,
                _last_error(connector),
                delay,
            )
            self._sleep(delay)
            delay = min(delay * 2, policy.max_delay)

    def _start_sync(self, connector_id: int, deadline: Deadline) -> None:
        """Ask Qualys to sync now, so role problems show before the first scheduled run."""
        try:
            self._api.run(connector_id, deadline=deadline)
        except QualysError as error:
            # The connector is enabled: its schedule will sync it anyway.
            logger.warning("Qualys did not start a sync of connector %s: %s", connector_id, error)

    def _first_sync(self, connector: Connector, deadline: Deadline) -> Connector:
        """Read the connector until its sync has finished, or the budget ends first."""
        poll = self._policy.sync_poll
        while connector.state in SYNCING and deadline.allows(poll + _READ_RESERVE):
            self._sleep(poll)
            connector = self._api.get(connector.id, deadline=deadline)
        return connector

    def _stack_connector(
        self, connector_id: int, request: Request, deadline: Deadline
    ) -> Connector | None:
        try:
            connector = self._api.get(connector_id, deadline=deadline)
        except QualysNotFoundError:
            return None
        if not owned_by_stack(connector, request.stack_id):
            raise OwnershipError(
                f"Connector {connector_id} was not created by this stack; it is left untouched"
            )
        return connector

    # --- Delete -----------------------------------------------------------------------

    def delete(self, request: Request, deadline: Deadline) -> Result:
        """Disable the connector, so Qualys stops using a role about to be deleted."""
        physical_id = request.physical_resource_id or ""
        match = ACTIVATION_ID.fullmatch(physical_id)
        if match is None:
            logger.info("Delete of %s (not an activation id): nothing to do", physical_id)
            return Result(
                physical_id or "none",
                Outcome.DEACTIVATED,
                note="Nothing to deactivate.",
                quiet=True,
            )
        connector_id = int(match.group(1))
        try:
            connector = self._stack_connector(connector_id, request, deadline)
        except OwnershipError:
            logger.warning("Connector %s lacks this stack's marker: not disabled", connector_id)
            return Result(
                physical_id,
                Outcome.DEACTIVATED,
                connector_id=str(connector_id),
                note="Not disabled: the connector was not created by this stack.",
            )
        if connector is None:
            return Result(
                physical_id,
                Outcome.DEACTIVATED,
                connector_id=str(connector_id),
                note="The connector was already gone from Qualys.",
            )
        if connector.disabled is not True:
            try:
                self._api.update(connector_id, ConnectorChanges(disabled=True), deadline=deadline)
            except QualysNotFoundError:
                # Deleted between the read and the update: nothing left to disable.
                return Result(
                    physical_id,
                    Outcome.DEACTIVATED,
                    connector_name=connector.name,
                    connector_id=str(connector_id),
                    note="The connector was already gone from Qualys.",
                )
            logger.info("Disabled connector %s", connector_id)
        return Result(
            physical_id,
            Outcome.DEACTIVATED,
            connector_name=connector.name,
            connector_id=str(connector_id),
            state="DISABLED",
        )
