"""Identity against the real thing: the Samba AD DC (LDAPS) and the moto server provisioned from template.yaml."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.directory import DirectoryInfo
from devstack.events import api_event, token_authorizer_event
from link_zoom.observability import metrics
from tests.conftest import reset_process_caches
from tests.support.functions import load_function
from tests.support.lambda_context import FakeLambdaContext
from tests.unit.identity.fakes import logger_output


@pytest.fixture(scope="session")
def directory_info(demo_directory: DirectoryInfo) -> DirectoryInfo:
    return demo_directory


@pytest.fixture
def identity_env(
    stack_env: dict[str, str],
    directory_info: DirectoryInfo,
    local_aws: LocalResources,
    monkeypatch: pytest.MonkeyPatch,
) -> DirectoryInfo:
    """The functions' environment pointed at the demo directory, with no sign-in attempts left over."""
    for key, value in directory_info.env().items():
        monkeypatch.setenv(key, value)
    # The shared Metrics object read its namespace from the environment at first import.
    monkeypatch.setattr(metrics, "namespace", "LinkZoomTest")
    reset_process_caches()
    ddb = local_aws.client("dynamodb")
    table = local_aws.tables["LoginAttemptsTable"]
    for item in ddb.scan(TableName=table, ProjectionExpression="username_key")["Items"]:
        ddb.delete_item(TableName=table, Key=item)
    return directory_info


@pytest.fixture
def functions(identity_env: DirectoryInfo) -> dict[str, Any]:
    return {name: load_function(name) for name in ("authorizer", "session", "features", "account")}


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    with logger_output() as stream:
        yield stream


class Api:
    """Calls the handlers the way the gateway does: the authorizer first, its context into the event."""

    def __init__(self, functions: dict[str, Any]) -> None:
        self.functions = functions

    def call(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.functions[name].handler(event, FakeLambdaContext())
        return response

    def sign_in(self, username: str, password: str) -> dict[str, Any]:
        body = json.dumps({"username": username, "password": password})
        return self.call("session", api_event("POST", "/v1/session", body=body))

    def authorize(self, header: str, method: str, path: str) -> dict[str, Any]:
        answer = self.call("authorizer", token_authorizer_event(header, method, path))
        return {**answer["context"], "principalId": answer["principalId"]}

    def request(self, name: str, token: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        context = self.authorize(f"Bearer {token}", method, path)
        return self.call(name, api_event(method, path, authorizer=context, **kwargs))


@pytest.fixture
def api(functions: dict[str, Any]) -> Api:
    return Api(functions)


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response["body"] else None
