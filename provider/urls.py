"""The scheme rule for every URL the provider sends credentials or messages to."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or an address in 127.0.0.0/8 or ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, what: str) -> str:
    """Return ``url`` without a trailing slash if it is ``https``, or ``http`` to loopback.

    Raises ``ValueError`` naming ``what`` and the rule otherwise. Credentials in the URL
    itself are refused too: they would end up in logs and error messages.
    """
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in {"https", "http"} or not host:
        msg = f"{what} must be an https:// URL with a host"
        raise ValueError(msg)
    if parts.scheme == "http" and not is_loopback_host(host):
        msg = f"{what} must use https (http is allowed only to a loopback host)"
        raise ValueError(msg)
    if parts.username or parts.password:
        msg = f"{what} must not contain credentials"
        raise ValueError(msg)
    if parts.query or parts.fragment:
        msg = f"{what} must not have a query or fragment"
        raise ValueError(msg)
    return url.strip().rstrip("/")
