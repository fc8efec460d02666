"""The two resource types' lifecycles, and the table that routes each request to one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from provider.deadline import Deadline
from provider.errors import UnsupportedRequestError
from provider.lifecycle.activation import ActivationPolicy, ActivationResource
from provider.lifecycle.connector import LOOKUP_RESERVE, ConnectorResource
from provider.lifecycle.model import (
    ACTIVATION_TYPE,
    CONNECTOR_TYPE,
    ConnectorApi,
    Outcome,
    Request,
    Result,
)

__all__ = [
    "ACTIVATION_TYPE",
    "CONNECTOR_TYPE",
    "LOOKUP_RESERVE",
    "ActivationPolicy",
    "ActivationResource",
    "ConnectorApi",
    "ConnectorResource",
    "Lifecycle",
    "Outcome",
    "Request",
    "Result",
]

logger = logging.getLogger(__name__)

Route = Callable[[Request, Deadline], Result]


class Lifecycle:
    """Both resource types over one Qualys API, and the ``(type, request) -> method`` table."""

    def __init__(
        self,
        api: ConnectorApi,
        *,
        fallback_qualys_account_id: str | None,
        activation: ActivationPolicy | None = None,
        lookup_reserve: float = LOOKUP_RESERVE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        connector = ConnectorResource(
            api,
            fallback_qualys_account_id=fallback_qualys_account_id,
            lookup_reserve=lookup_reserve,
        )
        activate = ActivationResource(api, policy=activation, sleep=sleep)
        self.routes: Mapping[tuple[str, str], Route] = {
            (CONNECTOR_TYPE, "Create"): connector.create,
            (CONNECTOR_TYPE, "Update"): connector.update,
            (CONNECTOR_TYPE, "Delete"): connector.delete,
            (ACTIVATION_TYPE, "Create"): activate.create,
            (ACTIVATION_TYPE, "Update"): activate.update,
            (ACTIVATION_TYPE, "Delete"): activate.delete,
        }

    def handle(self, request: Request, deadline: Deadline) -> Result:
        """Run the request's method, or refuse what no row of the table names."""
        kind, action = request.resource_type, request.request_type
        route = self.routes.get((kind, action))
        if route is not None:
            return route(request, deadline)
        if kind not in (CONNECTOR_TYPE, ACTIVATION_TYPE):
            if action == "Delete":
                # A stack must always be deletable, whatever it was given.
                logger.warning("Delete of unsupported ResourceType %r: nothing to do", kind)
                return Result(request.physical_resource_id or "none", Outcome.DELETED)
            raise UnsupportedRequestError(
                f"Unsupported ResourceType {kind[:60]!r}: use {CONNECTOR_TYPE} or {ACTIVATION_TYPE}"
            )
        raise UnsupportedRequestError(
            f"Unsupported RequestType {action[:20]!r}: expected Create, Update or Delete"
        )
