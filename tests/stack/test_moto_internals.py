"""Guards the moto (and crhelper) internals that the sandbox patches or reads.

When an upgrade moves one of them these tests fail first, naming what moved, instead of
the sandbox deploys failing in some puzzling way further on.
"""

from __future__ import annotations

import importlib
import inspect
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import crhelper
import moto
import pytest
import requests
from crhelper import CfnResource
from moto import mock_aws
from moto.cloudformation import custom_model
from moto.cloudformation.models import StackInstance, StackInstances

from sandbox.moto_patches import PATCHED_INTERNALS, PINNED_MOTO_VERSION, patched_moto

PINNED_CRHELPER_VERSION = "2.0.12"


def _resolve(dotted: str) -> Any:
    """Import the longest module prefix of ``dotted``, then walk the attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == PINNED_MOTO_VERSION, (
        f"moto {moto.__version__} is installed but sandbox/moto_patches.py was checked against "
        f"moto=={PINNED_MOTO_VERSION}: re-check every patched internal, then update the pin"
    )


def test_crhelper_is_the_pinned_version() -> None:
    version = getattr(crhelper, "__version__", None)
    if version is None:
        from importlib.metadata import version as installed

        version = installed("crhelper")
    assert version == PINNED_CRHELPER_VERSION, (
        f"crhelper {version}: the sandbox patches crhelper.utils.HTTPSConnection and "
        f"CfnResource._wait_for_cwlogs as of crhelper=={PINNED_CRHELPER_VERSION}"
    )


def _parameters(dotted: str) -> tuple[str, ...]:
    """Parameter names of a function, method or classmethod (``cls`` included)."""
    owner_name, _, name = dotted.rpartition(".")
    owner = _resolve(owner_name)
    raw = inspect.getattr_static(owner, name) if inspect.isclass(owner) else getattr(owner, name)
    if isinstance(raw, classmethod | staticmethod):
        raw = raw.__func__
    return tuple(inspect.signature(inspect.unwrap(raw)).parameters)


@pytest.mark.parametrize(
    ("dotted", "parameters"), sorted(PATCHED_INTERNALS.items()), ids=sorted(PATCHED_INTERNALS)
)
def test_patched_internal_has_not_moved(dotted: str, parameters: tuple[str, ...]) -> None:
    try:
        found = _parameters(dotted)
    except (AttributeError, ModuleNotFoundError) as error:
        pytest.fail(
            f"moto {moto.__version__}: {dotted} no longer exists ({error}); "
            f"sandbox/moto_patches.py patches or calls it as of moto=={PINNED_MOTO_VERSION}"
        )
    assert found == parameters, (
        f"moto {moto.__version__}: {dotted} now takes {found}, expected {parameters} "
        f"(checked against moto=={PINNED_MOTO_VERSION}); update sandbox/moto_patches.py"
    )


def test_custom_model_still_invokes_the_function_on_a_thread() -> None:
    source = inspect.getsource(custom_model.CustomModel.create_from_cloudformation_json)
    moved = (
        f"moto {moto.__version__}: CustomModel.create_from_cloudformation_json no longer starts "
        "threading.Thread(target=fn.invoke, ...); the sandbox's synchronous thread shim "
        f"(sandbox/moto_patches.py, moto=={PINNED_MOTO_VERSION}) relies on it"
    )
    assert "threading.Thread(" in source, moved
    assert "target=fn.invoke" in source, moved


def test_stack_set_instances_still_hold_their_stacks() -> None:
    # Sandbox.delete_stack_instances finds each instance's stack through these.
    assert "get_instance" in vars(StackInstances), (
        f"moto {moto.__version__}: StackInstances.get_instance moved"
    )
    assert "self.stack =" in inspect.getsource(StackInstance.__init__), (
        f"moto {moto.__version__}: StackInstance no longer keeps its stack in .stack"
    )


def test_crhelper_still_sends_through_https_connection_and_waits_before_delete() -> None:
    import crhelper.utils

    assert hasattr(crhelper.utils, "HTTPSConnection"), "crhelper.utils.HTTPSConnection moved"
    assert list(inspect.signature(CfnResource._wait_for_cwlogs).parameters) == ["self", "sleep"]


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Quiet."""


@pytest.fixture
def loopback_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_mock_aws_lets_requests_reach_loopback_servers(loopback_url: str) -> None:
    with mock_aws():
        response = requests.get(loopback_url, timeout=5)
    assert response.text == "hello", (
        "moto's requests mock no longer passes loopback traffic through"
    )


_TEMPLATE = {
    "Resources": {
        "Thing": {
            "Type": "Custom::Thing",
            "Properties": {
                "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
                "Size": 3,
            },
        },
        "Topic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": {"Fn::GetAtt": ["Thing", "Name"]}},
        },
    },
    "Outputs": {"Name": {"Value": {"Fn::GetAtt": ["Thing", "Name"]}}},
}


def test_patched_moto_completes_a_stack_and_resolves_get_att_of_a_custom_resource() -> None:
    """The three patches together, end to end, with moto's own event and set_data."""
    received: list[dict[str, Any]] = []

    def dispatch(function: Any, event: dict[str, Any]) -> None:
        received.append(event)
        stack_id = event["StackId"]
        from moto.cloudformation.models import cloudformation_backends

        stack = cloudformation_backends["123456789012"]["us-east-1"].get_stack(stack_id)
        stack.get_custom_resource(event["LogicalResourceId"]).set_data({"Name": "from-provider"})

    with mock_aws(), patched_moto(dispatcher=dispatch):
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        boto3.client("lambda", region_name="us-east-1").create_function(
            FunctionName="provider",
            Runtime="python3.12",
            Role=role,
            Handler="provider.handler.lambda_handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(StackName="s", TemplateBody=json.dumps(_TEMPLATE))
        stack = cloudformation.describe_stacks(StackName="s")["Stacks"][0]

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Outputs"][0]["OutputValue"] == "from-provider"
    assert [e["RequestType"] for e in received] == ["Create"]
    assert received[0]["ResourceProperties"]["Size"] == 3, "moto passes typed scalars"
