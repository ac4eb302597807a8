"""End-to-end tests drive the stack exactly as `make run` starts it: `python -m devstack.run` in a subprocess.

The `stack` fixture (session) starts it on free ports with its own state dir, waits for its stack.json and
GET /v1/health, hands tests the parsed stack.json, and terminates that process (by its pid) at the end.
The demo directory is shared by the machine, so the stack is told to leave it running (--keep-directory).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack_process import StackProcess, start_stack_process

START_TIMEOUT_S = 240.0  # a fresh machine installs and provisions Samba first


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            # The first test also waits for the stack (and, on a fresh machine, for Samba's provisioning).
            item.add_marker(pytest.mark.timeout(START_TIMEOUT_S + 60))


# The stack in its child process: stack.json (`info`), `state_dir`, `api_url`, `aws(service)`, `user(role)`, ...
E2EStack = StackProcess


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, demo_directory: object) -> Iterator[E2EStack]:
    # The session holds the directory (demo_directory), so the stack reuses it and leaves it to the session.
    running = start_stack_process(
        tmp_path_factory.mktemp("stack"), extra_args=["--keep-directory"], timeout=START_TIMEOUT_S
    )
    try:
        yield running
    finally:
        running.stop()
