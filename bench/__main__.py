"""Prints the provider's cold-start, XML and lifecycle numbers, and the Lambda zip's size.

Run with ``make bench``. Everything runs locally: the Qualys simulator and Slack receiver
on loopback, Secrets Manager in moto, the handler through crhelper's real send path.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from lxml import etree
from moto import mock_aws

from bench import audit, burst, central, contention
from provider import handler
from provider.qualys import codec
from provider.qualys.models import ApiVersion, ConnectorChanges
from sandbox.cfn_responses import ResponseCollector
from sandbox.qualys import QualysSimulator
from sandbox.slack import SlackReceiver

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    """Wall seconds of each of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def report(name: str, samples: list[float], unit: str = "ms", scale: float = 1000.0) -> None:
    values = sorted(s * scale for s in samples)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    print(
        f"{name:<44} median {statistics.median(values):8.2f} {unit}"
        f"  p95 {p95:8.2f} {unit}  (n={len(values)})"
    )


def cold_import() -> None:
    """A new interpreter importing the handler, as a Lambda cold start does."""
    code = (
        "import time; t = time.perf_counter(); import provider.handler; "
        "print(time.perf_counter() - t)"
    )
    samples = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout.strip()))
    report("cold import of provider.handler", samples)


def xml_codec() -> None:
    changes = ConnectorChanges(
        name='ACME & <Sons> "prod" ü',
        description="d" * 500,
        external_id="x" * 43,
        all_regions=False,
        regions=["eu-west-1", "us-east-1"],
        disabled=True,
        activation_modules=["VM", "PC"],
        default_tag_ids=[1, 2, 3],
        run_frequency=240,
    )
    report(
        "build a create request",
        timed(lambda: codec.create_request(changes, ApiVersion.V3), 2000),
        "µs",
        1e6,
    )

    page = etree.Element("ServiceResponse")
    etree.SubElement(page, "responseCode").text = "SUCCESS"
    etree.SubElement(page, "count").text = "1000"
    data = etree.SubElement(page, "data")
    for number in range(1000):
        item = etree.SubElement(data, "AwsAssetDataConnector")
        for tag, text in [
            ("id", str(1_000_000 + number)),
            ("name", f"aws-{number:012d}"),
            ("description", "x" * 200),
            ("externalId", "e" * 43),
            ("qualysAwsAccountId", "805950163170"),
            ("connectorState", "FINISHED_SUCCESS"),
            ("disabled", "false"),
        ]:
            etree.SubElement(item, tag).text = text
    body = etree.tostring(page)
    report(
        f"parse a 1,000-connector page ({len(body) // 1024} KiB)",
        timed(lambda: codec.parse_response(body), 20),
    )


def lifecycle(rounds: int = 20) -> None:
    """Create, activate, update, deactivate and delete through the real handler."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_REGION="eu-west-1",
    )

    class Context:
        function_name = "qualys-connector-provider"
        aws_request_id = "bench"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 300_000

    def event(name: str, **changes: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
        loaded.update(changes, RequestId=str(uuid.uuid4()))
        return loaded

    samples: dict[str, list[float]] = {}
    calls_by_request: dict[str, Counter[str | None]] = {}
    collector = ResponseCollector()
    with (
        mock_aws(),
        QualysSimulator(users={"bench": "bench-password"}) as qualys,
        SlackReceiver() as slack,
        collector.capture(),
    ):
        secrets = boto3.client("secretsmanager")
        credentials = secrets.create_secret(
            Name="bench/qualys",
            SecretString=json.dumps({"username": "bench", "password": "bench-password"}),
        )["ARN"]
        webhook = secrets.create_secret(
            Name="bench/slack", SecretString=json.dumps({"webhook_url": slack.webhook_url})
        )["ARN"]
        os.environ.update(
            QUALYS_API_URL=qualys.base_url,
            QUALYS_CREDENTIALS_SECRET_ID=credentials,
            SLACK_WEBHOOK_SECRET_ID=webhook,
        )
        for _ in range(rounds):
            # Every round pays the cold path: secrets, session, crhelper.
            container = handler.Container(os.environ, sleep_on_delete=0)
            stack = f"arn:aws:cloudformation:eu-west-1:123456789012:stack/bench/{uuid.uuid4()}"

            def send(
                label: str, payload: dict[str, Any], run: handler.Container = container
            ) -> dict[str, Any]:
                started = time.perf_counter()
                before = len(qualys.requests)
                run(payload, Context())
                calls_by_request.setdefault(label, Counter()).update(
                    r.operation for r in qualys.requests[before:]
                )
                samples.setdefault(label, []).append(time.perf_counter() - started)
                answer = collector.responses[-1]
                if answer.status != "SUCCESS":
                    raise SystemExit(f"{label} failed: {answer.reason}")
                return answer.data | {"id": answer.physical_resource_id}

            created = send(
                "Create connector (cold container)", event("connector_create", StackId=stack)
            )
            connector_id = created["id"]
            activation = event("activation_create", StackId=stack)
            activation["ResourceProperties"]["ConnectorId"] = connector_id
            send("Create activation", activation)
            send(
                "Update connector",
                event("connector_update", StackId=stack, PhysicalResourceId=connector_id),
            )
            deactivation = event(
                "activation_delete", StackId=stack, PhysicalResourceId=f"{connector_id}/activation"
            )
            send("Delete activation", deactivation)
            send(
                "Delete connector",
                event("connector_delete", StackId=stack, PhysicalResourceId=connector_id),
            )
        posts = len(slack.messages)
    for label, values in samples.items():
        report(label, values)
    lifecycle_calls = 0.0
    for label, calls in calls_by_request.items():
        count = sum(calls.values()) / rounds
        if label != "Update connector":
            lifecycle_calls += count
        by_operation = ", ".join(f"{op} {n / rounds:.0f}" for op, n in sorted(calls.items()))
        print(f"{'  Qualys calls of ' + label:<44} {count:8.1f}  ({by_operation})")
    print(f"{'Qualys calls per lifecycle (no Update)':<44} {lifecycle_calls:8.1f}")
    print(f"{'Slack messages per stack lifecycle':<44} {posts / rounds:8.1f}")


def package_size() -> None:
    zips = sorted((ROOT / "dist").glob("qualys-connector-provider-*.zip"))
    if not zips:
        print(f"{'Lambda zip':<44} not built (run make package)")
        return
    path = zips[-1]
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
        files = len(archive.infolist())
    # Decimal megabytes, as scripts/build_lambda.py prints them after make package.
    print(
        f"{'Lambda zip ' + path.name[-20:]:<44} {path.stat().st_size / 1e6:8.2f} MB"
        f" (unpacked {unpacked / 1e6:.2f} MB, {files} files)"
    )


def main() -> None:
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} cores")
    cold_import()
    xml_codec()
    lifecycle()
    package_size()
    burst.run()
    print()
    contention.main([])
    print()
    central.main([])
    audit.run()


if __name__ == "__main__":
    main()
