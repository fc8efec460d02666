"""The scheme rule: https everywhere, http only to a loopback host."""

from __future__ import annotations

import pytest

from provider.urls import check_url

ACCEPTED = [
    ("https", "https://qualysapi.qg3.apps.qualys.com", "https://qualysapi.qg3.apps.qualys.com"),
    ("trailing slash", "https://qualysapi.qualys.eu/", "https://qualysapi.qualys.eu"),
    ("http localhost", "http://localhost:8080", "http://localhost:8080"),
    ("http 127.0.0.1", "http://127.0.0.1:1234/", "http://127.0.0.1:1234"),
    ("http 127.x", "http://127.8.9.10", "http://127.8.9.10"),
    ("http ::1", "http://[::1]:80", "http://[::1]:80"),
]

REFUSED = [
    ("http elsewhere", "http://qualysapi.qualys.com", "https"),
    ("http private", "http://10.0.0.1", "https"),
    ("http lookalike", "http://127.0.0.1.evil.example", "https"),
    ("ftp", "ftp://qualysapi.qualys.com", "https://"),
    ("no scheme", "qualysapi.qualys.com", "https://"),
    ("empty", "", "https://"),
    ("credentials", "https://user:pw@qualysapi.qualys.com", "credentials"),
    ("query", "https://qualysapi.qualys.com/?x=1", "query"),
]


@pytest.mark.parametrize(("case", "url", "expected"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_urls_are_normalised(case: str, url: str, expected: str) -> None:
    assert check_url(url, what="QUALYS_API_URL") == expected, case


@pytest.mark.parametrize(("case", "url", "words"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_urls_name_the_setting_and_rule(case: str, url: str, words: str) -> None:
    with pytest.raises(ValueError, match="QUALYS_API_URL") as raised:
        check_url(url, what="QUALYS_API_URL")

    assert words in str(raised.value), case
