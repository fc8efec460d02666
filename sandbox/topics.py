"""Requests to a ServiceToken that is an SNS topic, delivered the way AWS delivers them.

The central provider's ServiceToken is its topic (design section 9). CloudFormation
publishes the request there; SNS hands it to the topic's SQS subscriptions (raw delivery);
Lambda's event source mapping takes it off the queue and invokes the provider. In the
sandbox, moto's SNS and SQS carry the message, and ``sandbox.event_source`` stands in for
the mapping (moto's own is switched off: see ``sandbox.moto_patches``), with the BatchSize
and MaximumConcurrency of the mapping the stack created.
"""

from __future__ import annotations

import json
from typing import Any, Final

import boto3
from moto.awslambda.models import LambdaFunction, lambda_backends

from sandbox.cfn_responses import ResponseCollector
from sandbox.cloudformation.engine import as_account
from sandbox.event_source import EventSourceMapping
from sandbox.moto_patches import InProcessLambda

#: Workers of a mapping without ScalingConfig (Lambda would scale up to 1,000): plenty for
#: the one request at a time the engine sends.
_DEFAULT_WORKERS: Final = 10


class FunctionError(Exception):
    """The function raised: Lambda leaves the batch to come back after its visibility timeout."""


class TopicDelivery:
    """Publishes a request to its topic and runs the topic's queues' event source mappings
    until the request is answered or ``timeout`` seconds pass.

    ``collector`` is the one crhelper's answers reach; ``runtime`` runs the functions.
    One request at a time, as the engine sends them.
    """

    def __init__(
        self, runtime: InProcessLambda, collector: ResponseCollector, *, timeout: float = 300.0
    ) -> None:
        self._runtime = runtime
        self._collector = collector
        self._timeout = timeout
        #: Every mapping that carried a request, for tests and the demo to read.
        self.mappings: list[EventSourceMapping] = []

    def __call__(self, topic_arn: str, payload: str) -> None:
        """Deliver ``payload`` (a custom resource request) through ``topic_arn``."""
        request_id = json.loads(payload)["RequestId"]
        _, _, _, region, account, _ = topic_arn.split(":", 5)
        with as_account(account):
            sns = boto3.client("sns", region_name=region)
            sns.publish(TopicArn=topic_arn, Message=payload)
            for mapping in self._mappings_of(sns, topic_arn, account, region):
                self.mappings.append(mapping)
                mapping.run_until(
                    lambda: bool(self._collector.for_request(request_id)), timeout=self._timeout
                )

    def _mappings_of(
        self, sns: Any, topic_arn: str, account: str, region: str
    ) -> list[EventSourceMapping]:
        sqs = boto3.client("sqs", region_name=region)
        functions = boto3.client("lambda", region_name=region)
        found = []
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
        for subscription in subscriptions:
            if subscription["Protocol"] != "sqs":
                continue
            queue_arn = subscription["Endpoint"]
            queue_url = sqs.get_queue_url(
                QueueName=queue_arn.rsplit(":", 1)[1], QueueOwnerAWSAccountId=account
            )["QueueUrl"]
            listed = functions.list_event_source_mappings(EventSourceArn=queue_arn)
            for spec in listed["EventSourceMappings"]:
                if spec.get("State", "Enabled") != "Enabled":
                    continue
                function = lambda_backends[account][region].get_function(spec["FunctionArn"])
                scaling = spec.get("ScalingConfig", {})
                found.append(
                    EventSourceMapping(
                        sqs,
                        queue_url,
                        self._invoker(function),
                        batch_size=int(spec.get("BatchSize", 10)),
                        maximum_concurrency=int(
                            scaling.get("MaximumConcurrency", _DEFAULT_WORKERS)
                        ),
                        region=region,
                    )
                )
        return found

    def _invoker(self, function: LambdaFunction) -> Any:
        def invoke(_worker: int, event: dict[str, Any]) -> Any:
            payload, errored, _logs = self._runtime.invoke(function, event)
            if errored:
                raise FunctionError(payload)
            return json.loads(payload)

        return invoke
