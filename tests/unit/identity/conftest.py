"""Fixtures of the identity unit tests: fakes of the ports, and mock_aws holding the template's tables."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest

from link_zoom import composition
from link_zoom.observability import metrics
from tests.support.aws import REGION, mock_aws_with_tables
from tests.unit.identity.fakes import (
    ADA,
    BOB,
    FakeAttemptCounter,
    FakeConnection,
    FakeDirectory,
    FakeSessionStore,
    logger_output,
)

TABLES = {
    "SESSIONS_TABLE": "SessionsTable",
    "LOGIN_ATTEMPTS_TABLE": "LoginAttemptsTable",
    "PREFERENCES_TABLE": "PreferencesTable",
}


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory({"ada": ("ada-password", ADA), "bob": ("bob-password", BOB)})


@pytest.fixture
def sessions() -> FakeSessionStore:
    return FakeSessionStore()


@pytest.fixture
def attempts() -> FakeAttemptCounter:
    return FakeAttemptCounter()


@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared Metrics object read its namespace from the environment at first import, before any fixture."""
    monkeypatch.setattr(metrics, "namespace", "LinkZoomTest")


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    with logger_output() as stream:
        yield stream


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """In-process AWS (moto) with the identity tables created from template.yaml's own definitions."""
    with mock_aws_with_tables(monkeypatch, TABLES, {"FEATURE_FLAG_PARAMETER": "/link/zoom/enabled"}) as env:
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/link/zoom/enabled", Value="false", Type="String")
        yield env


@pytest.fixture
def fake_connection() -> Iterator[FakeConnection]:
    fake = FakeConnection()
    with composition.override(connection=fake):
        yield fake
