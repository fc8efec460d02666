"""Errors that the simulator turns into Qualys ServiceResponse error envelopes."""

from __future__ import annotations


class ServiceError(Exception):
    """A request Qualys would answer with HTTP 200 and a non-SUCCESS responseCode."""

    def __init__(self, code: str, message: str, *, resolution: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.resolution = resolution


class InvalidRequestError(ServiceError):
    """The request body, a field or a filter is not acceptable (INVALID_REQUEST)."""

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_REQUEST", message)


class ObjectNotFoundError(ServiceError):
    """No connector has the id named in the path (OBJECT_NOT_FOUND)."""

    def __init__(self, connector_id: int) -> None:
        super().__init__(
            "OBJECT_NOT_FOUND", f"Object with id {connector_id} not found or not accessible."
        )
