"""Deploys templates/qualys-connector.yaml into the sandbox, for the stack's whole life.

The first group runs the real provider against the Qualys simulator, the Slack receiver
and moto; the second checks the sandbox's CloudFormation mechanics with a stand-in
provider (event shapes, rollback, replacement, order); the last holds the pure helpers.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.cloudformation.models import Stack
from sandbox_fixtures import STANDIN_HANDLER, StandInProvider, slack_texts

from sandbox import demo
from sandbox.aws import QUALYS_ACCOUNT_ID, TEMPLATE_PATH, Sandbox, StackView
from sandbox.cloudformation.engine import StackOperationError
from sandbox.cloudformation.events import stringify_properties
from sandbox.cloudformation.template import dependency_order, references
from sandbox.iam_check import trust_problem
from sandbox.qualys import SimConnector

STACK = "qualys-connector"
ROOT = f"arn:aws:iam::{QUALYS_ACCOUNT_ID}:root"


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def deployed(box: Sandbox) -> StackView:
    return box.deploy(STACK)


def _only_connector(box: Sandbox) -> SimConnector:
    connectors = box.qualys.connectors()
    assert len(connectors) == 1, f"expected one connector, found {connectors}"
    return connectors[0]


# --- the real provider ------------------------------------------------------------------


def test_deploy_trust_policy_names_the_connectors_qualys_account_and_external_id(
    box: Sandbox, deployed: StackView
) -> None:
    connector = _only_connector(box)
    statement = box.role_trust_policy(deployed.outputs["RoleArn"])["Statement"][0]

    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{connector.qualys_aws_account_id}:root"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": connector.external_id}}
    assert deployed.outputs["ExternalId"] == connector.external_id
    assert deployed.outputs["QualysAwsAccountId"] == QUALYS_ACCOUNT_ID


def test_deploy_enables_the_connector_with_the_stacks_role(
    box: Sandbox, deployed: StackView
) -> None:
    connector = _only_connector(box)

    assert deployed.status == "CREATE_COMPLETE"
    assert deployed.outputs["ConnectorId"] == str(connector.id)
    assert connector.arn == deployed.outputs["RoleArn"]
    assert not connector.disabled
    assert connector.connector_state != "ERROR", connector.last_error
    assert deployed.outputs["ConnectorState"] not in ("", "ERROR")
    assert deployed.custom_resources["QualysConnector"].physical_id == str(connector.id)
    assert deployed.custom_resources["QualysConnectorActivation"].physical_id == (
        f"{connector.id}/activation"
    )
    assert box.engine.anomalies == []


def test_deploy_posts_created_and_activated_to_slack(box: Sandbox, deployed: StackView) -> None:
    texts = slack_texts(box.slack.wait_for(2))

    assert "created" in texts[0].lower()
    assert "activated" in texts[1].lower()
    assert all(deployed.outputs["ConnectorId"] in text for text in texts)


def test_update_changes_activation_modules_on_the_same_connector(
    box: Sandbox, deployed: StackView
) -> None:
    before = _only_connector(box)

    updated = box.update(STACK, {"ActivationModules": "VM,PC"})

    after = _only_connector(box)
    assert updated.status == "UPDATE_COMPLETE"
    assert after.id == before.id
    assert after.activation_modules == ("VM", "PC")
    assert after.external_id == before.external_id
    assert not after.disabled
    assert updated.outputs["ConnectorId"] == deployed.outputs["ConnectorId"]
    assert "updated" in slack_texts(box.slack.wait_for(3))[2].lower()
    assert box.engine.anomalies == []


def test_delete_removes_the_connector_and_says_so_in_slack(
    box: Sandbox, deployed: StackView
) -> None:
    box.delete(STACK)

    assert box.qualys.connectors() == []
    assert "deleted" in slack_texts(box.slack.messages)[-1].lower()
    with pytest.raises(ClientError, match="does not exist"):
        box.stack(STACK)
    deletes = [e.logical_id for e in box.engine.events if e.request_type == "Delete"]
    assert deletes == ["QualysConnectorActivation", "QualysConnector"]


def test_no_secret_reaches_the_function_logs_or_slack(box: Sandbox, deployed: StackView) -> None:
    box.update(STACK, {"ActivationModules": "VM,PC"})
    box.delete(STACK)
    logs = "\n".join(invocation.logs for invocation in box.runtime.invocations)
    slack = repr(box.slack.messages)

    for secret in box.secret_values:
        assert secret not in logs
        assert secret not in slack
    assert "X-Amz-Signature" not in logs, "a presigned ResponseURL was logged"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "simulator_options", "parameters", "role_checker"),
    [
        pytest.param(
            "role-trusts-another-account",
            {"report_qualys_account_id": False},
            {"QualysAwsAccountId": "111122223333"},
            None,
            id="role-trusts-another-account",
        ),
        pytest.param(
            "qualys-reports-role-error",
            {},
            {},
            lambda _connector: "Unable to assume role: access denied by an SCP",
            id="qualys-reports-role-error",
        ),
    ],
)
def test_activation_qualys_cannot_use_fails_and_rollback_leaves_no_connector(
    case: str,
    simulator_options: dict[str, Any],
    parameters: dict[str, str],
    role_checker: Any,
) -> None:
    # A short function timeout: the provider retries an unusable role for its whole budget.
    # Qualys finds a broken trust when a sync runs: the stack waits for the first one.
    with Sandbox(simulator_options=simulator_options, function_timeout=30) as box:
        if role_checker is not None:
            box.qualys.role_checker = role_checker
        with pytest.raises(StackOperationError) as failure:
            box.deploy(STACK, {**parameters, "WaitForFirstSync": "true"})

        assert failure.value.logical_id == "QualysConnectorActivation", case
        assert failure.value.status == "ROLLBACK_COMPLETE", case
        assert "Unable to assume role" in failure.value.reason, case
        assert box.qualys.connectors() == [], case
        assert box.stack(STACK).status == "ROLLBACK_COMPLETE"
        assert "failed" in " ".join(slack_texts(box.slack.messages)).lower()
        requests = [(e.request_type, e.logical_id) for e in box.engine.events]
        assert requests == [
            ("Create", "QualysConnector"),
            ("Create", "QualysConnectorActivation"),
            ("Delete", "QualysConnectorActivation"),
            ("Delete", "QualysConnector"),
        ], case
        box.delete(STACK)


@pytest.fixture(scope="module")
def demo_output() -> tuple[int, str]:
    out = io.StringIO()
    status = demo.run(out)
    return status, out.getvalue()


def _sections(text: str) -> dict[str, str]:
    """The demo's output by step ("2": the deploy step's lines, and so on)."""
    parts = re.split(r"^\[(\d)/\d\] ", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_demo_runs_every_step_and_prints_no_secret(demo_output: tuple[int, str]) -> None:
    status, text = demo_output

    assert status == 0, text
    for step in (
        "[2/6] deploy",
        "[3/6] the first sync",
        "[4/6] deploy in account 333333333333 with WaitForFirstSync=true",
        "[5/6] update",
        "[6/6] delete",
        "Demo complete",
    ):
        assert step in text
    assert "Connectors left in Qualys: 0" in text
    assert "/services/" not in text, "the Slack webhook URL was printed"
    assert "X-Amz-Signature" not in text
    assert "password" not in text.lower()
    assert max(len(line) for line in text.splitlines()) <= 100


def test_demo_shows_a_cspm_and_an_asset_inventory_connector_side_by_side(
    demo_output: tuple[int, str],
) -> None:
    deploy = _sections(demo_output[1])["2"]
    cspm, inventory = deploy.split("account 222222222222")
    cspm_role = "arn:aws:iam::111111111111:role/qualys-connector-us-east-1"
    inventory_role = "arn:aws:iam::222222222222:role/qualys-connector-us-east-1"

    assert "account 111111111111, PermissionSet=CSPM" in cspm
    for app in ("AI", "CI", "CSA"):
        assert re.search(rf"app {app} +{re.escape(cspm_role)}", cspm), app
    assert "managed         arn:aws:iam::aws:policy/SecurityAudit" in cspm
    assert re.search(rf"app AI +{re.escape(inventory_role)}", inventory)
    assert "app CI" not in inventory
    assert "SecurityAudit" not in inventory
    assert "qualys-connector-read: 5 actions (QualysAssetInventoryReads)" in inventory
    for section in (cspm, inventory):
        assert "trusts          arn:aws:iam::805950163170:root to sts:AssumeRole" in section
        assert "ConnectorState  QUEUED (queued for first sync)" in section
        assert "Queued for first sync" in section, "Slack did not say the sync is queued"


def test_demo_shows_the_first_sync_from_queued_to_finished(demo_output: tuple[int, str]) -> None:
    first_sync = _sections(demo_output[1])["3"]

    for account in ("111111111111", "222222222222"):
        assert re.search(
            rf"{account} +1 run call, then QUEUED -> FINISHED_SUCCESS, lastSync \d{{4}}-",
            first_sync,
        ), first_sync


def test_demo_rolls_back_the_broken_trust_and_says_why(demo_output: tuple[int, str]) -> None:
    broken = " ".join(_sections(demo_output[1])["4"].split())

    assert "failed QualysConnectorActivation FAILED" in broken
    assert (
        "reason Qualys cannot use role for connector 1000003: Unable to assume role: trust"
        " policy does not allow arn:aws:iam::444455556666:root"
    ) in broken
    assert "stack ROLLBACK_COMPLETE" in broken
    assert "connectors 0 left in Qualys for account 333333333333" in broken
    assert "#E01E5A Qualys connector failed: aws-333333333333" in broken
    assert "Qualys connector deleted: aws-333333333333" in broken


def test_demo_names_the_step_that_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> StackView:
        raise StackOperationError(
            stack_name=STACK, status="UPDATE_ROLLBACK_COMPLETE", logical_id="X", reason="no"
        )

    monkeypatch.setattr(Sandbox, "update", refuse)
    out = io.StringIO()

    assert demo.run(out) == 1
    assert "DEMO FAILED at step 'update stack" in out.getvalue()


def test_demo_fails_when_the_broken_trust_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Qualys assuming roles from the account the role trusts: nothing is broken any more.
    monkeypatch.setattr(demo, "OTHER_QUALYS_ACCOUNT", QUALYS_ACCOUNT_ID)
    out = io.StringIO()

    assert demo.run(out) == 1
    assert (
        "DEMO FAILED at step 'deploy in account 333333333333 with WaitForFirstSync=true: a broken"
        " trust': step '"
    ) in out.getvalue()
    assert "the stack was created although Qualys cannot use its role" in out.getvalue()


# --- the sandbox's CloudFormation mechanics, with a stand-in provider -------------------


@pytest.fixture
def standin() -> StandInProvider:
    return StandInProvider()


@pytest.fixture
def standin_box(standin: StandInProvider) -> Iterator[Sandbox]:
    with Sandbox(handler_overrides={STANDIN_HANDLER: standin}) as sandbox:
        yield sandbox


def _all_strings(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_all_strings(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_strings(v) for v in value)
    return isinstance(value, str)


def test_create_events_have_the_shape_cloudformation_sends(
    standin_box: Sandbox, standin: StandInProvider
) -> None:
    view = standin_box.deploy(STACK)

    for event in standin.events:
        assert set(event) == {
            "RequestType",
            "ServiceToken",
            "ResponseURL",
            "StackId",
            "RequestId",
            "LogicalResourceId",
            "ResourceType",
            "ResourceProperties",
        }
        assert event["StackId"] == view.stack_id
        assert uuid.UUID(event["RequestId"])
        assert re.match(
            r"^https://cloudformation-custom-resource-response-useast1\.s3\.amazonaws\.com/"
            r"arn%3Aaws%3Acloudformation%3Aus-east-1%3A\d{12}%3Astack%2F.+\?X-Amz-Algorithm=",
            event["ResponseURL"],
        )
        assert _all_strings(event["ResourceProperties"]), event["ResourceProperties"]
    connector = standin.events[0]["ResourceProperties"]
    assert connector["AllRegions"] == "true"
    assert connector["RunFrequencyMinutes"] == "240"
    assert connector["ActivationModules"] == ["VM"]


def test_update_sends_old_properties_and_the_current_physical_id(
    standin_box: Sandbox, standin: StandInProvider
) -> None:
    standin_box.deploy(STACK)

    standin_box.update(STACK, {"RunFrequencyMinutes": "60"})

    update = standin.events[-1]
    assert standin.requests()[-1] == ("Update", "QualysConnector")
    assert update["PhysicalResourceId"] == standin.connector_id
    assert update["ResourceProperties"]["RunFrequencyMinutes"] == "60"
    assert update["OldResourceProperties"]["RunFrequencyMinutes"] == "240"


def test_update_of_unchanged_properties_sends_nothing(
    standin_box: Sandbox, standin: StandInProvider
) -> None:
    standin_box.deploy(STACK)

    view = standin_box.update(STACK, {"LogLevel": "DEBUG"})

    assert standin.requests()[-1] == ("Create", "QualysConnectorActivation")
    assert view.status == "UPDATE_COMPLETE"
    assert view.parameters["LogLevel"] == "DEBUG"
    assert view.parameters["ActivationModules"] == "VM"


def test_failed_update_is_rolled_back_with_old_and_new_properties_swapped(
    standin_box: Sandbox, standin: StandInProvider
) -> None:
    standin_box.deploy(STACK)
    standin.fail = lambda e: (
        "no" if e["ResourceProperties"].get("RunFrequencyMinutes") == "60" else None
    )

    with pytest.raises(StackOperationError) as failure:
        standin_box.update(STACK, {"RunFrequencyMinutes": "60"})

    failed, rollback = standin.events[-2:]
    assert failure.value.status == "UPDATE_ROLLBACK_COMPLETE"
    assert rollback["RequestType"] == "Update"
    assert rollback["ResourceProperties"] == failed["OldResourceProperties"]
    assert rollback["OldResourceProperties"] == failed["ResourceProperties"]
    assert standin_box.stack(STACK).parameters["RunFrequencyMinutes"] == "240"


def test_replacement_on_update_deletes_the_old_id_after_the_update(
    standin_box: Sandbox, standin: StandInProvider
) -> None:
    standin_box.deploy(STACK)
    standin.replace_on_update = True

    view = standin_box.update(STACK, {"ConnectorDescription": "new"})

    # The new connector id changes the activation's ConnectorId: it is replaced too.
    updates_then_cleanup = [
        (e["RequestType"], e["LogicalResourceId"], e["PhysicalResourceId"])
        for e in standin.events[2:]
    ]
    assert updates_then_cleanup == [
        ("Update", "QualysConnector", "1001"),
        ("Update", "QualysConnectorActivation", "1001/activation"),
        ("Delete", "QualysConnectorActivation", "1001/activation"),
        ("Delete", "QualysConnector", "1001"),
    ]
    assert view.custom_resources["QualysConnector"].physical_id == "1002"
    assert view.custom_resources["QualysConnectorActivation"].physical_id == "1002/activation"


def test_failed_create_deletes_what_was_created_newest_first(
    standin_box: Sandbox, standin: StandInProvider
) -> None:
    standin.fail = lambda e: (
        "boom"
        if e["RequestType"] == "Create" and e["LogicalResourceId"].endswith("Activation")
        else None
    )

    with pytest.raises(StackOperationError, match="boom"):
        standin_box.deploy(STACK)

    assert standin.requests() == [
        ("Create", "QualysConnector"),
        ("Create", "QualysConnectorActivation"),
        ("Delete", "QualysConnectorActivation"),
        ("Delete", "QualysConnector"),
    ]
    assert standin_box.stack(STACK).outputs == {}


def test_response_over_4096_bytes_fails_the_resource(
    standin_box: Sandbox, standin: StandInProvider
) -> None:
    standin.external_id = "x" * 5000

    with pytest.raises(StackOperationError, match="Response object is too long"):
        standin_box.deploy(STACK)


# --- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (240, "240"),
        (1.5, "1.5"),
        (["VM", 3], ["VM", "3"]),
        ({"a": {"b": True}, "c": None}, {"a": {"b": "true"}}),
    ],
    ids=["true", "false", "int", "float", "list", "nested-map-drops-none"],
)
def test_stringify_properties_sends_scalars_as_strings(value: Any, expected: Any) -> None:
    assert stringify_properties(value) == expected


def test_references_follow_ref_getatt_and_sub_but_not_sub_literals() -> None:
    fragment = {
        "A": {"Ref": "Param"},
        "B": {"Fn::GetAtt": ["Res", "Arn"]},
        "C": {"Fn::Sub": "${Other.Attr}-${!Literal}-${AWS::Region}"},
        "D": {"Fn::Sub": ["${Local}", {"Local": {"Ref": "Inner"}}]},
    }
    assert references(fragment) == {"Param", "Res", "Other", "AWS::Region", "Inner"}


def test_dependency_order_of_the_template_puts_the_role_between_connector_and_activation() -> None:
    order = dependency_order(Stack.parse_template(TEMPLATE_PATH.read_text(encoding="utf-8")))

    assert order.index("ProviderFunction") < order.index("QualysConnector")
    assert order.index("QualysConnector") < order.index("QualysRole")
    assert order.index("QualysRolePolicy") < order.index("QualysConnectorActivation")


def _trust(principal: Any, external_id: str = "ext") -> dict[str, Any]:
    return {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": principal,
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ]
    }


_NO_CONDITION = {
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}]
}
_TRUST_CASES = [
    ("root-arn-and-external-id", _trust({"AWS": ROOT}), None),
    ("bare-account-id", _trust({"AWS": QUALYS_ACCOUNT_ID}), None),
    ("principal-in-a-list", _trust({"AWS": ["arn:aws:iam::1:root", ROOT]}), None),
    ("other-account", _trust({"AWS": "arn:aws:iam::111122223333:root"}), "does not allow"),
    ("empty-principal", _trust({}), "trusts nobody"),
    ("wrong-external-id", _trust({"AWS": ROOT}, "other"), "sts:ExternalId"),
    ("no-condition", _NO_CONDITION, "sts:ExternalId"),
]


@pytest.mark.parametrize(
    ("case", "document", "problem"), _TRUST_CASES, ids=[case[0] for case in _TRUST_CASES]
)
def test_trust_problem_names_what_stops_qualys(
    case: str, document: dict[str, Any], problem: str | None
) -> None:
    found = trust_problem(
        document, partition="aws", qualys_account_id=QUALYS_ACCOUNT_ID, external_id="ext"
    )
    if problem is None:
        assert found is None, case
    else:
        assert found is not None, case
        assert problem in found, case
