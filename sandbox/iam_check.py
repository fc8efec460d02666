"""Decides, from moto's IAM, whether Qualys could assume a connector's role.

The Qualys simulator asks this when a connector's sync ends, as real Qualys finds role
problems when it syncs, not when a connector is created or enabled. Real Qualys calls
``sts:AssumeRole`` from its own AWS account (one per account type) with the connector's
external ID; here the role's trust policy is read from moto's IAM backend and evaluated for exactly
that call. moto itself does not evaluate trust policies (any AssumeRole succeeds), which
is why the check lives here.

It runs on the simulator's request thread, so it reads moto's backend objects directly
instead of calling boto3 (whose account comes from the process environment).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import unquote

from moto.iam.models import iam_backends

from sandbox.qualys import SimConnector

_ROLE_ARN: Final = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[\w+=,.@-]+)$"
)
_ASSUME_ACTIONS: Final = frozenset({"sts:assumerole", "sts:*", "*"})


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _unable(why: str) -> str:
    # Worded like the lastError Qualys reports for a role it cannot use; short, because the
    # provider puts it in a failure reason (under 200 characters) and the arn is known.
    return f"Unable to assume role: {why}"


class MotoRoleChecker:
    """The simulator's role check: can Qualys's account assume the connector's role?

    ``qualys_account_id`` is the account Qualys calls ``sts:AssumeRole`` from for a Global
    connector; ``gov_cloud_account_id`` and ``china_account_id`` are those for the other
    account types (None: the Global one, as the real ones are unknown). It is used whatever
    the connector reports, as real Qualys's calls come from its own account.
    """

    def __init__(
        self,
        qualys_account_id: str,
        *,
        gov_cloud_account_id: str | None = None,
        china_account_id: str | None = None,
    ) -> None:
        self.qualys_account_id = qualys_account_id
        self.gov_cloud_account_id = gov_cloud_account_id
        self.china_account_id = china_account_id

    def caller_account(self, connector: SimConnector) -> str:
        """The account Qualys assumes this connector's role from."""
        by_type = {"GOVCLOUD": self.gov_cloud_account_id, "CHINA": self.china_account_id}
        return by_type.get(connector.account_type) or self.qualys_account_id

    def __call__(self, connector: SimConnector) -> str | None:
        """None if the role can be assumed, else the lastError Qualys would report."""
        arn = connector.arn or ""
        match = _ROLE_ARN.match(arn)
        if match is None:
            return _unable(f"{arn!r} is not an IAM role ARN")
        partition, account, name = match["partition"], match["account"], match["name"]
        if connector.aws_account_id and connector.aws_account_id != account:
            return _unable(f"the role is not in account {connector.aws_account_id}")
        roles = [r for r in iam_backends[account][partition].roles.values() if r.name == name]
        if not roles:
            return _unable(f"role {name} does not exist")
        return trust_problem(
            roles[0].assume_role_policy_document,
            partition=partition,
            qualys_account_id=self.caller_account(connector),
            external_id=connector.external_id or "",
        )


def trust_problem(
    policy_document: str | dict[str, Any],
    *,
    partition: str,
    qualys_account_id: str,
    external_id: str,
) -> str | None:
    """Why the trust policy does not let ``qualys_account_id`` assume the role, or None."""
    document = (
        json.loads(unquote(policy_document))
        if isinstance(policy_document, str)
        else policy_document
    )
    principal = f"arn:{partition}:iam::{qualys_account_id}:root"
    statements = [s for s in _as_list(document.get("Statement")) if s.get("Effect") == "Allow"]
    assume = [s for s in statements if _allows_assume_role(s.get("Action"))]
    trusting = [s for s in assume if _trusts(s.get("Principal"), principal, qualys_account_id)]
    if not trusting:
        trusted = sorted(_principals(s.get("Principal") for s in assume)) or ["nobody"]
        return _unable(f"trust policy does not allow {principal} (trusts {', '.join(trusted)})")
    if any(_external_id_matches(s.get("Condition"), external_id) for s in trusting):
        return None
    return _unable("trust policy's sts:ExternalId does not match the connector's external ID")


def _allows_assume_role(action: Any) -> bool:
    return any(str(a).lower() in _ASSUME_ACTIONS for a in _as_list(action))


def _principals(principals: Iterable[Any]) -> set[str]:
    found: set[str] = set()
    for principal in principals:
        if principal == "*":
            found.add("*")
        elif isinstance(principal, dict):
            found |= {str(p) for p in _as_list(principal.get("AWS"))}
    return found


def _trusts(principal: Any, root_arn: str, account_id: str) -> bool:
    names = _principals([principal])
    return bool(account_id) and bool(names & {root_arn, account_id, "*"})


def _external_id_matches(condition: Any, external_id: str) -> bool:
    if not external_id or not isinstance(condition, dict):
        return False
    equals = condition.get("StringEquals") or {}
    wanted = next((v for k, v in equals.items() if k.lower() == "sts:externalid"), None)
    return external_id in [str(v) for v in _as_list(wanted)]
