"""The whole sandbox: moto-backed AWS with the Qualys simulator and the Slack receiver.

``Sandbox`` starts ``mock_aws()`` with the patches of ``sandbox.moto_patches``, the Qualys
simulator (whose role check reads moto's IAM) and the Slack receiver; it creates what the
prerequisites stack would have made in the central account (a KMS key, the credentials
and Slack secrets, a code bucket with a zip), then deploys ``templates/qualys-connector.yaml``
through moto's CloudFormation. moto sends only the Create of a custom resource and ignores
a FAILED answer; ``sandbox.cloudformation.engine.CloudFormationEngine`` plays CloudFormation's
part for everything else (rollback, Update, Delete). A stack in a GovCloud or China region
gets its own partition's ``AWS::Partition`` (moto's is always ``aws``).
"""

from __future__ import annotations

import io
import json
import re
import secrets
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from unittest import mock

import boto3
from crhelper import CfnResource
from moto import mock_aws
from moto.cloudformation.models import Stack, cloudformation_backends
from moto.cloudformation.parsing import ResourceMap
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import Role, iam_backends

from sandbox.cfn_responses import ResponseCollector
from sandbox.cloudformation.engine import (
    CloudFormationEngine,
    CustomResourceFailedError,
    CustomResourceRecord,
    StackOperationError,
    as_account,
)
from sandbox.cloudformation.parameters import ParameterValidationError, parameter_problems
from sandbox.cloudformation.template import resolved_properties
from sandbox.iam_check import MotoRoleChecker
from sandbox.moto_patches import Handler, InProcessLambda, patched_moto
from sandbox.qualys import QualysSimulator
from sandbox.slack import SlackReceiver
from sandbox.topics import TopicDelivery

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
TEMPLATE_PATH: Final = REPO_ROOT / "templates" / "qualys-connector.yaml"
CENTRAL_TEMPLATE_PATH: Final = REPO_ROOT / "templates" / "qualys-connector-central.yaml"
#: The organisation the sandbox's accounts belong to (the central topic's publish policy).
ORGANIZATION_ID: Final = "o-sandbox0000"
DEFAULT_REGION: Final = "us-east-1"
#: moto's default account plays the organisation's central (security tooling) account.
CENTRAL_ACCOUNT_ID: Final = DEFAULT_ACCOUNT_ID
#: The account Qualys's documentation and CloudFormation sample trust (US platforms).
QUALYS_ACCOUNT_ID: Final = "805950163170"
QUALYS_USERNAME: Final = "sandbox_api_user"
CODE_KEY: Final = "qualys-connector/qualys-connector-provider-sandbox.zip"
_LIST_TYPES: Final = ("CommaDelimitedList", "List<")
_UNSUPPORTED: Final = re.compile(r"Tried to parse (\S+) but it's not supported")
_ROLE_ARN: Final = re.compile(
    r"^arn:(?P<partition>[^:]+):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[^/]+)$"
)
#: ``AWS::URLSuffix`` of each partition.
_URL_SUFFIXES: Final = {"aws-cn": "amazonaws.com.cn"}


@dataclass(frozen=True)
class StackView:
    """A stack as the sandbox sees it after an operation."""

    stack_id: str
    name: str
    account_id: str
    region: str
    status: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    custom_resources: dict[str, CustomResourceRecord]


@dataclass(frozen=True)
class RolePermissions:
    """What an IAM role may do: its managed policy ARNs and its inline policy documents."""

    managed_policy_arns: tuple[str, ...]
    inline_policies: dict[str, dict[str, Any]]


class Sandbox:
    """Local AWS (moto), Qualys and Slack, with the connector template deployable into it.

    Use as a context manager; everything stops on exit. Not thread-safe: one operation at
    a time, as one CloudFormation user would.

    ``function_timeout`` caps the provider function's timeout (its time budget) in
    seconds; ``skip_delete_sleep`` skips crhelper's pause before answering a Delete (it
    only gives CloudWatch time to take the logs); ``simulator_options`` go to
    ``QualysSimulator``; ``handler_overrides`` replace a handler by a callable (tests of
    the sandbox itself).
    """

    def __init__(
        self,
        *,
        region: str = DEFAULT_REGION,
        qualys_account_id: str = QUALYS_ACCOUNT_ID,
        template_path: Path = TEMPLATE_PATH,
        handler_overrides: Mapping[str, Handler] | None = None,
        simulator_options: Mapping[str, Any] | None = None,
        function_timeout: int | None = None,
        skip_delete_sleep: bool = True,
    ) -> None:
        self.region = region
        self.qualys_account_id = qualys_account_id
        self.template_body = template_path.read_text(encoding="utf-8")
        self._password = secrets.token_urlsafe(24)
        self._handler_overrides = dict(handler_overrides or {})
        self._simulator_options = dict(simulator_options or {})
        self._exit = ExitStack()
        self._qualys: QualysSimulator | None = None
        self._slack: SlackReceiver | None = None
        self.collector = ResponseCollector()
        self.runtime = InProcessLambda(self._handler_overrides, max_timeout=function_timeout)
        self.topics = TopicDelivery(self.runtime, self.collector)
        self.engine = CloudFormationEngine(self.collector, topics=self.topics)
        self.central_template_body = CENTRAL_TEMPLATE_PATH.read_text(encoding="utf-8")
        self._skip_delete_sleep = skip_delete_sleep
        #: Template resources moto skipped (it warns and creates nothing), for the record.
        self.skipped_resources: list[str] = []
        self.credentials_secret_arn = ""
        self.slack_secret_arn = ""
        self.kms_key_arn = ""
        self.code_bucket = ""
        self._webhook_url = ""

    # -- lifecycle --

    def __enter__(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._exit.close()

    def _start(self) -> None:
        self._exit.enter_context(mock_aws())
        self._exit.enter_context(_partition_pseudo_parameters())
        self._exit.enter_context(
            patched_moto(runtime=self.runtime, dispatcher=self.engine.dispatch_create)
        )
        self._exit.enter_context(self.collector.capture())
        if self._skip_delete_sleep:
            self._exit.enter_context(
                mock.patch.object(CfnResource, "_wait_for_cwlogs", _no_cwlogs_wait)
            )
        self._slack = self._exit.enter_context(SlackReceiver())
        options: dict[str, Any] = {
            "users": {QUALYS_USERNAME: self._password},
            "qualys_account_id": self.qualys_account_id,
            "role_checker": MotoRoleChecker(self.qualys_account_id),
            **self._simulator_options,
        }
        self._qualys = self._exit.enter_context(QualysSimulator(**options))
        self._create_central_resources()

    def _create_central_resources(self) -> None:
        """What the prerequisites stack makes in the central account."""
        self._webhook_url = self.slack.webhook_url
        with as_account(CENTRAL_ACCOUNT_ID):
            kms = boto3.client("kms", region_name=self.region)
            self.kms_key_arn = kms.create_key(Description="Qualys connector secrets")[
                "KeyMetadata"
            ]["Arn"]
            manager = boto3.client("secretsmanager", region_name=self.region)
            self.credentials_secret_arn = manager.create_secret(
                Name="qualys-connector/qualys-credentials",
                KmsKeyId=self.kms_key_arn,
                SecretString=json.dumps({"username": QUALYS_USERNAME, "password": self._password}),
            )["ARN"]
            self.slack_secret_arn = manager.create_secret(
                Name="qualys-connector/slack-webhook",
                KmsKeyId=self.kms_key_arn,
                SecretString=json.dumps({"webhook_url": self._webhook_url}),
            )["ARN"]
            self.code_bucket = f"qualys-connector-artifacts-{CENTRAL_ACCOUNT_ID}-{self.region}"
            s3 = boto3.client("s3", region_name=self.region)
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=self.code_bucket)
            else:
                s3.create_bucket(
                    Bucket=self.code_bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.region},
                )
            s3.put_object(Bucket=self.code_bucket, Key=CODE_KEY, Body=_provider_zip())

    # -- the stand-ins --

    @property
    def qualys(self) -> QualysSimulator:
        """The Qualys simulator (running while the sandbox is)."""
        if self._qualys is None:
            raise RuntimeError("the sandbox is not running")
        return self._qualys

    @property
    def slack(self) -> SlackReceiver:
        """The Slack webhook receiver (running while the sandbox is)."""
        if self._slack is None:
            raise RuntimeError("the sandbox is not running")
        return self._slack

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Strings that must never appear in output or logs (for tests and the demo)."""
        return tuple(v for v in (self._password, self._webhook_url) if v)

    # -- parameters --

    def parameters(self, **overrides: str) -> dict[str, str]:
        """The template's parameters for this sandbox, with ``overrides`` applied.

        ``QualysApiUrl`` is the simulator's loopback ``http`` URL: the template's
        AllowedPattern (https only) would reject it in real CloudFormation, and moto does
        not enforce AllowedPattern; the provider allows ``http`` for loopback hosts only.
        """
        values = {
            "QualysApiUrl": self.qualys.base_url,
            "QualysCredentialsSecretArn": self.credentials_secret_arn,
            "SecretsKmsKeyArn": self.kms_key_arn,
            "SlackWebhookSecretArn": self.slack_secret_arn,
            "CodeS3Bucket": self.code_bucket,
            "CodeS3Key": CODE_KEY,
            "ConnectorDescription": "Deployed by the local sandbox",
        }
        values.update(overrides)
        return self._with_list_defaults(values)

    def central_parameters(self, **overrides: str) -> dict[str, str]:
        """The central template's parameters for this sandbox, with ``overrides`` applied
        (``QualysApiUrl`` is the simulator's, as in `parameters`)."""
        values = {
            "QualysApiUrl": self.qualys.base_url,
            "QualysCredentialsSecretArn": self.credentials_secret_arn,
            "SecretsKmsKeyArn": self.kms_key_arn,
            "SlackWebhookSecretArn": self.slack_secret_arn,
            "OrganizationId": ORGANIZATION_ID,
            "CodeS3Bucket": self.code_bucket,
            "CodeS3Key": CODE_KEY,
        }
        values.update(overrides)
        return values

    def check_parameters(
        self,
        values: Mapping[str, str],
        *,
        update: bool = False,
        template_body: str | None = None,
    ) -> None:
        """Refuse parameters as CloudFormation does, before anything is created: unknown
        keys, required ones missing (not on an update, where the others keep their values),
        values outside the template's constraints. The one exception is the simulator's
        loopback ``QualysApiUrl`` (see `parameters`), checked as an https URL would be.
        The template is the connector template unless ``template_body`` is given."""
        checked = dict(values)
        if checked.get("QualysApiUrl") == self.qualys.base_url:
            checked["QualysApiUrl"] = "https://qualysapi.qualys.com"
        template = Stack.parse_template(template_body or self.template_body)
        problems = [
            (key, rule)
            for key, rule in parameter_problems(template, checked)
            if not (update and key not in values)
        ]
        if problems:
            raise ParameterValidationError(problems)

    def _with_list_defaults(self, values: Mapping[str, str]) -> dict[str, str]:
        # moto splits a list parameter only when it is passed, never its Default (a
        # default "VM" would reach the provider as a string, not ["VM"]): pass them all.
        declared = Stack.parse_template(self.template_body).get("Parameters", {})
        complete = dict(values)
        for name, spec in declared.items():
            if name not in complete and str(spec.get("Type", "")).startswith(_LIST_TYPES):
                complete[name] = str(spec.get("Default", ""))
        return complete

    # -- single stacks --

    def deploy(
        self,
        stack_name: str,
        parameters: Mapping[str, str] | None = None,
        *,
        account_id: str = CENTRAL_ACCOUNT_ID,
    ) -> StackView:
        """Create the stack; raise ``StackOperationError`` after rolling back a failure, or
        ``ParameterValidationError`` (creating nothing) for parameters CloudFormation refuses."""
        values = self.parameters(**(parameters or {}))
        self.check_parameters(values)
        return self._create_stack(stack_name, self.template_body, values, account_id)

    def deploy_central(
        self, stack_name: str = "qualys-connector-central", **parameters: str
    ) -> StackView:
        """Create the central provider's stack (templates/qualys-connector-central.yaml) in
        the central account; its ``ProviderServiceToken`` output is what member stacks pass.

        moto creates no ``AWS::SNS::Subscription`` from a template (nor the topic and queue
        policies, which it would not evaluate): the sandbox subscribes the queue itself, as
        the template says, so that requests published to the topic reach the queue.
        """
        values = self.central_parameters(**parameters)
        self.check_parameters(values, template_body=self.central_template_body)
        view = self._create_stack(
            stack_name, self.central_template_body, values, CENTRAL_ACCOUNT_ID
        )
        with as_account(CENTRAL_ACCOUNT_ID):
            self._subscribe_as_declared(self._moto_stack(view.stack_id, CENTRAL_ACCOUNT_ID))
        return view

    def _create_stack(
        self, stack_name: str, template_body: str, values: Mapping[str, str], account_id: str
    ) -> StackView:
        with as_account(account_id), self._moto_warnings():
            try:
                stack_id = self._cloudformation().create_stack(
                    StackName=stack_name,
                    TemplateBody=template_body,
                    Parameters=[
                        {"ParameterKey": k, "ParameterValue": v} for k, v in values.items()
                    ],
                    Capabilities=["CAPABILITY_NAMED_IAM"],
                )["StackId"]
            except CustomResourceFailedError as failure:
                self.engine.rollback_create(failure.stack_id, failure)
        view = self.stack(stack_id, account_id=account_id)
        if view.status != "CREATE_COMPLETE":
            raise StackOperationError(
                stack_name=stack_name,
                status=view.status,
                logical_id=stack_name,
                reason="moto did not complete the stack (a custom resource got no answer?)",
            )
        return view

    def _subscribe_as_declared(self, stack: Stack) -> None:
        template = stack.template_dict
        sns = boto3.client("sns", region_name=self.region)
        for name, resource in template["Resources"].items():
            if resource["Type"] != "AWS::SNS::Subscription":
                continue
            if "Condition" in resource:
                raise NotImplementedError(f"{name}: the sandbox subscribes unconditionally")
            properties = resolved_properties(template, name, stack.resource_map)
            raw = properties.get("RawMessageDelivery", False)
            sns.subscribe(
                TopicArn=properties["TopicArn"],
                Protocol=properties["Protocol"],
                Endpoint=properties["Endpoint"],
                Attributes={"RawMessageDelivery": str(raw).lower()},
            )

    def update(
        self,
        stack_name: str,
        parameters: Mapping[str, str],
        *,
        account_id: str = CENTRAL_ACCOUNT_ID,
    ) -> StackView:
        """Change some parameters (the others keep their values), as UpdateStack would."""
        self.check_parameters(parameters, update=True)
        stack = self._moto_stack(stack_name, account_id)
        self.engine.update_stack(stack.stack_id, parameters)
        return self.stack(stack.stack_id, account_id=account_id)

    def delete(self, stack_name: str, *, account_id: str = CENTRAL_ACCOUNT_ID) -> None:
        """Delete the stack: Delete events newest first, then moto removes the stack."""
        stack = self._moto_stack(stack_name, account_id)
        if stack.status not in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
            self.engine.delete_stack(stack.stack_id)
        with as_account(account_id):
            self._cloudformation().delete_stack(StackName=stack.stack_id)

    def stack(
        self, name_or_id: str, *, account_id: str = CENTRAL_ACCOUNT_ID, region: str | None = None
    ) -> StackView:
        """The stack's status, parameters, outputs and custom resources."""
        region = region or self.region
        with as_account(account_id):
            described = self._cloudformation(region).describe_stacks(StackName=name_or_id)[
                "Stacks"
            ][0]
        return StackView(
            stack_id=described["StackId"],
            name=described["StackName"],
            account_id=account_id,
            region=region,
            status=described["StackStatus"],
            parameters={
                # From moto's stack: DescribeStacks renders a list parameter as "['VM']".
                key: _parameter_text(value)
                for key, value in self._moto_stack(
                    described["StackId"], account_id, region
                ).resource_map.resolved_parameters.items()
            },
            outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", []) or []},
            custom_resources=self.engine.records(described["StackId"]),
        )

    # -- StackSets (self-managed, as CfCT deploys them) --

    def create_stack_set(
        self,
        name: str,
        accounts: Sequence[str],
        parameters: Mapping[str, str] | None = None,
        *,
        regions: Sequence[str] | None = None,
    ) -> list[StackView]:
        """Create a self-managed StackSet and one instance per account and region (this
        sandbox's region by default); the views come account by account, region by region.

        moto creates each instance as a real stack in its account and region, so each
        account gets its own provider function, connector and role. As with CfCT, every
        instance gets the same parameters: nothing in them names the target account.
        """
        regions = list(regions or [self.region])
        values = self.parameters(**(parameters or {}))
        self.check_parameters(values)
        with as_account(CENTRAL_ACCOUNT_ID), self._moto_warnings():
            client = self._cloudformation()
            client.create_stack_set(
                StackSetName=name,
                TemplateBody=self.template_body,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
                Capabilities=["CAPABILITY_NAMED_IAM"],
                PermissionModel="SELF_MANAGED",
            )
            for account in accounts:
                # One call per account, so a failure names its account and rolls back alone.
                try:
                    client.create_stack_instances(
                        StackSetName=name, Accounts=[account], Regions=regions
                    )
                except CustomResourceFailedError as failure:
                    self.engine.rollback_create(failure.stack_id, failure)
        return [
            self.stack_set_instance(name, account, region)
            for account in accounts
            for region in regions
        ]

    def stack_set_instance(
        self, name: str, account_id: str, region: str | None = None
    ) -> StackView:
        """The stack of one StackSet instance (in this sandbox's region by default)."""
        stack = self._instance_stack(name, account_id, region or self.region)
        return self.stack(stack.stack_id, account_id=account_id, region=region)

    def delete_stack_instances(
        self, name: str, accounts: Sequence[str], *, regions: Sequence[str] | None = None
    ) -> None:
        """Remove instances (an account left the targeted OUs): each stack is deleted."""
        regions = list(regions or [self.region])
        for account in accounts:
            for region in regions:
                self.engine.delete_stack(self._instance_stack(name, account, region).stack_id)
        with as_account(CENTRAL_ACCOUNT_ID):
            self._cloudformation().delete_stack_instances(
                StackSetName=name,
                Accounts=list(accounts),
                Regions=regions,
                RetainStacks=False,
            )

    def _instance_stack(self, name: str, account_id: str, region: str) -> Stack:
        backend = cloudformation_backends[CENTRAL_ACCOUNT_ID][self.region]
        stack_set = backend.describe_stack_set(name)
        instance = stack_set.instances.get_instance(account_id, region)
        if instance is None:
            raise LookupError(f"StackSet {name} has no instance in {account_id}/{region}")
        stack: Stack = instance.stack
        return stack

    # -- reading AWS --

    def role_trust_policy(self, role_arn: str) -> dict[str, Any]:
        """The trust policy of a role, as IAM stores it."""
        return _policy_document(_moto_role(role_arn).assume_role_policy_document)

    def role_permissions(self, view: StackView, logical_id: str = "QualysRole") -> RolePermissions:
        """What a stack's role may do: its managed and its inline policies."""
        stack = self._moto_stack(view.stack_id, view.account_id)
        role = stack.resource_map._parsed_resources.get(logical_id)
        if role is None:
            raise LookupError(f"stack {view.name} has no resource {logical_id}")
        if not isinstance(role, Role):
            raise TypeError(f"{logical_id} of stack {view.name} is not an IAM role")
        # moto 5.2.5 attaches no ManagedPolicyArns of a stack's role (and loads no AWS
        # managed policy to attach): the stack's own resolved list stands in for IAM's.
        declared = resolved_properties(stack.template_dict, logical_id, stack.resource_map).get(
            "ManagedPolicyArns"
        )
        return RolePermissions(
            managed_policy_arns=tuple(sorted({*(declared or ()), *role.managed_policies})),
            inline_policies={
                name: _policy_document(document) for name, document in role.policies.items()
            },
        )

    @contextmanager
    def _moto_warnings(self) -> Iterator[None]:
        # moto warns (and creates nothing) for a resource type it does not support; keep
        # the message as a record instead of letting it reach the user's terminal.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for warning in caught:
            match = _UNSUPPORTED.search(str(warning.message))
            if match and match[1] not in self.skipped_resources:
                self.skipped_resources.append(match[1])

    def _moto_stack(self, name_or_id: str, account_id: str, region: str | None = None) -> Stack:
        backend = cloudformation_backends[account_id][region or self.region]
        stack: Stack = backend.get_stack(name_or_id)
        return stack

    def _cloudformation(self, region: str | None = None) -> Any:
        return boto3.client("cloudformation", region_name=region or self.region)


@contextmanager
def _partition_pseudo_parameters() -> Iterator[None]:
    """``AWS::Partition`` and ``AWS::URLSuffix`` of the stack's own partition.

    moto 5.2.5 gives every stack ``aws`` and ``amazonaws.com``, even in GovCloud and China
    where its StackIds and role ARNs are ``aws-us-gov`` and ``aws-cn``: a template's
    ``arn:${AWS::Partition}:...`` (the role's trust principal among them) would then name
    the commercial partition.
    """
    original = ResourceMap.__init__

    def init(self: ResourceMap, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        partition = self.stack_id.split(":")[1]
        self._parsed_resources["AWS::Partition"] = partition
        self._parsed_resources["AWS::URLSuffix"] = _URL_SUFFIXES.get(partition, "amazonaws.com")

    with mock.patch.object(ResourceMap, "__init__", init):
        yield


def _moto_role(role_arn: str) -> Role:
    # From moto's backend, not boto3: moto files a boto3 IAM call in GovCloud under the
    # commercial partition (it reads the region "us-gov" off iam.us-gov.amazonaws.com),
    # where the stack's role is not.
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        raise ValueError(f"not an IAM role ARN: {role_arn}")
    role: Role = iam_backends[match["account"]][match["partition"]].get_role(match["name"])
    return role


def _policy_document(document: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else dict(document)


def _parameter_text(value: Any) -> str:
    # CloudFormation shows a list parameter as the comma-joined text.
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _no_cwlogs_wait(_helper: CfnResource, sleep: Any = None) -> None:
    """crhelper's pause before answering a Delete, skipped."""


def _provider_zip() -> bytes:
    """The provider's sources as a Lambda zip (the handler runs in-process, not from it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((REPO_ROOT / "provider").rglob("*.py")):
            archive.write(path, path.relative_to(REPO_ROOT).as_posix())
    return buffer.getvalue()
