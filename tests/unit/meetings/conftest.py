"""Fixtures of the meetings unit tests: the service on fakes, and mock_aws with the template's tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.template import load_template
from link_zoom.observability import metrics
from tests.support.aws import REGION, mock_aws_with_tables

TABLES = {
    "MEETING_LINKS_TABLE": "MeetingLinksTable",
    "CALENDAR_TABLE": "CalendarTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
}
TEMPLATE = load_template()


@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared Metrics object read its namespace from the environment at first import, before any fixture."""
    monkeypatch.setattr(metrics, "namespace", "LinkZoomTest")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """In-process AWS (moto) holding the meetings' tables as template.yaml defines them, the DLQ and the switch."""
    settings = {"FEATURE_FLAG_PARAMETER": "/link/zoom/enabled", "AWS_LAMBDA_FUNCTION_NAME": "unit-meetings"}
    with mock_aws_with_tables(monkeypatch, TABLES, settings) as env:
        dlq = boto3.client("sqs", region_name=REGION).create_queue(QueueName="unit-dlq")["QueueUrl"]
        monkeypatch.setenv("CALENDAR_STREAM_DLQ_URL", dlq)
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/link/zoom/enabled", Value="true", Type="String")
        yield {**env, "CALENDAR_STREAM_DLQ_URL": dlq}
