"""Fixtures of the identity unit tests: fakes of the ports, and mock_aws holding the template's tables."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from devstack.template import Resolver, load_template
from link_zoom import composition
from link_zoom.observability import metrics
from tests.conftest import reset_process_caches
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
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "FEATURE_FLAG_PARAMETER": "/link/zoom/enabled",
    }
    env.update({variable: f"unit-{logical}" for variable, logical in TABLES.items()})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    template = load_template()
    resolver = Resolver(template, parameters={}, region="us-east-1")
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for variable, logical in TABLES.items():
            props = resolver.resolve(template["Resources"][logical]["Properties"])
            ddb.create_table(
                TableName=env[variable],
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode="PAY_PER_REQUEST",
            )
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/link/zoom/enabled", Value="false", Type="String"
        )
        reset_process_caches()
        yield env
    reset_process_caches()


@pytest.fixture
def fake_connection() -> Iterator[FakeConnection]:
    fake = FakeConnection()
    with composition.override(connection=fake):
        yield fake
