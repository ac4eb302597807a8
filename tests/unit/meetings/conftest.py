"""Fixtures of the meetings unit tests: the service on fakes, and mock_aws with the template's tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.template import Resolver, load_template
from link_zoom.observability import metrics
from tests.conftest import reset_process_caches

TABLES = {
    "MEETING_LINKS_TABLE": "MeetingLinksTable",
    "CALENDAR_TABLE": "CalendarTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
}
REGION = "us-east-1"
TEMPLATE = load_template()


@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared Metrics object read its namespace from the environment at first import, before any fixture."""
    monkeypatch.setattr(metrics, "namespace", "LinkZoomTest")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """In-process AWS (moto) holding the meetings' tables as template.yaml defines them, the DLQ and the switch."""
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "FEATURE_FLAG_PARAMETER": "/link/zoom/enabled",
        "AWS_LAMBDA_FUNCTION_NAME": "unit-meetings",
    }
    env.update({variable: f"unit-{logical}" for variable, logical in TABLES.items()})
    template = TEMPLATE
    resolver = Resolver(template, parameters={}, region=REGION)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        for variable, logical in TABLES.items():
            props = resolver.resolve(template["Resources"][logical]["Properties"])
            request: dict[str, Any] = {
                "TableName": env[variable],
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            if props.get("GlobalSecondaryIndexes"):
                request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            if props.get("StreamSpecification"):
                request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            ddb.create_table(**request)
        env["CALENDAR_STREAM_DLQ_URL"] = boto3.client("sqs", region_name=REGION).create_queue(QueueName="unit-dlq")[
            "QueueUrl"
        ]
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/link/zoom/enabled", Value="true", Type="String")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_process_caches()
        yield env
    reset_process_caches()
