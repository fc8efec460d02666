"""What a failed HTTP request tells about whether it reached the server."""

from __future__ import annotations

import requests
from urllib3.exceptions import NewConnectionError


def never_sent(error: requests.RequestException) -> bool:
    """Whether the request certainly never reached the server, so sending it again cannot
    do anything twice: the connection was refused, its name did not resolve, or it timed
    out before it was open."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if not isinstance(error, requests.ConnectionError) or isinstance(error, requests.Timeout):
        return False
    # requests wraps urllib3's MaxRetryError, whose reason says how the connection failed
    # (NameResolutionError is a NewConnectionError).
    reason = getattr(error.args[0], "reason", error.args[0]) if error.args else None
    return isinstance(reason, NewConnectionError)
