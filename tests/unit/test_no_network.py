"""The unit tests' socket guard: no network connection, Unix sockets and in-process moto still work."""

from __future__ import annotations

import socket

import boto3
import pytest
import requests
from moto import mock_aws

from tests.support.sockets import SocketBlocked


def test_a_tcp_connection_is_refused_at_once() -> None:
    with pytest.raises(SocketBlocked), socket.socket() as tcp:
        tcp.connect(("127.0.0.1", 9))
    with pytest.raises(SocketBlocked):
        requests.get("http://127.0.0.1:9/", timeout=1)


def test_unix_sockets_still_connect() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"


def test_in_process_moto_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        assert sqs.create_queue(QueueName="q")["QueueUrl"].endswith("/q")
