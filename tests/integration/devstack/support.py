"""Helpers for the local stack's tests: HTTP calls, the fixture stack's handle, waiting, a stack process."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devstack.aws import LocalResources, MotoServer
from devstack.functions import FunctionLogs, FunctionRegistry, discover_functions
from devstack.gateway import Gateway, RunningServer
from devstack.pollers import Pollers
from devstack.template import ROOT

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


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until condition() is truthy; return its value (or fail after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(interval)


# ---------------------------------------------------------------- `python -m devstack.run` as a process


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/v1/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no output)"


@dataclass
class StackProcess:
    """`make run`'s stack in a process of its own (moto's backends are per process: no sharing with tests)."""

    process: subprocess.Popen[bytes]
    info: dict[str, Any]  # its stack.json

    def stop(self, timeout: float = 20.0) -> None:
        self.process.terminate()  # SIGTERM to our own child only: the stack stops what it started
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_stack_process(
    state_dir: Path, *, env: dict[str, str] | None = None, extra_args: list[str] | None = None, timeout: float = 240.0
) -> StackProcess:
    """Run `python -m devstack.run` on free ports in state_dir; return once stack.json exists and health answers."""
    api, aws, zoom, lam = free_ports(4)
    output = state_dir / "run.out"
    command = [
        sys.executable, "-m", "devstack.run",
        "--api-port", str(api), "--aws-port", str(aws), "--zoom-port", str(zoom), "--lambda-port", str(lam),
        "--state-dir", str(state_dir), *(extra_args or []),
    ]
    # Section 4 variables of the caller pass through (they replace embedded parts); AWS endpoints do not.
    environment = {k: v for k, v in (env if env is not None else os.environ).items()
                   if not k.startswith("AWS_ENDPOINT_URL")}
    with output.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    stack_json = state_dir / "stack.json"
    deadline = time.monotonic() + timeout
    info: dict[str, Any] | None = None
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the stack exited with {process.returncode}:\n{_tail(output)}")
            if info is None and stack_json.exists():
                loaded = json.loads(stack_json.read_text())
                info = loaded if loaded.get("pid") == process.pid else None
            if info is not None and _healthy(info["api_url"]):
                return StackProcess(process, info)
            time.sleep(0.1)
        raise AssertionError(f"the stack was not up within {timeout:.0f} s:\n{_tail(output)}")
    except BaseException:
        StackProcess(process, {}).stop()
        raise
