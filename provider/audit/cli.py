"""``python -m provider.audit``: compare the organisation's accounts with Qualys's connectors.

Exit status 0 when everything is ok, 1 when anything is not, 2 when the audit could not run
(one line on stderr says what failed). rich draws the table and the progress, and is
imported only for that: the Lambda function, which shares everything else, never needs it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from provider.audit import report
from provider.audit.accounts import Organizations, read_accounts_file
from provider.audit.classify import Account, Audit, Status
from provider.audit.fleet import (
    PAGE_SIZE,
    Deletion,
    deletable,
    delete_orphans,
    qualys_client,
    run_audit,
)
from provider.config import Settings
from provider.credentials import SecretStore
from provider.deadline import Deadline
from provider.errors import ProviderError
from provider.qualys.client import RetryPolicy

logger = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_NOT_OK: Final = 1
EXIT_FAILED: Final = 2
PIPE_WIDTH: Final = 160
"""Table width when stdout is not a terminal and COLUMNS is unset: wide enough to read."""

_EPILOG = """\
environment:
  QUALYS_API_URL, QUALYS_API_VERSION (3.0 or 2.0), QUALYS_CREDENTIALS_SECRET_ID (a Secrets
  Manager secret {"username", "password"}), and boto3's usual AWS settings.

exit status:
  0 everything is ok, 1 anything is not (missing, orphaned, duplicate, unhealthy, foreign),
  2 the audit could not run (credentials, Qualys, Organizations, the account list).
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m provider.audit``."""
    parser = argparse.ArgumentParser(
        prog="python -m provider.audit",
        description="Compare the organisation's AWS accounts with the Qualys AWS connectors:"
        " every connector is ok, duplicate, orphaned, unhealthy or foreign, and every ACTIVE"
        " account without a connector of this project is missing.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--ou",
        action="append",
        metavar="OU",
        help="only accounts in this OU or its children can be missing (repeatable): an OU id"
        " (ou-...), a name path from the root as CfCT writes it (Parent:Child), or Root;"
        " connectors are still judged against the whole organisation",
    )
    source.add_argument(
        "--accounts",
        type=Path,
        metavar="FILE",
        help='the accounts as a JSON list of {"Id", "Name", "Status"}, instead of reading'
        " AWS Organizations",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the audit as JSON on stdout, nothing else"
    )
    parser.add_argument(
        "--show-ok", action="store_true", help="list ok connectors in the table too"
    )
    parser.add_argument(
        "--delete-orphans",
        action="store_true",
        help="list the orphaned connectors that would be deleted (they carry this project's"
        " marker and their account is known and not ACTIVE); a dry run without --yes",
    )
    parser.add_argument(
        "--yes", action="store_true", help="with --delete-orphans: delete them, and nothing else"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="time budget of the whole audit (default: %(default).0f)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    secrets: SecretStore | None = None,
    organizations: Any = None,
    retry: RetryPolicy | None = None,
) -> int:
    """Run the audit as the command line asks; returns the exit status.

    ``organizations`` is a boto3 Organizations client (a default one is built on first use);
    ``secrets`` and ``retry`` replace the defaults, for tests.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.yes and not args.delete_orphans:
            parser.error("--yes only goes with --delete-orphans")
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_FAILED

    # The provider's own log lines (throttling waits, each deletion) go to stderr, so that
    # stdout holds the table or the JSON document alone.
    # The process's own logging (if any) is not asked to print them a second time.
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("provider")
    level, propagate = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False
    try:
        return _run(
            args,
            os.environ if environ is None else environ,
            out,
            err,
            secrets,
            organizations,
            retry,
        )
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
        package.propagate = propagate


def _run(  # noqa: PLR0917 - private, called once
    args: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    secrets: SecretStore | None,
    organizations: Any,
    retry: RetryPolicy | None,
) -> int:
    deadline = Deadline.after(args.timeout)
    progress = Progress(err)
    try:
        settings = Settings.from_env(environ)
        accounts, scope = _accounts(args, Organizations(organizations), progress)
        client = qualys_client(
            settings, secrets or SecretStore(), retry=retry, on_page=progress.page
        )
        try:
            progress.say("Reading connectors from Qualys…")
            audit = run_audit(client, accounts, scope=scope, deadline=deadline)
            progress.done()
            deletions = None
            if args.delete_orphans and args.yes:
                deletions = delete_orphans(client, audit, deadline=deadline)
        finally:
            client.close()
    except ProviderError as error:
        progress.done()
        print(f"Audit could not run: {error}", file=err)
        return EXIT_FAILED
    except Exception as error:
        progress.done()
        logger.debug("Audit failed", exc_info=True)
        print(f"Audit could not run: unexpected {type(error).__name__}", file=err)
        return EXIT_FAILED

    if args.json:
        json.dump(report.as_json(audit), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        render_table(audit, out, show_ok=args.show_ok, environ=environ)
    if args.delete_orphans:
        # With --json, stdout holds the document only: what is (or would be) deleted goes
        # to stderr.
        _report_deletions(audit, deletions, err if args.json else out)
    return EXIT_OK if audit.all_ok else EXIT_NOT_OK


def _accounts(
    args: argparse.Namespace, organizations: Organizations, progress: Progress
) -> tuple[list[Account], set[str] | None]:
    if args.accounts is not None:
        return read_accounts_file(args.accounts), None
    progress.say("Reading accounts from AWS Organizations…")
    accounts = organizations.accounts()
    scope = organizations.accounts_under(args.ou) if args.ou else None
    return accounts, scope


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


class Progress:
    """What the audit is reading, on stderr: a rich spinner on a terminal, else one line
    per step and per search page (a log, or a CI job, keeps every line)."""

    def __init__(self, err: TextIO) -> None:
        self._err = err
        self._status: Any = None
        if _is_terminal(err):
            from rich.console import Console  # noqa: PLC0415 - the CLI's alone

            self._status = Console(file=err).status("Starting…")
            self._status.start()

    def say(self, text: str) -> None:
        """Show what is being read now."""
        if self._status is not None:
            self._status.update(text)
        else:
            print(text, file=self._err)

    def page(self, number: int) -> None:
        """A search page of up to ``PAGE_SIZE`` connectors arrived."""
        self.say(f"Reading connectors from Qualys: page {number} (up to {PAGE_SIZE:,} each)…")

    def done(self) -> None:
        """Stop the spinner (the log line that follows says what was read)."""
        if self._status is not None:
            self._status.stop()
            self._status = None


def _table_width(out: TextIO, environ: Mapping[str, str]) -> int | None:
    if _is_terminal(out):
        return None
    columns = environ.get("COLUMNS", "").strip()
    return int(columns) if columns.isascii() and columns.isdigit() else PIPE_WIDTH


_NO_WRAP: Final = frozenset({"Class", "Account", "Connector", "State"})
"""Columns whose values are read whole (ids, states); names and reasons fold instead."""
_NAME_WIDTH: Final = 20


def render_table(audit: Audit, out: TextIO, *, show_ok: bool, environ: Mapping[str, str]) -> None:
    """The audit as one table grouped by class (what needs action first), then the summary."""
    from rich import box  # noqa: PLC0415 - the CLI's alone; the Lambda lacks it
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    console = Console(file=out, width=_table_width(out, environ), highlight=False, soft_wrap=False)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for name in ("Class", *report.COLUMNS):
        if name in _NO_WRAP:
            table.add_column(name, no_wrap=True, overflow="ellipsis")
        else:
            # Names fold past a width, so that the room left goes to the reason.
            width = None if name == "Reason" else _NAME_WIDTH
            table.add_column(name, overflow="fold", max_width=width)
    for status in report.TABLE_ORDER:
        rows = report.rows(audit, status)
        if not rows or (status is Status.OK and not show_ok):
            continue
        for index, row in enumerate(rows):
            # Text, not markup: names come from Qualys and must print as they are.
            table.add_row(
                Text(status.value if index == 0 else ""),
                *(Text(value) for value in row),
                end_section=index == len(rows) - 1,
            )
    if table.row_count:
        console.print(table)
    hidden = audit.count(Status.OK) if not show_ok else 0
    if hidden:
        console.print(Text(f"{hidden} ok connectors not listed (--show-ok lists them)"))
    console.print(Text(report.summary_line(audit)))


def _report_deletions(audit: Audit, deletions: list[Deletion] | None, out: TextIO) -> None:
    orphans = deletable(audit)
    kept = [f for f in audit.of(Status.ORPHANED) if not f.deletable]
    for finding in kept:
        print(
            f"Not deleting connector {finding.connector.id} ({finding.connector.name or '—'}):"
            " its account is unknown; delete it by hand if it is an orphan",
            file=out,
        )
    if not orphans:
        print("No orphaned connector to delete.", file=out)
        return
    if deletions is None:
        print(
            f"Dry run: would delete {len(orphans)} orphaned connector(s) carrying this"
            " project's marker (add --yes to delete them):",
            file=out,
        )
        for finding in orphans:
            name = finding.connector.name or "—"
            print(f"  {finding.connector.id}  {name}  {finding.detail}", file=out)
        return
    for deletion in deletions:
        connector = deletion.finding.connector
        print(
            f"Connector {connector.id} ({connector.name or '—'}, {deletion.finding.detail}):"
            f" {deletion.outcome}",
            file=out,
        )
    done = sum(1 for d in deletions if d.deleted)
    print(f"Deleted {done} of {len(deletions)} orphaned connector(s).", file=out)
