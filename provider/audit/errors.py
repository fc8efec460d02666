"""Errors of the fleet audit: each one means the audit itself could not run (exit 2)."""

from __future__ import annotations

from provider.errors import ProviderError


class AuditError(ProviderError):
    """The audit could not run; ``str(error)`` is one line naming what failed."""


class AccountsFileError(AuditError):
    """An accounts file (or S3 object) is unreadable or breaks the documented format."""


class OrganizationsError(AuditError):
    """AWS Organizations could not be read, or an ``--ou`` names no OU."""
