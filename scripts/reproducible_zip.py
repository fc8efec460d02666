"""Write zip files whose bytes depend only on the files' paths and contents."""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# The earliest time a zip entry can hold; any fixed value makes the archive reproducible.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_UNIX = 3
_REGULAR_FILE = 0o100000


def _mode(arcname: str) -> int:
    # Fixed permissions instead of the checkout's, which depend on the umask.
    return 0o755 if arcname.endswith(".so") or ".so." in arcname else 0o644


def write_zip(target: Path, entries: Iterable[tuple[str, Path]]) -> None:
    """Write ``entries`` (archive name, source file) to ``target``, sorted by archive name.

    Entries get a fixed timestamp and fixed permissions, so the same files give the same
    bytes on every machine and every run. Directory entries are left out (Lambda and CfCT do
    not need them). A duplicate archive name is an error rather than a silent overwrite.
    """
    ordered = sorted(entries, key=lambda entry: entry[0])
    duplicates = sorted(name for name, n in Counter(name for name, _ in ordered).items() if n > 1)
    if duplicates:
        raise ValueError(f"duplicate archive names: {', '.join(duplicates)}")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for arcname, source in ordered:
            info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = _UNIX
            info.external_attr = (_REGULAR_FILE | _mode(arcname)) << 16
            zf.writestr(info, source.read_bytes(), compresslevel=9)
