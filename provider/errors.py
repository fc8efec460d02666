"""The provider's error root: every failure the provider expects is a ProviderError."""

from __future__ import annotations


class ProviderError(Exception):
    """Root of every error the provider raises on purpose.

    ``str(error)`` is the short reason CloudFormation shows: it says what failed and what
    to do, and never contains a secret.
    """


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


class OutOfTimeError(ProviderError):
    """The invocation's time budget ran out before the work was done."""


class ResourceFailedError(ProviderError):
    """A request failed after its resource came to exist in Qualys.

    The FAILED answer must carry the real PhysicalResourceId, so that the rollback Delete
    that CloudFormation sends next finds and removes (or disables) what was made.
    """

    def __init__(
        self, reason: str, *, physical_resource_id: str, connector_name: str | None = None
    ) -> None:
        super().__init__(reason)
        self.physical_resource_id = physical_resource_id
        self.connector_name = connector_name
