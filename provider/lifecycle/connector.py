"""``Custom::QualysConnector``: Create, Update and Delete of the Qualys connector itself."""

from __future__ import annotations

import dataclasses
import logging
from typing import Final

from provider.deadline import Deadline
from provider.errors import ConnectorGoneError, OwnershipError, PropertyError, ProviderError
from provider.ids import ACCOUNT_ID
from provider.lifecycle.model import RESPONSE_LIMIT, ConnectorApi, Outcome, Request, Result
from provider.markers import leading_marker, marker, owned_by_resource, with_marker
from provider.properties import (
    EXTERNAL_ID_DIGITS,
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
from provider.text import shorten

logger = logging.getLogger(__name__)

LOOKUP_RESERVE: Final = 30.0
"""Seconds kept back from a create or delete, to look the connector up if its outcome is
unknown (a timeout or dropped connection) instead of answering blind: one slow call (a real
search took 17 s). With less time left, half of it is kept (``Deadline.reserving``)."""

COMMERCIAL_QUALYS_ACCOUNT: Final = "805950163170"
"""The AWS account Qualys assumes roles from on every commercial platform observed."""
_ACCOUNT_TYPES: Final = {"aws-us-gov": "GovCloud", "aws-cn": "China"}
"""Partitions whose connectors Qualys must create as another account type than Global."""
_UNKNOWN_OUTCOME = (QualysUnavailableError, QualysResponseError)
"""Errors after which a write may or may not have happened (timeouts are unavailability)."""


def connector_changes(
    props: ConnectorProperties,
    request: Request,
    *,
    external_id: str | None,
    creating: bool = False,
) -> ConnectorChanges:
    """What Create and Update write: the properties, the marker before the description, and
    at Create the account type of the stack's partition, with the connector disabled."""
    partition = request.stack.partition
    return ConnectorChanges(
        name=props.connector_name,
        description=with_marker(
            props.description, marker(request.stack_id, request.logical_resource_id)
        ),
        external_id=external_id,
        arn=props.role_arn,
        all_regions=props.all_regions,
        regions=props.regions or None,
        disabled=True if creating else None,
        activation_modules=props.activation_modules,
        default_tag_ids=props.default_tag_ids,
        run_frequency=props.run_frequency_minutes,
        # Apps name the role as their identifier: without the role, Qualys's default (AI).
        applications=props.applications if props.role_arn is not None else None,
        gov_cloud=True if creating and partition == "aws-us-gov" else None,
        china=True if creating and partition == "aws-cn" else None,
    )


def _check_answer_fits(props: ConnectorProperties, request: Request) -> None:
    """Refuse, before anything reaches Qualys, names and external IDs whose attributes
    would make an answer CloudFormation rejects."""
    longest = _connector_data(
        Connector(id=9_999_999_999_999_999_999),
        props.connector_name,
        props.external_id or "9" * EXTERNAL_ID_DIGITS,
        "0" * 12,
    )
    size = request.answer_size(longest, physical_resource_id="9" * 19)
    if size > RESPONSE_LIMIT:
        raise PropertyError(
            "ConnectorName",
            f"and ExternalId make an answer of {size} bytes, over CloudFormation's"
            f" {RESPONSE_LIMIT}: shorten them (characters outside ASCII count up to 12 bytes)",
        )


def _connector_data(
    connector: Connector, name: str, external_id: str, account: str
) -> dict[str, str]:
    return {
        "ConnectorId": str(connector.id),
        "ConnectorName": name,
        "ExternalId": external_id,
        "QualysAwsAccountId": account,
    }


def _role_in_account(arn: str | None, account_id: str) -> bool:
    """Whether ``arn`` is an IAM role in ``account_id``."""
    parts = (arn or "").split(":", 5)
    return (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[2] == "iam"
        and ACCOUNT_ID.fullmatch(parts[4]) is not None
        and parts[4] == account_id
        and parts[5].startswith("role/")
    )


class ConnectorResource:
    """``Custom::QualysConnector``: the connector itself, created disabled."""

    def __init__(
        self,
        api: ConnectorApi,
        *,
        fallback_qualys_account_id: str | None,
        lookup_reserve: float = LOOKUP_RESERVE,
    ) -> None:
        self._api = api
        self._fallback_account = fallback_qualys_account_id
        self._lookup_reserve = lookup_reserve

    # --- Create -----------------------------------------------------------------------

    def create(self, request: Request, deadline: Deadline) -> Result:
        """Create the connector disabled; when deliveries of the same Create raced (or one
        came again), every delivery answers with the oldest connector and no other stays.

        Create first, then look: each delivery's look-up comes after its own create, so
        every delivery sees the oldest of this resource's connectors (the first created,
        lowest id) and agrees on it. Looking first could not stop two deliveries that look
        at the same moment, and the look-up afterwards is also what finds a create whose
        answer was lost.
        """
        props = ConnectorProperties.parse(request.properties)
        _check_answer_fits(props, request)
        self._warn_if_run_frequency_ignored(props)
        connector, warning = self._create(props, request, deadline)

        try:
            connector = self._complete(connector, deadline)
            account = self._trusted_account(connector, request)
            if not connector.external_id:
                raise QualysResponseError("Qualys reported the connector without its externalId")
        except ProviderError as error:
            error.concerning(physical_resource_id=str(connector.id))
            raise

        return Result(
            physical_resource_id=str(connector.id),
            outcome=Outcome.CREATED,
            data=_connector_data(connector, props.connector_name, connector.external_id, account),
            connector_name=props.connector_name,
            connector_id=str(connector.id),
            state=connector.state,
            warning=warning,
        )

    def _create(
        self, props: ConnectorProperties, request: Request, deadline: Deadline
    ) -> tuple[Connector, str | None]:
        """This resource's one connector, and a warning if a duplicate could not be removed."""
        changes = connector_changes(
            props, request, external_id=props.external_id or generate_external_id(), creating=True
        )
        created: Connector | None = None
        unknown: QualysError | None = None
        try:
            created = self._api.create(changes, deadline=deadline.reserving(self._lookup_reserve))
        except _UNKNOWN_OUTCOME as error:
            logger.warning("Outcome of create unknown (%s); looking it up", type(error).__name__)
            unknown = error
        else:
            logger.info("Created connector %s (disabled)", created.id)
            if created.external_id is None:
                # Qualys echoes the connector; if it left fields out, the ones sent stand.
                created = dataclasses.replace(created, external_id=changes.external_id)

        try:
            own = self._own_connectors(props.connector_name, request, deadline)
        except QualysError:
            if unknown is not None:
                logger.warning("The look-up after an unknown create failed too")
                raise unknown from None
            assert created is not None
            logger.warning("Could not look for a concurrent delivery's connector")
            return created, None
        if created is not None and all(c.id != created.id for c in own):
            own = sorted([*own, created], key=lambda c: c.id)  # not yet in Qualys's search
        if not own:
            assert unknown is not None
            raise unknown
        oldest, *duplicates = own
        if created is None:
            logger.info("The create had gone through: connector %s", oldest.id)
        elif oldest.id != created.id:
            logger.info("Connector %s was made first by another delivery: using it", oldest.id)
        return oldest, self._remove_duplicates(duplicates, deadline)

    def _remove_duplicates(self, duplicates: list[Connector], deadline: Deadline) -> str | None:
        """Delete the connectors that racing deliveries made after the oldest; best effort,
        since the Create itself has its connector."""
        left: list[str] = []
        for duplicate in duplicates:
            logger.warning("Deleting connector %s, a duplicate of a racing delivery", duplicate.id)
            try:
                self._delete(duplicate.id, deadline)
            except QualysError as error:
                logger.warning("Could not delete duplicate %s: %s", duplicate.id, error)
                left.append(str(duplicate.id))
        if not left:
            return None
        return shorten(
            f"Duplicate connector {', '.join(left)} from a repeated delivery could not be"
            " deleted: delete it in Qualys",
            190,
        )

    def _own_connectors(self, name: str, request: Request, deadline: Deadline) -> list[Connector]:
        """The connectors this resource created, by name and marker (never by name alone),
        oldest first."""
        candidates = self._api.search([Criterion.equals("name", name)], deadline=deadline)
        return sorted(
            (
                c
                for c in candidates
                if c.name == name
                and owned_by_resource(c, request.stack_id, request.logical_resource_id)
            ),
            key=lambda c: c.id,
        )

    def _complete(self, connector: Connector, deadline: Deadline) -> Connector:
        """Read the connector again if the answer at hand lacks what the attributes need."""
        if connector.qualys_aws_account_id and connector.external_id:
            return connector
        read = self._api.get(connector.id, deadline=deadline)
        return dataclasses.replace(read, external_id=read.external_id or connector.external_id)

    def _trusted_account(self, connector: Connector, request: Request) -> str:
        reported = connector.qualys_aws_account_id
        if reported is not None and not ACCOUNT_ID.fullmatch(reported):
            raise QualysResponseError(f"Qualys reported an invalid qualysAwsAccountId {reported!r}")
        partition = request.stack.partition
        account_type = _ACCOUNT_TYPES.get(partition)
        if account_type is not None and reported == COMMERCIAL_QUALYS_ACCOUNT:
            raise ProviderError(
                f"Qualys reported its commercial AWS account for a connector in {partition}:"
                f" check that the subscription supports {account_type} accounts"
            )
        if reported and self._fallback_account and reported != self._fallback_account:
            logger.warning(
                "Qualys reports account %s to trust, not QUALYS_AWS_ACCOUNT_ID %s; using %s",
                reported,
                self._fallback_account,
                reported,
            )
        account = reported or self._fallback_account
        if account is None:
            which = f" to Qualys's {account_type} account" if account_type else ""
            raise ProviderError(
                f"Qualys did not report the AWS account to trust: set QUALYS_AWS_ACCOUNT_ID{which}"
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
        _check_answer_fits(props, request)
        self._warn_if_run_frequency_ignored(props)
        connector = self._own_connector(connector_id, request, deadline)

        new_external_id = (
            props.external_id
            if props.external_id is not None and props.external_id != connector.external_id
            else None
        )
        external_id = new_external_id or connector.external_id
        if not external_id:
            raise QualysResponseError("Qualys reported the connector without its externalId")
        # Checked before the write, so an Update that must fail changes nothing.
        account = self._trusted_account(connector, request)

        changes = connector_changes(props, request, external_id=new_external_id)
        self._api.update(connector_id, changes, deadline=deadline)
        logger.info("Updated connector %s", connector_id)
        return Result(
            physical_resource_id=str(connector_id),
            outcome=Outcome.UPDATED,
            data=_connector_data(connector, props.connector_name, external_id, account),
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
            # Qualys answers the same for a connector outside the API user's scope.
            logger.warning(
                "Connector %s was not found: gone, or out of the user's scope", connector_id
            )
            return Result(
                physical_id,
                Outcome.DELETED,
                connector_name=name,
                connector_id=physical_id,
                warning=(
                    "Qualys did not find the connector: it was deleted already, or the API"
                    " user's scope hides it. If hidden, delete it in Qualys."
                ),
            )
        warning = None
        if not owned_by_resource(connector, request.stack_id, request.logical_resource_id):
            marker_edited_away = leading_marker(connector) is None
            if not (
                marker_edited_away and _role_in_account(connector.arn, request.stack.account_id)
            ):
                logger.warning(
                    "Connector %s lacks this resource's marker: not deleted", connector_id
                )
                return Result(
                    physical_id,
                    Outcome.DELETED,
                    connector_name=connector.name,
                    connector_id=physical_id,
                    state=connector.state,
                    note="Not deleted: the connector was not created by this stack.",
                )
            # The id is this resource's own and the role is in this stack's account: the
            # marker was edited away in Qualys, and leaving the connector would orphan it.
            logger.warning("Connector %s lost its marker; deleting it by id and role", connector_id)
            warning = (
                "The connector's ownership marker was gone from its description (edited in"
                " Qualys?); it was deleted because its id and role are this stack's."
            )

        self._delete(connector_id, deadline)
        return Result(
            physical_id,
            Outcome.DELETED,
            connector_name=connector.name,
            connector_id=physical_id,
            state="DELETED",
            warning=warning,
        )

    def _delete(self, connector_id: int, deadline: Deadline) -> None:
        """Delete a connector just read; answer only when it is certainly gone."""
        try:
            self._api.delete(connector_id, deadline=deadline.reserving(self._lookup_reserve))
        except QualysNotFoundError:
            self._confirm_gone(connector_id, deadline)
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
                self._confirm_gone(connector_id, deadline)
                return
        logger.info("Deleted connector %s", connector_id)

    def _confirm_gone(self, connector_id: int, deadline: Deadline) -> None:
        """A delete answered "no such connector" for one read a moment ago: gone meanwhile,
        or an answer that cannot be trusted, which must not end in a silent orphan."""
        try:
            self._api.get(connector_id, deadline=deadline)
        except QualysNotFoundError:
            return
        raise QualysResponseError(
            f"Qualys answered that connector {connector_id} does not exist, yet still shows it:"
            " delete again"
        )

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
                    note=shorten(f"Could not check Qualys for a leftover connector: {error}", 190),
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
            quiet=not removed,
        )
