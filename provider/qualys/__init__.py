"""Client for the Qualys Connector API (QPS REST 2.0 and 3.0, AWS connectors)."""

from provider.qualys.auth import Credentials, StaticCredentials
from provider.qualys.client import QualysClient, RetryPolicy
from provider.qualys.models import ApiVersion, Connector, ConnectorChanges, Criterion, Operator

__all__ = [
    "ApiVersion",
    "Connector",
    "ConnectorChanges",
    "Credentials",
    "Criterion",
    "Operator",
    "QualysClient",
    "RetryPolicy",
    "StaticCredentials",
]
