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
"""A Qualys id (a connector, a tag): a positive long."""
ACTIVATION_ID: Final = re.compile(r"([0-9]{1,19})/activation")
"""The PhysicalResourceId of a connector's activation."""
