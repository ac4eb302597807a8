"""The local stack as a child process: `python -m devstack.run` on free ports, for tests and benchmarks.

    with stack_process(state_dir) as stack:   # waits for stack.json and GET /v1/health
        stack.api_url, stack.aws("dynamodb"), stack.user("user")

    running = start_stack_process(state_dir, extra_args=["--keep-directory"]); ...; running.stop()

It starts the stack on free ports with its own state dir, waits for the stack.json this very process wrote and
for GET /v1/health, and terminates that process (by its pid, SIGTERM, then SIGKILL) when stopped: the stack
stops what it started. One implementation for the e2e, devstack and resilience tests and for `make bench`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.aws import aws_client
from devstack.template import ROOT

START_TIMEOUT_S = 240.0  # a fresh machine installs and provisions Samba first
STOP_TIMEOUT_S = 20.0


class StackStartError(RuntimeError):
    """The stack exited or did not answer in time; the message ends with the tail of its output."""


@dataclass
class StackProcess:
    """A stack running in a child process: the process, its parsed stack.json and where it keeps its state."""

    process: subprocess.Popen[bytes]
    info: dict[str, Any]  # the parsed stack.json
    state_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def aws_endpoint_url(self) -> str:
        return str(self.info["aws_endpoint_url"])

    @property
    def zoom_emulator_url(self) -> str | None:
        return self.info.get("zoom_emulator_url")

    @property
    def demo_users(self) -> list[dict[str, str]]:
        return list(self.info.get("demo_users") or [])

    @property
    def logs_dir(self) -> Path:
        return Path(self.info["logs_dir"])

    @property
    def output(self) -> Path:
        """What the process printed (stdout and stderr)."""
        return self.state_dir / "run.out"

    def user(self, role: str) -> dict[str, str]:
        """The demo user with this role: admin, user or disabled (username, password, upn, display_name)."""
        return next(u for u in self.demo_users if u["role"] == role)

    def aws(self, service: str) -> Any:
        """A boto3 client of the stack's moto server."""
        return aws_client(service, self.aws_endpoint_url)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        self.process.terminate()  # SIGTERM to our own child only: the stack stops what it started
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports nobody listens on right now (bound together, so they differ, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/v1/health", timeout=2) as answer:  # nosec B310  # local API URL
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no output)"


def child_environment(environ: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """The caller's environment for the stack, with `overrides`: contract section 4 variables pass through
    (they replace embedded parts)."""
    env = dict(os.environ if environ is None else environ)
    env.update(overrides)
    return env


def start_stack_process(
    state_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = START_TIMEOUT_S,
    ports: Sequence[int] | None = None,
    launcher: Sequence[str] = (),
) -> StackProcess:
    """Runs `python -m devstack.run` on free ports with `state_dir` as its state; returns once its stack.json is
    written and GET /v1/health answers (StackStartError if it exits or is not up in time). AWS endpoint
    variables of `env` (default: this process's environment) are dropped: the stack has its own moto server.
    `ports` (api, aws, zoom, lambda) instead of free ones, e.g. to restart on the same ports. `launcher` goes
    before the command (the bench's `taskset -c 0`)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    api, aws, zoom, lam = ports or free_ports(4)
    output = state_dir / "run.out"
    command = [
        *launcher,
        sys.executable,
        "-m",
        "devstack.run",
        "--api-port",
        str(api),
        "--aws-port",
        str(aws),
        "--zoom-port",
        str(zoom),
        "--lambda-port",
        str(lam),
        "--state-dir",
        str(state_dir),
        *extra_args,
    ]
    environment = {
        k: v for k, v in (os.environ if env is None else env).items() if not k.startswith("AWS_ENDPOINT_URL")
    }
    with output.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    running = StackProcess(process, {}, state_dir)
    try:
        running.info = _wait_until_up(process, state_dir / "stack.json", output, timeout)
    except BaseException:
        running.stop()
        raise
    return running


@contextlib.contextmanager
def stack_process(
    state_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    start_timeout_s: float = START_TIMEOUT_S,
    keep_directory: bool = True,
) -> Iterator[StackProcess]:
    """The stack for the `with` block. The demo directory is shared by the machine: by default the stack is
    told to leave it running."""
    running = start_stack_process(
        state_dir, env=env, extra_args=("--keep-directory",) if keep_directory else (), timeout=start_timeout_s
    )
    try:
        yield running
    finally:
        running.stop()


def _wait_until_up(
    process: subprocess.Popen[bytes], stack_json: Path, output: Path, timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    info: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackStartError(f"the stack exited with {process.returncode}:\n{tail(output)}")
        if info is None and stack_json.exists():
            with contextlib.suppress(ValueError, OSError):
                loaded = json.loads(stack_json.read_text())
                info = loaded if loaded.get("pid") == process.pid else None
        if info is not None and healthy(info["api_url"]):
            return info
        time.sleep(0.1)
    raise StackStartError(f"the stack was not up within {timeout_s:.0f} s:\n{tail(output)}")
