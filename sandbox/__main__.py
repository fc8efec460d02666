"""Command line of the sandbox: ``python -m sandbox demo`` (or ``demo-org``, ``reliability``,
``audit``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sandbox import audit_scenario, demo, org_demo, reliability


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
            "Deploy the connector stack into moto with the real provider in two member "
            "accounts (CSPM and asset inventory), show their connectors, roles, first syncs "
            "and Slack messages; deploy a third with a broken trust and WaitForFirstSync, "
            "which fails and rolls back; update ActivationModules to VM,PC; delete the stacks "
            "and show no connector is left. Exits non-zero, naming the step, if a step did "
            "not happen."
        ),
    )
    commands.add_parser(
        "demo-org",
        help="the central provider and a StackSet of member stacks in five accounts",
        description=(
            "Deploy templates/qualys-connector-central.yaml in the central account, then a "
            "StackSet of templates/qualys-connector.yaml with ProviderServiceToken into five "
            "accounts, against a Qualys simulator with a Standard subscription's limits; show "
            "each connector active and its role trusting it, every request answered by the "
            "central provider through SNS and SQS; delete the instances and show no connector "
            "is left. Exits non-zero, naming the step, if a step did not happen."
        ),
    )
    commands.add_parser(
        "reliability",
        help="run the fault matrix: every operation under every fault the simulator scripts",
        description=(
            "Every operation of both resource types under every fault the Qualys simulator "
            "can script, plus duplicates, rollbacks and IAM propagation; prints a table and "
            "exits non-zero if a cell left an orphan, a duplicate, a leak or a bad answer."
        ),
    )
    commands.add_parser(
        "audit",
        help="the fleet audit's six classes in a small organisation, then the clean-up",
        description=(
            "Build an organisation in moto's Organizations and connectors in the Qualys "
            "simulator with a closed account, a duplicate, a hand-made connector, one in "
            "ERROR and an account without a connector; run python -m provider.audit on them, "
            "then --delete-orphans as a dry run and with --yes, which deletes exactly the "
            "orphan. Exits non-zero, naming the step, if a step did not happen."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; the exit status."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "demo":
        demo.quiet_logging()
        return demo.run(sys.stdout)
    if arguments.command == "demo-org":
        demo.quiet_logging()
        return org_demo.run(sys.stdout)
    if arguments.command == "reliability":
        demo.quiet_logging()
        return reliability.run(sys.stdout)
    if arguments.command == "audit":
        demo.quiet_logging()
        return audit_scenario.run(sys.stdout)
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
