"""The patches that let moto 5.2.5 run CloudFormation custom resources without Docker.

moto runs a ``Custom::`` resource's Lambda only in Docker, on a background thread, and
expects the answer on its own ``cfnresponse`` endpoint. The sandbox needs the provider to
run in this process, synchronously, so that ``Fn::GetAtt`` of a custom resource holds the
provider's answer before the resources that read it are created. Six internals are
replaced, all named in ``PATCHED_INTERNALS`` so that ``tests/stack/test_moto_internals.py``
fails loudly when an upgrade moves one:

1. ``LambdaFunction._invoke_lambda`` runs the function's handler in-process
   (``InProcessLambda``), one module namespace per function like one warm container each;
2. ``custom_model.threading`` is swapped so the thread ``CustomModel`` starts runs at once,
   in the caller's thread, through a dispatcher the sandbox supplies (it builds the event
   CloudFormation would send and delivers the provider's answer with ``set_data``);
3. ``SecretsManagerBackend.get_secret_value`` follows a secret ARN into the account that
   owns it: moto looks a secret up in the caller's account only, and the provider reads an
   organisation-shared secret of the central account (real AWS resolves a full ARN across
   accounts, subject to the resource policy that moto does not evaluate anyway);
4. ``settings.moto_server_host`` answers a fixed host: moto builds its own response URL
   from it (the sandbox replaces that URL anyway), and inside a container it would shell
   out to ``curl`` against the Docker socket and print a warning;
5. ``custom_model.get_lambda_backend`` also knows an SNS topic ARN as a ServiceToken (the
   central provider's): moto looks every ServiceToken up as a Lambda function, and the
   dispatcher gets a ``TopicServiceToken`` for a topic instead;
6. ``LambdaBackend.create_event_source_mapping`` leaves an SQS queue unwatched: moto invokes
   the function inside ``SendMessage`` with a made-up ``SentTimestamp`` of 2018, deletes the
   message whatever ``batchItemFailures`` says, and knows no ``MaximumConcurrency``. The
   mapping is still created and listed; ``sandbox.event_source`` polls the queue instead.

Loopback traffic (the Qualys simulator, the Slack receiver) needs no patch: checked
against moto 5.2.5, ``mock_aws`` registers ``responses`` passthrough for every ``http``
URL it does not serve (``moto.core.custom_responses_mock``), so ``requests`` calls to
127.0.0.1 reach the real servers.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final
from unittest import mock

import moto
import moto.settings
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.cloudformation import custom_model
from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends
from moto.sqs.models import sqs_backends

PINNED_MOTO_VERSION: Final = "5.2.5"

#: Every moto name the sandbox relies on, with the parameters it calls it with. The
#: internals test checks each one against the installed moto.
PATCHED_INTERNALS: Final[Mapping[str, tuple[str, ...]]] = {
    "moto.awslambda.models.LambdaFunction._invoke_lambda": ("self", "event"),
    "moto.awslambda.models.LambdaFunction.invoke": (
        "self",
        "body",
        "request_headers",
        "response_headers",
    ),
    "moto.awslambda.models.LambdaFunction.save_logs": ("self", "output"),
    "moto.settings.moto_server_host": (),
    "moto.cloudformation.custom_model.get_lambda_backend": ("account_id", "region"),
    "moto.awslambda.models.LambdaBackend.create_event_source_mapping": ("self", "spec"),
    "moto.cloudformation.custom_model.CustomModel.set_data": ("self", "data"),
    "moto.cloudformation.custom_model.CustomModel.create_from_cloudformation_json": (
        "cls",
        "resource_name",
        "cloudformation_json",
        "account_id",
        "region_name",
        "kwargs",
    ),
    "moto.cloudformation.models.Stack.get_custom_resource": ("self", "custom_resource"),
    "moto.cloudformation.models.Stack._add_stack_event": (
        "self",
        "resource_status",
        "resource_status_reason",
        "resource_properties",
    ),
    "moto.cloudformation.models.Stack._create_output_map": ("self",),
    "moto.cloudformation.parsing.clean_json": ("resource_json", "resources_map"),
    "moto.cloudformation.parsing.ResourceMap.__init__": (
        "self",
        "stack_id",
        "stack_name",
        "parameters",
        "tags",
        "region_name",
        "account_id",
        "template",
        "cross_stack_resources",
    ),
    "moto.cloudformation.parsing.ResourceMap.load": ("self",),
    "moto.cloudformation.parsing.OutputMap.__init__": ("self", "resources", "template", "stack_id"),
    "moto.cloudformation.parsing.ResourceMap._delete_resource": (
        "self",
        "parsed_resource",
        "resource_json",
    ),
    "moto.secretsmanager.models.SecretsManagerBackend.get_secret_value": (
        "self",
        "secret_id",
        "version_id",
        "version_stage",
    ),
}

logger = logging.getLogger(__name__)

#: A Lambda handler: ``handler(event, context)``.
Handler = Callable[[Any, Any], Any]

#: A ServiceToken that names an SNS topic (the central provider's), not a Lambda function.
_TOPIC_ARN: Final = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")


def is_topic_arn(service_token: str) -> bool:
    """True when a custom resource's ServiceToken is an SNS topic ARN."""
    return _TOPIC_ARN.fullmatch(service_token) is not None


@dataclass(frozen=True)
class TopicServiceToken:
    """A custom resource's ServiceToken that is an SNS topic: CloudFormation publishes the
    request to the topic instead of invoking a function.

    It stands where moto expects the function, so it has the ``invoke`` moto's
    ``CustomModel`` passes to its thread; the sandbox's dispatcher delivers the request
    instead (``_SynchronousThread``), so ``invoke`` itself refuses.
    """

    arn: str

    def invoke(self, *_moto_arguments: Any) -> None:
        raise RuntimeError(f"a request for topic {self.arn} goes through the dispatcher")


#: Where moto's Create of a custom resource goes: the function, or the topic, it names.
CustomResourceTarget = LambdaFunction | TopicServiceToken

#: What the sandbox does with the event moto would have sent to a custom resource's Lambda.
CustomResourceDispatcher = Callable[[CustomResourceTarget, dict[str, Any]], None]


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda context object that crhelper and the provider read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float = field(repr=False)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout, like the real context."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """One run of a function's handler: what the sandbox can show about it afterwards."""

    function_arn: str
    request_type: str | None
    logical_resource_id: str | None
    errored: bool
    logs: str


class _LogCapture(logging.Handler):
    """Collects one invocation's log lines, as CloudWatch Logs would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        # ``responses`` (moto's HTTP mock) logs each loopback passthrough: not the function's.
        if not record.name.startswith("responses"):
            self.lines.write(self.format(record) + "\n")


class InProcessLambda:
    """Runs Lambda handlers in this process, one module namespace per function.

    ``overrides`` maps a handler name to a callable run instead (tests of the sandbox).
    ``max_timeout`` caps the function's timeout in seconds, so a test of a provider that
    waits out its whole budget before failing does not take minutes.

    Each function gets its own copy of the handler's top-level package, imported on the
    first invocation and kept for the next ones: a cold start, then a warm container. So
    module-level caches (settings, secrets, clients) belong to one function, as in Lambda,
    and two sandboxes or two accounts never share them.
    """

    def __init__(
        self,
        overrides: Mapping[str, Handler] | None = None,
        *,
        max_timeout: int | None = None,
    ) -> None:
        self._overrides = dict(overrides or {})
        self._max_timeout = max_timeout
        self._lock = threading.RLock()
        self._containers: dict[str, dict[str, ModuleType]] = {}
        self._invocations: list[Invocation] = []

    @property
    def invocations(self) -> list[Invocation]:
        """Every invocation so far, oldest first."""
        with self._lock:
            return list(self._invocations)

    def invoke(self, function: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        """Run ``function``'s handler on ``event``; answer like ``_invoke_lambda`` does."""
        module_name, _, attribute = str(function.handler).rpartition(".")
        package = module_name.partition(".")[0]
        environment = self._environment(function)
        capture = _LogCapture()
        # The process environment and sys.modules are global: one invocation at a time.
        with self._lock, _environment_set(environment), _root_logging_to(capture):
            previous = _take_modules(package)
            sys.modules.update(self._containers.get(function.function_arn, {}))
            try:
                handler = self._overrides.get(str(function.handler)) or getattr(
                    importlib.import_module(module_name), attribute
                )
                result = handler(event, self._context(function))
                payload, errored = json.dumps(result, default=str), False
            except Exception as error:  # Lambda reports any error as a payload
                logging.getLogger(module_name).exception("Unhandled error in the handler")
                payload = json.dumps(
                    {"errorMessage": str(error), "errorType": type(error).__name__}
                )
                errored = True
            finally:
                self._containers[function.function_arn] = _take_modules(package)
                sys.modules.update(previous)
        logs = capture.lines.getvalue()
        function.logs_backend.ensure_log_group(function.logs_group_name)
        function.save_logs(logs)
        record = event if isinstance(event, dict) else {}
        with self._lock:
            self._invocations.append(
                Invocation(
                    function_arn=function.function_arn,
                    request_type=record.get("RequestType"),
                    logical_resource_id=record.get("LogicalResourceId"),
                    errored=errored,
                    logs=logs,
                )
            )
        return payload, errored, logs

    def _timeout(self, function: LambdaFunction) -> int:
        timeout = int(function.timeout)
        return timeout if self._max_timeout is None else min(timeout, self._max_timeout)

    def _environment(self, function: LambdaFunction) -> dict[str, str]:
        # What the Lambda runtime sets, then the function's own variables; MOTO_ACCOUNT_ID
        # makes the handler's boto3 calls land in the function's account.
        environment = {
            "AWS_REGION": function.region,
            "AWS_DEFAULT_REGION": function.region,
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self._timeout(function)),
            "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
            "AWS_LAMBDA_LOG_GROUP_NAME": function.logs_group_name,
            "MOTO_ACCOUNT_ID": function.account_id,
        }
        environment.update({k: str(v) for k, v in (function.environment_vars or {}).items()})
        return environment

    def _context(self, function: LambdaFunction) -> LambdaContext:
        request_id = str(uuid.uuid4())
        return LambdaContext(
            function_name=function.function_name,
            function_version=str(function.version),
            invoked_function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size),
            aws_request_id=request_id,
            log_group_name=function.logs_group_name,
            log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{request_id.replace('-', '')}",
            deadline=time.monotonic() + self._timeout(function),
        )


def _take_modules(package: str) -> dict[str, ModuleType]:
    """Remove ``package`` and its submodules from ``sys.modules`` and return them."""
    names = [n for n in sys.modules if n == package or n.startswith(f"{package}.")]
    return {name: sys.modules.pop(name) for name in names}


@contextmanager
def _environment_set(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _root_logging_to(handler: logging.Handler) -> Iterator[None]:
    # The function's logs go to its log group, not to the terminal of whoever runs the
    # sandbox; crhelper also sets the root level on every call, so that is restored too.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = handlers
        root.setLevel(level)


class _SynchronousThread:
    """Stands in for the ``threading.Thread`` that moto's ``CustomModel`` starts."""

    def __init__(self, dispatcher: CustomResourceDispatcher, **kwargs: Any) -> None:
        self._dispatcher = dispatcher
        self._target: Callable[..., Any] = kwargs["target"]
        self._args: tuple[Any, ...] = tuple(kwargs.get("args", ()))

    def start(self) -> None:
        # moto passes ``target=fn.invoke, args=(json.dumps(event), {}, {})``.
        target = getattr(self._target, "__self__", None)
        assert isinstance(target, LambdaFunction | TopicServiceToken), (
            "moto no longer invokes LambdaFunction.invoke"
        )
        self._dispatcher(target, json.loads(self._args[0]))

    def join(self, timeout: float | None = None) -> None:
        """Nothing to wait for: ``start`` ran the work."""


def invoke_directly(target: CustomResourceTarget, event: dict[str, Any]) -> None:
    """The default dispatcher: invoke the function with moto's event, unchanged."""
    if isinstance(target, TopicServiceToken):
        raise TypeError(f"ServiceToken {target.arn} is a topic: use the sandbox's dispatcher")
    target.invoke(json.dumps(event), {"x-amz-invocation-type": "Event"}, {})


class _ServiceTokens:
    """What ``CustomModel`` takes for the Lambda backend: it finds a ServiceToken's function,
    or for an SNS topic ARN gives a ``TopicServiceToken``."""

    def __init__(self, backend: LambdaBackend) -> None:
        self._backend = backend

    def get_function(self, service_token: str) -> CustomResourceTarget:
        if is_topic_arn(service_token):
            return TopicServiceToken(service_token)
        function: LambdaFunction = self._backend.get_function(service_token)
        return function


def _service_tokens(original: Callable[[str, str], LambdaBackend]) -> Callable[..., Any]:
    def get_lambda_backend(account_id: str, region: str) -> _ServiceTokens:
        return _ServiceTokens(original(account_id, region))

    return get_lambda_backend


def _unwatched_queues(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_event_source_mapping(self: LambdaBackend, spec: dict[str, Any]) -> Any:
        mapping = original(self, spec)
        if mapping is None:  # not a queue, a stream or a table: moto made nothing
            return mapping
        function_arn = mapping.function_arn
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            if queue.lambda_event_source_mappings.get(function_arn) is mapping:
                del queue.lambda_event_source_mappings[function_arn]
        return mapping

    return create_event_source_mapping


def _get_secret_value_across_accounts(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_secret_value(
        self: SecretsManagerBackend, secret_id: str, version_id: str, version_stage: str
    ) -> Any:
        parts = secret_id.split(":")
        if secret_id.startswith("arn:") and len(parts) > 6 and parts[2] == "secretsmanager":
            region, account = parts[3], parts[4]
            if (account, region) != (self.account_id, self.region_name):
                owner = secretsmanager_backends[account][region]
                return original(owner, secret_id, version_id, version_stage)
        return original(self, secret_id, version_id, version_stage)

    return get_secret_value


@contextmanager
def patched_moto(
    *,
    runtime: InProcessLambda | None = None,
    dispatcher: CustomResourceDispatcher = invoke_directly,
) -> Iterator[InProcessLambda]:
    """Apply the patches for the duration of the block (use inside or around ``mock_aws``)."""
    check_moto_version()
    runtime = runtime or InProcessLambda()

    def invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return runtime.invoke(self, {} if event is None else event)

    threading_shim = mock.NonCallableMock(spec=["Thread"])
    threading_shim.Thread = lambda **kwargs: _SynchronousThread(dispatcher, **kwargs)
    original_get_secret = SecretsManagerBackend.get_secret_value
    original_mapping = LambdaBackend.create_event_source_mapping
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(LambdaFunction, "_invoke_lambda", invoke_lambda))
        stack.enter_context(mock.patch.object(custom_model, "threading", threading_shim))
        stack.enter_context(
            mock.patch.object(moto.settings, "moto_server_host", return_value="http://localhost")
        )
        stack.enter_context(
            mock.patch.object(
                SecretsManagerBackend,
                "get_secret_value",
                _get_secret_value_across_accounts(original_get_secret),
            )
        )
        stack.enter_context(
            mock.patch.object(
                custom_model,
                "get_lambda_backend",
                _service_tokens(custom_model.get_lambda_backend),  # type: ignore[attr-defined]
            )
        )
        stack.enter_context(
            mock.patch.object(
                LambdaBackend,
                "create_event_source_mapping",
                _unwatched_queues(original_mapping),
            )
        )
        yield runtime


def check_moto_version() -> None:
    """Refuse to patch a moto other than the one these patches were written against."""
    if moto.__version__ != PINNED_MOTO_VERSION:
        raise RuntimeError(
            f"sandbox patches moto internals checked against moto=={PINNED_MOTO_VERSION}, "
            f"found {moto.__version__}: re-check sandbox/moto_patches.py and pin moto again"
        )
