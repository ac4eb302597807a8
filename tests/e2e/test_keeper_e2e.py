"""Through the stack `make run` starts: `make keeper` queues the connections due for a refresh and the stack's SQS
poller hands them to TokenRefreshFunction, which refreshes them; a young connection is left alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import requests

from devstack.bench_stream import _Stack
from devstack.template import ROOT
from tests.e2e.conftest import E2EStack

DAY = 86400


def _connection(stack: E2EStack, user_id: str) -> dict[str, Any]:
    item: dict[str, Any] = stack.aws("dynamodb").get_item(
        TableName=stack.info["tables"]["ZoomConnectionsTable"], Key={"user_id": {"S": user_id}}, ConsistentRead=True
    )["Item"]
    return item


def _age(stack: E2EStack, user_id: str, days: float) -> None:
    stack.aws("dynamodb").update_item(
        TableName=stack.info["tables"]["ZoomConnectionsTable"],
        Key={"user_id": {"S": user_id}},
        UpdateExpression="SET refresh_issued_at = :then",
        ExpressionAttributeValues={":then": {"N": str(time.time() - days * DAY)}},
    )


def _admin_switch(stack: E2EStack, enabled: bool | None = None) -> bool:
    """The feature switch through the admin route, as an admin flips it: the stack's functions see it at once
    (an SSM write behind their backs would wait out their 60 s cache of it)."""
    demo = stack.user("admin")
    session = requests.post(
        f"{stack.api_url}/v1/session", json={"username": demo["username"], "password": demo["password"]}, timeout=30
    )
    assert session.status_code == 201, session.text
    headers = {"Authorization": f"Bearer {session.json()['token']}"}
    url = f"{stack.api_url}/v1/admin/features/zoom"
    if enabled is None:
        answer = requests.get(url, headers=headers, timeout=30)
    else:
        answer = requests.put(url, json={"enabled": enabled}, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["enabled"])


def test_make_keeper_refreshes_due_connections_through_the_refresh_queue(stack: E2EStack) -> None:
    switch = _admin_switch(stack)
    helper = _Stack(stack, requests.Session())
    _admin_switch(stack, True)
    try:
        due, young = str(uuid.uuid4()), str(uuid.uuid4())
        for user_id in (due, young):
            helper.connect(user_id)
    finally:
        _admin_switch(stack, switch)
    _age(stack, due, 61)
    _age(stack, young, 10)
    before = {user_id: _connection(stack, user_id) for user_id in (due, young)}

    command = [
        sys.executable,
        "-m",
        "devstack.run",
        "invoke",
        "TokenKeeperFunction",
        "--state-dir",
        str(stack.state_dir),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queued"] >= 1

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _connection(stack, due)["generation"] != before[due]["generation"]:
            break
        time.sleep(0.2)
    after = _connection(stack, due)
    assert after["generation"] != before[due]["generation"], "TokenRefreshFunction did not refresh the connection"
    assert float(after["refresh_issued_at"]["N"]) > time.time() - 60
    assert _connection(stack, young)["generation"] == before[young]["generation"]
    assert "START RequestId:" in (stack.logs_dir / "TokenRefreshFunction.log").read_text()
