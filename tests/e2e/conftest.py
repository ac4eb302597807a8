"""End-to-end tests drive the stack exactly as `make run` starts it: `python -m devstack.run` in a subprocess.

The `stack` fixture (session) starts it on free ports with its own state dir, waits for its stack.json and
GET /v1/health, hands tests the parsed stack.json, and terminates that process (by its pid) at the end.
The demo directory is shared by the machine, so the stack is told to leave it running (--keep-directory).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.aws import aws_client
from tests.integration.devstack.support import start_stack_process

START_TIMEOUT_S = 240.0  # a fresh machine installs and provisions Samba first


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            # The first test also waits for the stack (and, on a fresh machine, for Samba's provisioning).
            item.add_marker(pytest.mark.timeout(START_TIMEOUT_S + 60))


@dataclass(frozen=True)
class E2EStack:
    info: dict[str, Any]  # the parsed stack.json
    state_dir: Path

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

    def user(self, role: str) -> dict[str, str]:
        """The demo user with this role: admin, user or disabled (username, password, upn, display_name)."""
        return next(u for u in self.demo_users if u["role"] == role)

    def aws(self, service: str) -> Any:
        """A boto3 client of the stack's moto server."""
        return aws_client(service, self.aws_endpoint_url)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    state_dir = tmp_path_factory.mktemp("stack")
    running = start_stack_process(state_dir, extra_args=["--keep-directory"], timeout=START_TIMEOUT_S)
    try:
        yield E2EStack(info=running.info, state_dir=state_dir)
    finally:
        running.stop()
