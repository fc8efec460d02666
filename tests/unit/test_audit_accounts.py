"""The audit's JSON account list (``--accounts FILE``, ``AUDIT_ACCOUNTS_S3_URI``): its rules."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from provider.audit.accounts import parse_accounts, read_accounts_file, read_s3_accounts
from provider.audit.classify import Account
from provider.audit.errors import AccountsFileError, AuditError

SOURCE = "Accounts file accounts.json"


def parse(value: Any) -> list[Account]:
    return parse_accounts(json.dumps(value), source=SOURCE)


def test_a_list_of_id_name_status_objects() -> None:
    accounts = parse(
        [
            {"Id": "012345678901", "Name": "prod", "Status": "ACTIVE"},
            {"Id": "111111111111", "Name": "old", "Status": "SUSPENDED"},
        ]
    )

    assert accounts == [
        Account(id="012345678901", name="prod", status="ACTIVE"),
        Account(id="111111111111", name="old", status="SUSPENDED"),
    ]


def test_the_output_of_aws_organizations_list_accounts_reads_as_it_is() -> None:
    listed = {
        "Accounts": [
            {
                "Id": "111111111111",
                "Arn": "arn:aws:organizations::123456789012:account/o-abc/111111111111",
                "Email": "a@example.com",
                "Name": "a",
                "Status": "ACTIVE",
                "State": "ACTIVE",
                "JoinedMethod": "CREATED",
                "JoinedTimestamp": "2026-01-01T00:00:00+00:00",
            }
        ]
    }

    assert parse(listed) == [Account(id="111111111111", name="a", status="ACTIVE")]


def test_state_is_read_before_the_retired_status() -> None:
    (account,) = parse([{"Id": "111111111111", "Status": "SUSPENDED", "State": "CLOSED"}])

    assert account.status == "CLOSED"


def test_name_may_be_left_out() -> None:
    assert parse([{"Id": "111111111111", "Status": "ACTIVE"}])[0].name == ""


def test_an_empty_list_parses_and_is_refused_later_by_the_audit() -> None:
    assert parse([]) == []


def test_bytes_with_a_utf8_bom_are_read() -> None:
    raw = "\ufeff" + json.dumps([{"Id": "111111111111", "Name": "ü", "Status": "ACTIVE"}])

    assert parse_accounts(raw.encode("utf-8"), source=SOURCE)[0].name == "ü"


BAD = [
    ("not JSON", b"[{'Id': 1}]", "is not JSON"),
    ("not UTF-8 text", b'["\xe9"]', "is not UTF-8 text"),
    ("an object that is not a list", b'{"Id": "111111111111"}', "must hold a JSON list"),
    ("an item that is not an object", b'["111111111111"]', "item 0 must be an object"),
    ("an Id as a number", b'[{"Id": 111111111111, "Status": "ACTIVE"}]', "quoted"),
    ("an Id of 11 digits", b'[{"Id": "11111111111", "Status": "ACTIVE"}]', "12 ASCII digits"),
    (
        "an Id of non-ASCII digits",
        json.dumps([{"Id": "\u0661" * 12, "Status": "ACTIVE"}]).encode(),  # Arabic-Indic 1
        "12 ASCII digits",
    ),
    (
        "the same account twice",
        (
            b'[{"Id": "111111111111", "Status": "ACTIVE"},'
            b' {"Id": "111111111111", "Status": "SUSPENDED"}]'
        ),
        "item 1 (account 111111111111): the account is listed twice",
    ),
    (
        "a Name that is not a string",
        b'[{"Id": "111111111111", "Name": 7, "Status": "ACTIVE"}]',
        "Name must be a string",
    ),
    ("no Status", b'[{"Id": "111111111111"}]', "Status must be one of"),
    ("a lower-case Status", b'[{"Id": "111111111111", "Status": "active"}]', '"active"'),
    ("an unknown Status", b'[{"Id": "111111111111", "Status": "GONE"}]', 'not "GONE"'),
]


@pytest.mark.parametrize(("raw", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_list_is_refused_naming_the_source_item_and_rule(raw: bytes, message: str) -> None:
    with pytest.raises(AccountsFileError) as raised:
        parse_accounts(raw, source=SOURCE)

    assert str(raised.value).startswith(SOURCE)
    assert message in str(raised.value)
    assert isinstance(raised.value, AuditError)


def test_a_long_bad_value_is_shown_short() -> None:
    with pytest.raises(AccountsFileError) as raised:
        parse([{"Id": "x" * 5000, "Status": "ACTIVE"}])

    assert len(str(raised.value)) < 200


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    with pytest.raises(AccountsFileError, match=r"absent\.json cannot be read"):
        read_accounts_file(path)


def test_a_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text('[{"Id": "111111111111", "Name": "a", "Status": "ACTIVE"}]')

    assert read_accounts_file(path) == [Account("111111111111", "a", "ACTIVE")]


class FakeS3:
    def __init__(self, body: bytes | None = None, code: str = "NoSuchKey") -> None:
        self.body = body
        self.code = code
        self.asked: list[tuple[str, str]] = []

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's
        self.asked.append((Bucket, Key))
        if self.body is None:
            raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "GetObject")
        return {"Body": io.BytesIO(self.body)}


def test_an_s3_object_is_read_from_its_uri() -> None:
    s3 = FakeS3(b'[{"Id": "111111111111", "Status": "ACTIVE"}]')

    accounts = read_s3_accounts("s3://audit-bucket/org/accounts.json", s3)

    assert s3.asked == [("audit-bucket", "org/accounts.json")]
    assert accounts == [Account("111111111111", "", "ACTIVE")]


@pytest.mark.parametrize(
    "uri", ["https://bucket/key", "s3://bucket", "s3:///key", "bucket/key"], ids=str
)
def test_an_s3_uri_must_name_bucket_and_key(uri: str) -> None:
    with pytest.raises(AccountsFileError, match="s3://bucket/key"):
        read_s3_accounts(uri, FakeS3(b"[]"))


def test_an_s3_object_that_cannot_be_read_names_the_error_code() -> None:
    with pytest.raises(AccountsFileError) as raised:
        read_s3_accounts("s3://b/k.json", FakeS3(code="AccessDenied"))

    assert str(raised.value) == "S3 object s3://b/k.json could not be read (AccessDenied)"
