"""The shapes of the ids the provider accepts and reads, in ASCII digits only.

Python's ``\\d`` and ``str.isdigit`` also accept Arabic-Indic, superscript and other
Unicode digits, which ``int()`` then reads or refuses; every id check goes through these
patterns instead, in what users send and in what Qualys answers.
"""

from __future__ import annotations

import re
from typing import Final

ACCOUNT_ID: Final = re.compile(r"[0-9]{12}")
"""An AWS account id."""
QUALYS_ID: Final = re.compile(r"[0-9]{1,19}")
"""A Qualys id's digits (a connector, a tag): a positive long, see ``is_qualys_id``."""
MAX_QUALYS_ID: Final = 2**63 - 1


def is_qualys_id(text: str) -> bool:
    """Whether ``text`` names a Qualys object: ASCII digits of a long from 1 up."""
    return QUALYS_ID.fullmatch(text) is not None and 0 < int(text) <= MAX_QUALYS_ID


ACTIVATION_ID: Final = re.compile(r"([0-9]{1,19})/activation")
"""The PhysicalResourceId of a connector's activation."""
