"""`make run` right after `make run`: the port probe ignores TIME_WAIT sockets but still reports a live listener."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

import pytest

from devstack.run import ensure_free
from devstack.stack_process import free_ports, start_stack_process

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"


def _port_left_in_time_wait() -> int:
    """A port whose server closed a connection first and then stopped listening: the kernel keeps TIME_WAIT."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        client = socket.create_connection((HOST, port), timeout=5)
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end of the connection goes to TIME_WAIT
        client.recv(1)
        client.close()
    return port


def test_a_port_in_time_wait_is_free_for_a_restart() -> None:
    # Given a port that the last run's server closed connections on
    port = _port_left_in_time_wait()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind((HOST, port))  # the condition is real: a bind without SO_REUSEADDR trips over it

    # When the stack probes it, Then it is free
    ensure_free(HOST, port, "--api-port")


def test_a_port_held_by_a_live_listener_is_reported_busy() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(OSError, match=rf"127.0.0.1:{port} is in use.*--aws-port"):
            ensure_free(HOST, port, "--aws-port")


def test_the_stack_restarts_at_once_on_the_same_ports(tmp_path: Path) -> None:
    # Given a stack that served a request whose connection its gateway closed, then stopped
    ports = free_ports(4)
    first = start_stack_process(tmp_path / "first", extra_args=["--no-directory"], timeout=90, ports=ports)
    try:
        connection = http.client.HTTPConnection(HOST, ports[0], timeout=10)
        connection.request("GET", "/v1/health", headers={"Connection": "close"})
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        first.stop()

    # When it is started again right away on the same ports, Then it comes up
    second = start_stack_process(tmp_path / "second", extra_args=["--no-directory"], timeout=90, ports=ports)
    second.stop()
