"""The organisation's accounts: from AWS Organizations, or a JSON list in a file or S3 object.

A JSON list holds ``{"Id": "123456789012", "Name": "...", "Status": "ACTIVE"}`` items (the
output of ``aws organizations list-accounts``, or its ``Accounts`` list, reads as it is).
Organizations reports an account's ``State`` beside ``Status``, which it retires: ``State``
is read when present, ``Status`` otherwise, in both sources.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from provider.audit.classify import Account
from provider.audit.errors import AccountsFileError, AuditError, OrganizationsError
from provider.ids import ACCOUNT_ID
from provider.text import shorten

logger = logging.getLogger(__name__)

STATUSES: Final = ("ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "PENDING_ACTIVATION", "CLOSED")
"""Every value of Organizations' account ``Status`` and ``State``."""
OU_ID: Final = re.compile(r"ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}")
ROOT_ID: Final = re.compile(r"r-[0-9a-z]{4,32}")
ROOT_NAME: Final = "Root"
"""How CfCT names the organisation's root as a target: every account."""
_SHOWN_CHARS: Final = 40


def _shown(value: object) -> str:
    return shorten(json.dumps(value, ensure_ascii=False, default=str), _SHOWN_CHARS)


def parse_accounts(text: str | bytes, *, source: str) -> list[Account]:
    """The accounts of a JSON list; ``AccountsFileError`` names the source, item and rule."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError:
        raise AccountsFileError(f"{source} is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise AccountsFileError(
            f"{source} is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if isinstance(data, dict) and "Accounts" in data:
        data = data["Accounts"]
    if not isinstance(data, list):
        raise AccountsFileError(
            f'{source} must hold a JSON list of {{"Id", "Name", "Status"}} objects'
        )
    accounts: list[Account] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        accounts.append(_account(item, f"{source}, item {index}", seen))
    return accounts


def _account(item: object, where: str, seen: set[str]) -> Account:
    if not isinstance(item, dict):
        raise AccountsFileError(f'{where} must be an object with "Id", "Name" and "Status"')
    account_id = item.get("Id")
    if not isinstance(account_id, str) or not ACCOUNT_ID.fullmatch(account_id):
        raise AccountsFileError(
            f"{where}: Id must be a string of 12 ASCII digits (quoted, so that leading"
            f" zeros stay), not {_shown(account_id)}"
        )
    where = f"{where} (account {account_id})"
    if account_id in seen:
        raise AccountsFileError(f"{where}: the account is listed twice")
    seen.add(account_id)
    name = item.get("Name", "")
    if not isinstance(name, str):
        raise AccountsFileError(f"{where}: Name must be a string, not {_shown(name)}")
    status = item.get("State", item.get("Status"))
    if status not in STATUSES:
        raise AccountsFileError(
            f"{where}: Status must be one of {', '.join(STATUSES)}, not {_shown(status)}"
        )
    assert isinstance(status, str)
    return Account(id=account_id, name=name, status=status)


def read_accounts_file(path: Path) -> list[Account]:
    """The accounts of a JSON file (``--accounts FILE``)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise AccountsFileError(
            f"Accounts file {path} cannot be read: {error.strerror or type(error).__name__}"
        ) from None
    return parse_accounts(raw, source=f"Accounts file {path}")


def read_s3_accounts(uri: str, client: Any) -> list[Account]:
    """The accounts of a JSON object in S3, ``s3://bucket/key``."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - loads on use

    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if parts.scheme != "s3" or not bucket or not key:
        raise AccountsFileError(f"The accounts S3 URI must be s3://bucket/key, not {uri!r}")
    try:
        raw = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        raise AccountsFileError(f"S3 object {uri} could not be read ({code})") from None
    except BotoCoreError as error:
        raise AccountsFileError(
            f"S3 object {uri} could not be read ({type(error).__name__})"
        ) from None
    return parse_accounts(raw, source=f"S3 object {uri}")


def default_organizations_client() -> Any:
    """A boto3 Organizations client that waits out throttling (standard retries)."""
    import boto3  # noqa: PLC0415 - built on first use, never at import time
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(
        "organizations", config=Config(retries={"mode": "standard", "max_attempts": 10})
    )


@contextlib.contextmanager
def _reading(what: str) -> Iterator[None]:
    """Organizations' errors as one ``OrganizationsError`` naming what was being read."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        logger.warning("AWS Organizations %s failed: %s", what, code)
        raise OrganizationsError(
            f"AWS Organizations could not be read ({what}: {code}); run where it is"
            " readable (the management or a delegated administrator account) or give"
            " the accounts as a file"
        ) from None
    except BotoCoreError as error:
        raise OrganizationsError(
            f"AWS Organizations could not be reached ({what}: {type(error).__name__})"
        ) from None


class Organizations:
    """The accounts and OUs of the organisation, read through a boto3 client."""

    def __init__(self, client: Any | None = None) -> None:
        self._given = client
        self._children: dict[str, list[dict[str, Any]]] = {}
        self._root_id: str | None = None

    @property
    def _client(self) -> Any:
        """The given client, or a default one built on first use (inside ``_reading``, so
        that a missing region or credentials read as Organizations not being readable)."""
        if self._given is None:
            self._given = default_organizations_client()
        return self._given

    def accounts(self) -> list[Account]:
        """Every account of the organisation (``ListAccounts``, all pages)."""
        accounts: list[Account] = []
        with _reading("ListAccounts"):
            for page in self._client.get_paginator("list_accounts").paginate():
                accounts.extend(
                    Account(
                        id=item["Id"],
                        name=item.get("Name", ""),
                        status=item.get("State") or item.get("Status", ""),
                    )
                    for item in page["Accounts"]
                )
        return accounts

    def accounts_under(self, ous: Sequence[str]) -> set[str]:
        """The ids of the accounts in these OUs and their children, at any depth.

        An OU is an id (``ou-...``), a path of names from the root as CfCT writes it
        (``Parent:Child``), or the root itself (``Root`` or its ``r-...`` id); one that
        names no OU raises ``OrganizationsError``.
        """
        found: set[str] = set()
        for ou in ous:
            pending = [self._resolve(ou)]
            while pending:
                parent = pending.pop()
                found.update(self._account_ids(parent))
                pending.extend(child["Id"] for child in self._child_ous(parent))
        return found

    def _resolve(self, ou: str) -> str:
        if ou == ROOT_NAME:
            return self._root()
        if ROOT_ID.fullmatch(ou):
            if ou != self._root():
                raise OrganizationsError(f"{ou} is not the root of the organisation")
            return ou
        if OU_ID.fullmatch(ou):
            with _reading("DescribeOrganizationalUnit"):
                try:
                    self._client.describe_organizational_unit(OrganizationalUnitId=ou)
                except self._client.exceptions.OrganizationalUnitNotFoundException:
                    raise OrganizationsError(f"OU {ou} is not in the organisation") from None
            return ou
        levels = ou.split(":")
        if not all(level.strip() for level in levels):
            raise AuditError(f"OU {ou!r} has an empty level: nested OUs are written Parent:Child")
        parent = self._root()
        for depth, level in enumerate(levels):
            named = [c for c in self._child_ous(parent) if c.get("Name") == level]
            if not named:
                where = ":".join(levels[:depth]) or "the root"
                raise OrganizationsError(f"OU {ou!r}: there is no OU {level!r} under {where}")
            parent = named[0]["Id"]
        return parent

    def _root(self) -> str:
        if self._root_id is None:
            with _reading("ListRoots"):
                roots = self._client.list_roots()["Roots"]
            if not roots:
                raise OrganizationsError("AWS Organizations reported no root")
            self._root_id = str(roots[0]["Id"])
        return self._root_id

    def _child_ous(self, parent: str) -> list[dict[str, Any]]:
        if parent not in self._children:
            children: list[dict[str, Any]] = []
            with _reading("ListOrganizationalUnitsForParent"):
                paginator = self._client.get_paginator("list_organizational_units_for_parent")
                for page in paginator.paginate(ParentId=parent):
                    children.extend(page["OrganizationalUnits"])
            self._children[parent] = children
        return self._children[parent]

    def _account_ids(self, parent: str) -> list[str]:
        ids: list[str] = []
        with _reading("ListAccountsForParent"):
            paginator = self._client.get_paginator("list_accounts_for_parent")
            for page in paginator.paginate(ParentId=parent):
                ids.extend(item["Id"] for item in page["Accounts"])
        return ids
