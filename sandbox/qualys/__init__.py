"""A local stand-in for the Qualys Connector API (AWS connectors), for tests and the demo."""

from __future__ import annotations

from sandbox.qualys.faults import Fault
from sandbox.qualys.models import RecordedRequest, RoleChecker, SimConnector, SyncOutcome
from sandbox.qualys.server import QualysSimulator

__all__ = [
    "Fault",
    "QualysSimulator",
    "RecordedRequest",
    "RoleChecker",
    "SimConnector",
    "SyncOutcome",
]
