"""Meetings through the real pieces: the moto server (template.yaml's tables, stream, queues), the Zoom
emulator, and users connected through the connection code's own consent flow. Handlers are invoked with
the events AWS builds; the calendar stream is read from the moto server's stream itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.zoom_emulator import EmulatorHandle, start_emulator
from tests.integration.connection.zoom_flow import Person, connect, new_person
from tests.integration.meetings.stream_tap import CalendarTable
from tests.support.functions import load_function
from tests.support.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    handle = start_emulator(port=0)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    return {
        name: load_function(name)
        for name in (
            "meetings",
            "calendar_stream",
            "connect_sweep",
            "dlq_replay",
            "event_work",
            "zoom_oauth",
            "zoom_webhook",
        )
    }


@pytest.fixture
def zoom(
    stack_env: dict[str, str], emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, local_aws: LocalResources
) -> Iterator[EmulatorHandle]:
    """A fresh emulator, the functions pointed at it, the switch on, empty queues, fast Zoom timeouts."""
    from link_zoom import config
    from link_zoom.adapters import crypto, flag, zoom_meetings
    from link_zoom.observability import metrics
    from tests.conftest import point_functions_at

    monkeypatch.setattr(metrics, "namespace", stack_env["POWERTOOLS_METRICS_NAMESPACE"])
    # A "timeout" fault need not cost the 8 s of production's read timeout.
    monkeypatch.setattr(config, "ZOOM_READ_TIMEOUT_S", 1.0)
    monkeypatch.setattr(zoom_meetings, "RATE_LIMIT_BACKOFF_S", 0.2)
    point_functions_at(emulator, monkeypatch)
    for queue in ("ConnectSweepQueue", "CalendarStreamDLQ"):
        drain(local_aws, queue)
    flag.set_zoom_enabled(True)
    yield emulator
    flag.set_zoom_enabled(False)
    crypto.forget_cached_keys()


@pytest.fixture
def calendar(local_aws: LocalResources, zoom: EmulatorHandle) -> CalendarTable:
    """The calendar table as the Link server writes it, its stream read from now on."""
    return CalendarTable(local_aws)


@pytest.fixture
def alice(zoom: EmulatorHandle, functions: dict[str, Any], local_aws: LocalResources) -> Person:
    """A connected user (consent through the emulator's page), with the sweep message of that connect consumed."""
    person = new_person("alice")
    connect(functions["zoom_oauth"], person)
    drain(local_aws, "ConnectSweepQueue")
    zoom.clear_calls()
    return person


def drain(local_aws: LocalResources, queue: str) -> None:
    """Empties a queue (PurgeQueue is limited to once a minute)."""
    sqs, url = local_aws.client("sqs"), local_aws.queues[queue]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def context(seconds: float = 20.0, name: str = "local-test") -> FakeLambdaContext:
    return FakeLambdaContext(function_name=name, remaining_ms=int(seconds * 1000))


def body_of(response: dict[str, Any]) -> Any:
    text = response.get("body") or ""
    return json.loads(text) if text else None
