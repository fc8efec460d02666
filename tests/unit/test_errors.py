"""The error root: the facts a failure carries about its resource, and its kind kept."""

from __future__ import annotations

import pytest

from provider.errors import ProviderError
from provider.qualys.errors import QualysAuthenticationError


def _activate() -> None:
    """What the lifecycle does: catch, name the resource, raise the same error again."""
    try:
        raise QualysAuthenticationError("Qualys rejected the credentials", status=401)
    except ProviderError as caught:
        caught.concerning(physical_resource_id="42/activation", connector_name="aws-1")
        raise


def test_an_error_names_its_resource_and_keeps_its_kind() -> None:
    with pytest.raises(QualysAuthenticationError) as raised:
        _activate()

    assert (raised.value.physical_resource_id, raised.value.connector_name) == (
        "42/activation",
        "aws-1",
    )
    assert raised.value.status == 401


def test_the_first_resource_named_stands() -> None:
    error = ProviderError("failed").concerning(physical_resource_id="42")

    error.concerning(physical_resource_id="43", connector_name="aws-1")

    assert (error.physical_resource_id, error.connector_name) == ("42", "aws-1")


def test_a_fresh_error_names_no_resource() -> None:
    error = ProviderError("Property ConnectorName is required")

    assert (error.physical_resource_id, error.connector_name) == (None, None)
