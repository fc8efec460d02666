"""Helpers shared by the sandbox deploy tests: a stand-in provider and message readers.

The stand-in answers the two custom resource types through crhelper's real response path
with fixed attributes, so the sandbox's CloudFormation mechanics can be checked without
the real provider (and without Qualys).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crhelper import CfnResource

STANDIN_HANDLER = "provider.handler.lambda_handler"


@dataclass
class StandInProvider:
    """A crhelper provider with fixed attributes that records the events it receives."""

    connector_id: str = "1001"
    external_id: str = "standin-external-id"
    qualys_account_id: str = "805950163170"
    fail: Callable[[dict[str, Any]], str | None] = lambda _event: None
    replace_on_update: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        # A new CfnResource per call: crhelper builds boto3 clients in its constructor,
        # and the region only exists inside the invocation.
        helper = CfnResource(json_logging=False, log_level="INFO", sleep_on_delete=0)
        self.events.append(event)

        def answer(event: dict[str, Any], _context: Any) -> str | None:
            reason = self.fail(event)
            if reason is not None:
                raise RuntimeError(reason)
            kind = event["RequestType"]
            if event["ResourceType"] == "Custom::QualysConnector":
                connector_id = self.connector_id
                if kind == "Update" and self.replace_on_update:
                    connector_id = str(int(event["PhysicalResourceId"]) + 1)
                if kind != "Delete":
                    helper.Data.update(
                        ConnectorId=connector_id,
                        ConnectorName=event["ResourceProperties"]["ConnectorName"],
                        ExternalId=self.external_id,
                        QualysAwsAccountId=self.qualys_account_id,
                    )
                return connector_id if kind != "Delete" else None
            if kind != "Delete":
                helper.Data["ConnectorState"] = "QUEUED"
            return f"{event['ResourceProperties']['ConnectorId']}/activation"

        helper.create(answer)
        helper.update(answer)
        helper.delete(answer)
        helper(event, context)

    def requests(self) -> list[tuple[str, str]]:
        """(RequestType, LogicalResourceId) of every event, in order."""
        return [(e["RequestType"], e["LogicalResourceId"]) for e in self.events]


def slack_texts(messages: list[dict[str, Any]]) -> list[str]:
    """Every text in a list of Slack payloads, one string per message (for assertions)."""
    texts = []
    for message in messages:
        parts = [str(message.get("text", ""))]
        for attachment in message.get("attachments", []):
            parts.append(str(attachment.get("fallback", "")))
            parts.extend(_block_texts(attachment.get("blocks", [])))
        parts.extend(_block_texts(message.get("blocks", [])))
        texts.append(" ".join(p for p in parts if p))
    return texts


def _block_texts(blocks: list[dict[str, Any]]) -> list[str]:
    found = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            found.append(str(text.get("text", "")))
        for item in block.get("fields", []) + block.get("elements", []):
            if isinstance(item, dict) and "text" in item:
                found.append(str(item["text"]))
    return found
