"""The emulator's own tests: one emulator per module, reset for each test, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_emulator import Receiver  # the sibling module's helper

from devstack.settings import LOCAL_ZOOM
from devstack.zoom_emulator import EmulatorHandle, start_emulator


@pytest.fixture(scope="module")
def running() -> Iterator[EmulatorHandle]:
    handle = start_emulator(port=0)
    yield handle
    handle.stop()


@pytest.fixture
def emu(running: EmulatorHandle) -> EmulatorHandle:
    running.reset()
    return running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver(LOCAL_ZOOM.webhook_secret)
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()
