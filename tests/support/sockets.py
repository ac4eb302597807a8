"""Unit tests run with sockets disabled: a connect to anything but a Unix socket fails at once, so a unit test
that would reach a network service (moto server, Samba, the emulator, AWS) fails instead of waiting on it.
In-process moto (mock_aws) answers inside botocore and opens no socket."""

from __future__ import annotations

import socket
from typing import Any

import pytest


class SocketBlocked(RuntimeError):
    """A unit test tried to open a network connection."""


def _guard(original: Any) -> Any:
    def connect(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX:
            return original(self, address)
        raise SocketBlocked(f"unit tests run without network: connect to {address!r} refused")

    return connect


def block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guard(socket.socket.connect_ex))
