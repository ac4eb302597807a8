"""Helpers for the local stack's tests: HTTP calls, the fixture stack's handle, waiting, a stack process."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devstack.aws import LocalResources, MotoServer
from devstack.functions import FunctionLogs, FunctionRegistry, discover_functions
from devstack.gateway import Gateway, RunningServer
from devstack.pollers import Pollers

# `python -m devstack.run` as a process of its own: one implementation, shared with the e2e and resilience
# tests and make bench.
from devstack.stack_process import StackProcess as StackProcess
from devstack.stack_process import start_stack_process as start_stack_process

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"
INTEGRATION_TIMEOUT_S = 1.0  # instead of 29 s, so the 504 test is quick


@dataclass
class HttpAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_call(
    base_url: str, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
) -> HttpAnswer:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return HttpAnswer(response.status, response.headers, response.read())
    finally:
        connection.close()


@dataclass
class FixtureStack:
    moto: MotoServer
    resources: LocalResources
    registry: FunctionRegistry
    gateway: Gateway
    api: RunningServer
    invoke_api: RunningServer
    pollers: Pollers
    logs_dir: Path

    @property
    def api_url(self) -> str:
        return self.api.url

    def call(self, method: str, path: str, **kwargs: Any) -> HttpAnswer:
        return http_call(self.api.url, method, path, **kwargs)

    def module_state(self, logical: str, name: str) -> Any:
        """A module-level value of a fixture function (after its cold start)."""
        module = self.registry.module(logical)
        assert module is not None, f"{logical} has not been invoked yet"
        return getattr(module, name)


def build_registry(resources: LocalResources, logs_dir: Path) -> FunctionRegistry:
    template = resources.resolver.template
    specs = discover_functions(template, resources.template_path.parent, resources.resolver)
    return FunctionRegistry(specs, FunctionLogs(logs_dir))
