"""The stack's local AWS in a process of its own: it serves, gives the admin its well-known key, and never
outlives the stack."""

from __future__ import annotations

import time

import boto3
import pytest

from devstack.aws import REGION, MotoServer, start_moto_process


def _client(service: str, server: MotoServer, keys: tuple[str, str] = ("local", "local")) -> object:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
    )


def _gone(server: MotoServer, within_s: float = 10.0) -> bool:
    assert server._process is not None
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if server._process.poll() is not None:
            return True
        time.sleep(0.05)
    return False


def test_the_local_aws_serves_from_its_own_process_and_stops_with_the_stack() -> None:
    server = start_moto_process()
    try:
        ddb = _client("dynamodb", server)
        ddb.create_table(  # type: ignore[attr-defined]
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        assert ddb.list_tables()["TableNames"] == ["t"]  # type: ignore[attr-defined]
    finally:
        server.stop()
    assert _gone(server, within_s=0.1)


def test_it_ends_when_the_stack_is_gone_however_it_ended() -> None:
    server = start_moto_process()
    assert server._process is not None and server._process.stdin is not None
    server._process.stdin.close()  # what the stack's death does to the pipe
    assert _gone(server)


def test_the_admin_gets_the_well_known_key_and_iam_is_enforced() -> None:
    from devstack.iam import ADMIN_USER, _ensure_admin, set_enforcement

    server = start_moto_process()
    try:
        iam = _client("iam", server)
        _ensure_admin(iam)
        set_enforcement(server.endpoint_url, True)
        admin = _client("iam", server).get_user(UserName=ADMIN_USER)  # type: ignore[attr-defined]
        assert admin["User"]["UserName"] == ADMIN_USER
        stranger = _client("sqs", server, ("AKIASTRANGER00000000", "nope"))
        with pytest.raises(Exception, match=r"InvalidClientTokenId|security token"):
            stranger.list_queues()  # type: ignore[attr-defined]
    finally:
        server.stop()
