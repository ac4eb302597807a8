"""Unit tests run with sockets disabled (tests/support/sockets.py); in-process moto (mock_aws) still works."""

from __future__ import annotations

import pytest

from tests.support.sockets import block_network


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    block_network(monkeypatch)
