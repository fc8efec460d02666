"""What Create, Update and Delete do in Qualys for the two resource types.

Each method takes one parsed request and a deadline, and returns a ``Result`` or raises a
``ProviderError`` whose text is the FAILED reason. Nothing here knows crhelper or Slack.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provider.deadline import Deadline
from provider.errors import (
    ActivationError,
    ConnectorGoneError,
    OwnershipError,
    PropertyError,
    ProviderError,
    ResourceFailedError,
)
from provider.markers import marker, owned_by_resource, owned_by_stack, with_marker
from provider.properties import (
    ActivationProperties,
    ConnectorProperties,
    generate_external_id,
    parse_connector_id,
)
from provider.qualys.errors import (
    QualysError,
    QualysNotFoundError,
    QualysResponseError,
    QualysUnavailableError,
)
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges, Criterion
from provider.slack import Outcome

logger = logging.getLogger(__name__)

CONNECTOR_TYPE = "Custom::QualysConnector"
ACTIVATION_TYPE = "Custom::QualysConnectorActivation"

LOOKUP_RESERVE = 15.0
"""Seconds kept back from a create or delete, to look the connector up if its outcome is
unknown (a timeout or dropped connection) instead of answering blind."""

_ACCOUNT_ID = re.compile(r"\d{12}")
_ACTIVATION_ID = re.compile(r"(\d{1,19})/activation")
_UNKNOWN_OUTCOME = (QualysUnavailableError, QualysResponseError)
"""Errors after which a write may or may not have happened (timeouts are unavailability)."""


class ConnectorApi(Protocol):
    """The Qualys operations the lifecycle needs (``QualysClient`` provides them)."""

    @property
    def api_version(self) -> ApiVersion: ...

    def create(self, changes: ConnectorChanges, *, deadline: Deadline) -> Connector: ...

    def get(self, connector_id: int, *, deadline: Deadline) -> Connector: ...

    def search(
        self, criteria: Sequence[Criterion], *, deadline: Deadline, page_size: int = 100
    ) -> list[Connector]: ...

    def update(
        self, connector_id: int, changes: ConnectorChanges, *, deadline: Deadline
    ) -> None: ...

    def delete(self, connector_id: int, *, deadline: Deadline) -> None: ...


@dataclass(frozen=True)
class Request:
    """One custom resource event, reduced to what the lifecycle reads."""

    request_type: str
    request_id: str
    stack_id: str
    logical_resource_id: str
    resource_type: str
    physical_resource_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    old_properties: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        """The fields of a CloudFormation custom resource event."""
        return cls(
            request_type=str(event["RequestType"]),
            request_id=str(event["RequestId"]),
            stack_id=str(event["StackId"]),
            logical_resource_id=str(event["LogicalResourceId"]),
            resource_type=str(event.get("ResourceType", "")),
            physical_resource_id=event.get("PhysicalResourceId"),
            properties=event.get("ResourceProperties") or {},
            old_properties=event.get("OldResourceProperties") or {},
        )

    @property
    def connector_name(self) -> str | None:
        """The ConnectorName property as sent, for messages about any outcome."""
        name = self.properties.get("ConnectorName")
        return name if isinstance(name, str) and name else None


@dataclass(frozen=True)
class Result:
    """A successful outcome: the answer to CloudFormation and the facts for Slack."""

    physical_resource_id: str
    outcome: Outcome
    data: Mapping[str, str] = field(default_factory=dict)
    connector_name: str | None = None
    connector_id: str | None = None
    state: str | None = None
    note: str | None = None


def _connector_data(
    connector: Connector, name: str, external_id: str, account: str
) -> dict[str, str]:
    return {
        "ConnectorId": str(connector.id),
        "ConnectorName": name,
        "ExternalId": external_id,
        "QualysAwsAccountId": account,
    }


class ConnectorResource:
    """``Custom::QualysConnector``: the connector itself, created disabled."""

    def __init__(self, api: ConnectorApi, *, fallback_qualys_account_id: str | None) -> None:
        self._api = api
        self._fallback_account = fallback_qualys_account_id

    # --- Create -----------------------------------------------------------------------

    def create(self, request: Request, deadline: Deadline) -> Result:
        """Create the connector disabled, or find the one an earlier delivery created."""
        props = ConnectorProperties.parse(request.properties)
        self._warn_if_run_frequency_ignored(props)
        work = deadline.shortened(LOOKUP_RESERVE)

        connector = self._find_own(props.connector_name, request, work)
        if connector is not None:
            logger.info("Create delivered again: connector %s already exists", connector.id)
        else:
            connector = self._create(props, request, work=work, deadline=deadline)

        try:
            connector = self._complete(connector, deadline)
            account = self._trusted_account(connector)
            if not connector.external_id:
                raise QualysResponseError("Qualys reported the connector without its externalId")
        except ProviderError as error:
            raise ResourceFailedError(str(error), physical_resource_id=str(connector.id)) from error

        return Result(
            physical_resource_id=str(connector.id),
            outcome=Outcome.CREATED,
            data=_connector_data(connector, props.connector_name, connector.external_id, account),
            connector_name=props.connector_name,
            connector_id=str(connector.id),
            state=connector.state,
        )

    def _create(
        self, props: ConnectorProperties, request: Request, *, work: Deadline, deadline: Deadline
    ) -> Connector:
        changes = ConnectorChanges(
            name=props.connector_name,
            description=with_marker(
                props.description, marker(request.stack_id, request.logical_resource_id)
            ),
            external_id=props.external_id or generate_external_id(),
            all_regions=props.all_regions,
            regions=props.regions or None,
            disabled=True,
            activation_modules=props.activation_modules,
            default_tag_ids=props.default_tag_ids,
            run_frequency=props.run_frequency_minutes,
        )
        try:
            created = self._api.create(changes, deadline=work)
        except _UNKNOWN_OUTCOME as error:
            logger.warning("Outcome of create unknown (%s); looking it up", type(error).__name__)
            try:
                found = self._find_own(props.connector_name, request, deadline)
            except QualysError:
                logger.warning("The look-up after an unknown create failed too")
                raise error from None
            if found is None:
                raise
            logger.info("The create had gone through: connector %s", found.id)
            return found
        logger.info("Created connector %s (disabled)", created.id)
        if created.external_id is None:
            # Qualys echoes the connector; if it left fields out, the ones sent stand.
            return dataclasses.replace(created, external_id=changes.external_id)
        return created

    def _own_connectors(self, name: str, request: Request, deadline: Deadline) -> list[Connector]:
        """The connectors this resource created, by name and marker (never by name alone),
        oldest first."""
        candidates = self._api.search([Criterion.equals("name", name)], deadline=deadline)
        return sorted(
            (
                c
                for c in candidates
                if owned_by_resource(c, request.stack_id, request.logical_resource_id)
            ),
            key=lambda c: c.id,
        )

    def _find_own(self, name: str, request: Request, deadline: Deadline) -> Connector | None:
        """The connector this resource created, if any."""
        own = self._own_connectors(name, request, deadline)
        if len(own) > 1:
            logger.warning(
                "%d connectors carry this resource's marker; using %s", len(own), own[0].id
            )
        return own[0] if own else None

    def _complete(self, connector: Connector, deadline: Deadline) -> Connector:
        """Read the connector again if the answer at hand lacks what the attributes need."""
        if connector.qualys_aws_account_id and connector.external_id:
            return connector
        read = self._api.get(connector.id, deadline=deadline)
        return dataclasses.replace(read, external_id=read.external_id or connector.external_id)

    def _trusted_account(self, connector: Connector) -> str:
        reported = connector.qualys_aws_account_id
        if reported is not None and not _ACCOUNT_ID.fullmatch(reported):
            raise QualysResponseError(f"Qualys reported an invalid qualysAwsAccountId {reported!r}")
        if reported and self._fallback_account and reported != self._fallback_account:
            logger.warning(
                "Qualys reports account %s to trust, not QUALYS_AWS_ACCOUNT_ID %s; using %s",
                reported,
                self._fallback_account,
                reported,
            )
        account = reported or self._fallback_account
        if account is None:
            raise ProviderError(
                "Qualys did not report the AWS account to trust: set QUALYS_AWS_ACCOUNT_ID"
            )
        return account

    def _warn_if_run_frequency_ignored(self, props: ConnectorProperties) -> None:
        if props.run_frequency_given and self._api.api_version is ApiVersion.V2:
            logger.warning("RunFrequencyMinutes is ignored on Qualys API 2.0")

    # --- Update -----------------------------------------------------------------------

    def update(self, request: Request, deadline: Deadline) -> Result:
        """Change the connector in place; its role, state and external ID stay."""
        connector_id = parse_connector_id(request.physical_resource_id, name="PhysicalResourceId")
        props = ConnectorProperties.parse(request.properties)
        self._warn_if_run_frequency_ignored(props)
        connector = self._own_connector(connector_id, request, deadline)

        new_external_id = (
            props.external_id
            if props.external_id is not None and props.external_id != connector.external_id
            else None
        )
        changes = ConnectorChanges(
            name=props.connector_name,
            description=with_marker(
                props.description, marker(request.stack_id, request.logical_resource_id)
            ),
            external_id=new_external_id,
            all_regions=props.all_regions,
            regions=props.regions or None,
            activation_modules=props.activation_modules,
            default_tag_ids=props.default_tag_ids,
            run_frequency=props.run_frequency_minutes,
        )
        self._api.update(connector_id, changes, deadline=deadline)
        logger.info("Updated connector %s", connector_id)

        external_id = new_external_id or connector.external_id
        if not external_id:
            raise QualysResponseError("Qualys reported the connector without its externalId")
        return Result(
            physical_resource_id=str(connector_id),
            outcome=Outcome.UPDATED,
            data=_connector_data(
                connector, props.connector_name, external_id, self._trusted_account(connector)
            ),
            connector_name=props.connector_name,
            connector_id=str(connector_id),
            state=connector.state,
        )

    def _own_connector(self, connector_id: int, request: Request, deadline: Deadline) -> Connector:
        try:
            connector = self._api.get(connector_id, deadline=deadline)
        except QualysNotFoundError:
            raise ConnectorGoneError(
                f"Connector {connector_id} no longer exists in Qualys (deleted outside"
                " CloudFormation): recreate the resource under a new logical id"
            ) from None
        if not owned_by_resource(connector, request.stack_id, request.logical_resource_id):
            raise OwnershipError(
                f"Connector {connector_id} was not created by this stack resource;"
                " it is left untouched"
            )
        return connector

    # --- Delete -----------------------------------------------------------------------

    def delete(self, request: Request, deadline: Deadline) -> Result:
        """Delete the connector this resource created; anything else answers SUCCESS."""
        physical_id = request.physical_resource_id or ""
        name = request.connector_name
        try:
            connector_id = parse_connector_id(physical_id)
        except PropertyError:
            return self._delete_after_failed_create(request, deadline)

        try:
            connector = self._api.get(connector_id, deadline=deadline)
        except QualysNotFoundError:
            logger.info("Connector %s is already gone", connector_id)
            return Result(
                physical_id,
                Outcome.DELETED,
                connector_name=name,
                connector_id=physical_id,
                note="It was already gone from Qualys.",
            )
        if not owned_by_resource(connector, request.stack_id, request.logical_resource_id):
            logger.warning("Connector %s lacks this resource's marker: not deleted", connector_id)
            return Result(
                physical_id,
                Outcome.DELETED,
                connector_name=connector.name,
                connector_id=physical_id,
                state=connector.state,
                note="Not deleted: the connector was not created by this stack.",
            )

        self._delete(connector_id, deadline)
        return Result(
            physical_id,
            Outcome.DELETED,
            connector_name=connector.name,
            connector_id=physical_id,
            state="DELETED",
        )

    def _delete(self, connector_id: int, deadline: Deadline) -> None:
        try:
            self._api.delete(connector_id, deadline=deadline.shortened(LOOKUP_RESERVE))
        except QualysNotFoundError:
            return
        except _UNKNOWN_OUTCOME as error:
            logger.warning("Outcome of delete unknown (%s); looking it up", type(error).__name__)
            try:
                self._api.get(connector_id, deadline=deadline)
            except QualysNotFoundError:
                return
            # Still there: the first delete did not happen, so asking again is not blind.
            try:
                self._api.delete(connector_id, deadline=deadline)
            except QualysNotFoundError:
                return
        logger.info("Deleted connector %s", connector_id)

    def _delete_after_failed_create(self, request: Request, deadline: Deadline) -> Result:
        """The id is crhelper's (after a failed Create) or one CloudFormation made up.

        No connector has that id. One that this resource created can still exist if the
        Create's outcome was unknown when it answered: remove that one, and nothing else.
        """
        physical_id = request.physical_resource_id or "none"
        name = request.connector_name
        removed: list[str] = []
        if name is not None:
            try:
                own = self._own_connectors(name, request, deadline)
            except ProviderError as error:
                # Answering FAILED would leave the stack stuck over a connector that, in
                # all but a timed-out Create, was never made.
                logger.warning("Could not look for a leftover connector: %s", error)
                return Result(
                    physical_id,
                    Outcome.DELETED,
                    connector_name=name,
                    note=f"Could not check Qualys for a leftover connector: {error}"[:190],
                )
            for connector in own:
                self._delete(connector.id, deadline)
                removed.append(str(connector.id))
        logger.info("Delete of %s (not a Qualys id): removed %s", physical_id, removed or "nothing")
        return Result(
            physical_id,
            Outcome.DELETED,
            connector_name=name,
            connector_id=", ".join(removed) or None,
            note=None if removed else "Nothing to delete: the connector had not been created.",
        )


class ActivationResource:
    """``Custom::QualysConnectorActivation``: the role set on the connector, enabled."""

    def __init__(
        self,
        api: ConnectorApi,
        *,
        max_wait: float = 120.0,
        first_delay: float = 2.0,
        max_delay: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = api
        self._max_wait = max_wait
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._sleep = sleep

    def apply(self, request: Request, deadline: Deadline) -> Result:
        """Create and Update: set the role and enable the connector."""
        props = ActivationProperties.parse(request.properties)
        physical_id = f"{props.connector_id}/activation"
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
            raise ResourceFailedError(
                str(error),
                physical_resource_id=failed_id or request.physical_resource_id or physical_id,
                connector_name=name,
            ) from error
        return Result(
            physical_resource_id=physical_id,
            outcome=Outcome.ACTIVATED,
            data={"ConnectorState": connector.state or "UNKNOWN"},
            connector_name=connector.name,
            connector_id=str(props.connector_id),
            state=connector.state,
        )

    def _activate(self, props: ActivationProperties, deadline: Deadline) -> Connector:
        budget = deadline.capped(self._max_wait)
        delay = self._first_delay
        changes = ConnectorChanges(arn=props.role_arn, disabled=False)
        while True:
            self._api.update(props.connector_id, changes, deadline=deadline)
            connector = self._api.get(props.connector_id, deadline=deadline)
            if connector.state != "ERROR":
                logger.info("Connector %s enabled: %s", connector.id, connector.state)
                return connector
            if not budget.allows(delay):
                raise ActivationError(
                    f"Qualys cannot use role for connector {connector.id}:"
                    f" {_short(connector.last_error)}. Check the role's trust policy"
                )
            # A role minutes old may not be assumable yet (IAM is eventually consistent).
            logger.info(
                "Connector %s is in ERROR (%s); applying again in %.0fs",
                connector.id,
                _short(connector.last_error),
                delay,
            )
            self._sleep(delay)
            delay = min(delay * 2, self._max_delay)

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

    def delete(self, request: Request, deadline: Deadline) -> Result:
        """Disable the connector, so Qualys stops using a role about to be deleted."""
        physical_id = request.physical_resource_id or ""
        match = _ACTIVATION_ID.fullmatch(physical_id)
        if match is None:
            logger.info("Delete of %s (not an activation id): nothing to do", physical_id)
            return Result(physical_id, Outcome.DEACTIVATED, note="Nothing to deactivate.")
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
            self._api.update(connector_id, ConnectorChanges(disabled=True), deadline=deadline)
            logger.info("Disabled connector %s", connector_id)
        return Result(
            physical_id,
            Outcome.DEACTIVATED,
            connector_name=connector.name,
            connector_id=str(connector_id),
            state="DISABLED",
        )


def _short(text: str | None, limit: int = 90) -> str:
    if not text:
        return "no error given"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
