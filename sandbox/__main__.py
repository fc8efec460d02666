"""Command line of the sandbox: ``python -m sandbox demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sandbox import demo


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=(
            "Local stand-ins for AWS (moto), Qualys and Slack. Nothing leaves this machine."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "demo",
        help="deploy, update and delete templates/qualys-connector.yaml in the sandbox",
        description=(
            "Deploy the connector stack into moto with the real provider, show the connector "
            "in the Qualys simulator, the role's trust policy and the Slack messages; update "
            "ActivationModules to VM,PC; delete the stack and show the connector is gone. "
            "Exits non-zero, naming the step, if a step did not happen."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; the exit status."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "demo":
        demo.quiet_logging()
        return demo.run(sys.stdout)
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
