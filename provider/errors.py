"""The provider's error root: every failure the provider expects is a ProviderError."""

from __future__ import annotations

from typing import Self


class ProviderError(Exception):
    """Root of every error the provider raises on purpose.

    ``str(error)`` is the short reason CloudFormation shows: it says what failed and what
    to do, and never contains a secret. A request that fails after its resource came to
    exist in Qualys names that resource (``physical_resource_id``, ``connector_name``), so
    the FAILED answer carries the real id and the rollback Delete finds what was made; the
    lifecycle sets these facts on the error it catches and raises it again, so the error
    keeps its kind.
    """

    physical_resource_id: str | None = None
    connector_name: str | None = None

    def concerning(
        self, *, physical_resource_id: str | None, connector_name: str | None = None
    ) -> Self:
        """Record which resource the failure concerns; facts set earlier are kept."""
        if self.physical_resource_id is None:
            self.physical_resource_id = physical_resource_id
        if self.connector_name is None:
            self.connector_name = connector_name
        return self


class ConfigurationError(ProviderError):
    """An environment variable of the provider function is missing or invalid."""


class PropertyError(ProviderError):
    """A resource property breaks its rule; raised before any call to Qualys."""

    def __init__(self, name: str, rule: str) -> None:
        super().__init__(f"Property {name} {rule}")
        self.property_name = name
        self.rule = rule


class SecretError(ProviderError):
    """A Secrets Manager secret cannot be read or does not have the documented format."""


class OwnershipError(ProviderError):
    """The connector does not carry this stack's marker, so the provider must not touch it."""


class ConnectorGoneError(ProviderError):
    """The connector a resource refers to no longer exists in Qualys."""


class ActivationError(ProviderError):
    """Qualys did not accept the role: the connector stayed in ERROR within the time budget."""


class UnsupportedRequestError(ProviderError):
    """The event names a ResourceType or RequestType this provider does not handle."""
