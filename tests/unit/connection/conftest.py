"""In-process AWS (moto's mock_aws) with the connection's tables, key and queue from template.yaml, and a fake
Zoom at the HTTP transport (no sockets): it answers from a queue and remembers every request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.conftest import reset_process_caches
from tests.support.aws import REGION, mock_aws_with_tables

TABLES = {
    "CONNECTIONS_TABLE": "ZoomConnectionsTable",
    "OAUTH_STATES_TABLE": "OAuthStatesTable",
    "PREFERENCES_TABLE": "PreferencesTable",
}
CLIENT_ID = "unit-client"
CLIENT_SECRET = "unit-secret"


@pytest.fixture
def zoom_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The Zoom app's settings (client secret from the environment: no SSM needed)."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "ZOOM_REDIRECT_URL", "ZOOM_WEBHOOK_SECRET"):
        monkeypatch.delenv(key, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "ZOOM_CLIENT_ID": CLIENT_ID,
        "ZOOM_CLIENT_SECRET": CLIENT_SECRET,
        "ZOOM_OAUTH_BASE_URL": "https://zoom.example",
        "ZOOM_API_BASE_URL": "https://api.zoom.example/v2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_process_caches()
    yield env
    reset_process_caches()


@pytest.fixture
def aws(zoom_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """mock_aws with the connection's tables (as template.yaml defines them), a KMS key and the sweep queue."""
    from devstack.kms_fidelity import match_aws

    match_aws()  # moto's KMS answers as AWS does for disabled keys and another key id
    with mock_aws_with_tables(monkeypatch, TABLES, zoom_settings) as env:
        key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
        queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="unit-sweep")["QueueUrl"]
        monkeypatch.setenv("TOKEN_KEY_ID", key_id)
        monkeypatch.setenv("SWEEP_QUEUE_URL", queue)
        from link_zoom.adapters import crypto

        crypto.forget_cached_keys()
        yield {**env, "TOKEN_KEY_ID": key_id, "SWEEP_QUEUE_URL": queue}
        crypto.forget_cached_keys()


class FakeZoomTransport(HTTPAdapter):
    """Answers requests from a queue of (status, body, headers) or exceptions; `sent` keeps the prepared requests."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[int, Any, dict[str, str]] | Exception] = []
        self.sent: list[requests.PreparedRequest] = []

    def answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.answers.append((status, body, headers or {}))

    def fail(self, error: Exception) -> None:
        self.answers.append(error)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, headers = answer
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.headers.update(headers)
        response.url = request.url or ""
        response.request = request
        return response


@pytest.fixture
def zoom_http(monkeypatch: pytest.MonkeyPatch) -> FakeZoomTransport:
    from link_zoom.adapters import zoom_oauth

    transport = FakeZoomTransport()
    monkeypatch.setattr(zoom_oauth, "_adapter", transport)
    return transport
