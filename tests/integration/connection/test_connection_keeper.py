"""The keeper: refreshes connections whose refresh token is older than 60 days, and nothing else."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.zoom_emulator import EmulatorHandle
from tests.integration.connection.zoom_flow import connect, invoke, new_person, token_calls
from tests.support.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.integration

DAY = 86400
LONG_RUN_MS = 900_000  # the keeper's Lambda timeout
# Enough to show the rate; raise it (e.g. 5000) for a longer measurement.
SCALE = int(os.environ.get("KEEPER_SCALE_CONNECTIONS", "1000"))


@pytest.fixture
def connections(zoom: EmulatorHandle, local_aws: LocalResources) -> LocalResources:
    """An empty connections table: the keeper scans all of it, and other tests' users belong to old emulators."""
    ddb = local_aws.client("dynamodb")
    table = local_aws.tables["ZoomConnectionsTable"]
    for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="user_id"):
        for item in page["Items"]:
            ddb.delete_item(TableName=table, Key={"user_id": item["user_id"]})
    return local_aws


def _age(local_aws: LocalResources, user_id: str, days: float) -> None:
    """The refresh token was issued `days` ago."""
    local_aws.client("dynamodb").update_item(
        TableName=local_aws.tables["ZoomConnectionsTable"],
        Key={"user_id": {"S": user_id}},
        UpdateExpression="SET refresh_issued_at = :then",
        ExpressionAttributeValues={":then": {"N": str(time.time() - days * DAY)}},
    )


def _sealed_generation(user_id: str) -> str:
    from link_zoom.adapters import connections_store

    record = connections_store.get(user_id)
    assert record is not None
    return record.generation


def _run_keeper(keeper_function: Any, remaining_ms: int = LONG_RUN_MS) -> dict[str, Any]:
    summary: dict[str, Any] = invoke(
        keeper_function, {"source": "aws.events"}, FakeLambdaContext(remaining_ms=remaining_ms)
    )
    return summary


def test_the_keeper_refreshes_old_connections_and_leaves_young_ones_alone(
    connections: LocalResources, zoom: EmulatorHandle, oauth_function: Any, keeper_function: Any
) -> None:
    old, older, young = new_person("old"), new_person("older"), new_person("young")
    for person in (old, older, young):
        connect(oauth_function, person)
    _age(connections, old.user_id, 61)
    _age(connections, older.user_id, 89)
    _age(connections, young.user_id, 59)
    generations = {person.user_id: _sealed_generation(person.user_id) for person in (old, older, young)}
    zoom.clear_calls()

    summary = _run_keeper(keeper_function)

    assert summary | {"seconds": 0} == {
        "candidates": 2,
        "refreshed": 2,
        "skipped": 0,
        "lost": 0,
        "failed": 0,
        "stopped_early": False,
        "seconds": 0,
    }
    assert len(token_calls(zoom)) == 2
    assert _sealed_generation(old.user_id) != generations[old.user_id]
    assert _sealed_generation(older.user_id) != generations[older.user_id]
    assert _sealed_generation(young.user_id) == generations[young.user_id]
    # Now all are young: a second run has nothing to do.
    assert _run_keeper(keeper_function)["candidates"] == 0


def test_a_connection_revoked_at_zoom_is_lost_and_removed(
    connections: LocalResources, zoom: EmulatorHandle, oauth_function: Any, keeper_function: Any
) -> None:
    from link_zoom import composition
    from link_zoom.adapters.preferences_store import list_preferences

    gone = new_person("gone")
    connect(oauth_function, gone)
    _age(connections, gone.user_id, 70)
    zoom.state.deauthorize(gone.email)

    summary = _run_keeper(keeper_function)

    assert (summary["lost"], summary["refreshed"], summary["failed"]) == (1, 0, 0)
    assert not composition.connection().connection_status(gone.user_id).connected
    assert list_preferences(gone.user_id) == []


def test_zoom_failing_keeps_the_connection_for_the_next_run(
    connections: LocalResources, zoom: EmulatorHandle, oauth_function: Any, keeper_function: Any
) -> None:
    person = new_person()
    connect(oauth_function, person)
    _age(connections, person.user_id, 61)
    zoom.add_fault("POST", "/oauth/token", 503)

    first = _run_keeper(keeper_function)
    second = _run_keeper(keeper_function)

    assert (first["failed"], first["refreshed"]) == (1, 0)
    assert (second["failed"], second["refreshed"]) == (0, 1)


def test_the_keeper_starts_no_new_work_when_time_runs_low(
    connections: LocalResources, zoom: EmulatorHandle, oauth_function: Any
) -> None:
    from link_zoom import composition

    people = [new_person() for _ in range(4)]
    for person in people:
        connect(oauth_function, person)
        _age(connections, person.user_id, 61)
    budget = iter([LONG_RUN_MS, LONG_RUN_MS])

    summary = composition.connection().refresh_aging_connections(lambda: next(budget, 1_000))

    assert summary.stopped_early is True
    assert (summary.candidates, summary.refreshed) == (2, 2)


def test_the_keeper_and_a_request_racing_make_one_refresh(
    connections: LocalResources, zoom: EmulatorHandle, oauth_function: Any
) -> None:
    from link_zoom import composition
    from link_zoom.adapters.zoom_oauth import current_user

    person = new_person()
    connect(oauth_function, person)
    _age(connections, person.user_id, 61)
    zoom.state.expire_access_tokens(person.email)
    zoom.set_latency(100)
    zoom.clear_calls()
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def keeper() -> None:
        barrier.wait()
        results["keeper"] = composition.connection().refresh_aging_connections(lambda: LONG_RUN_MS)

    def request() -> None:
        barrier.wait()
        results["request"] = composition.connection().call_zoom(person.user_id, lambda token: current_user(token).id)

    threads = [threading.Thread(target=keeper), threading.Thread(target=request)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results["request"]
    assert results["keeper"].lost == 0 and results["keeper"].failed == 0
    assert len(token_calls(zoom)) == 1


def _fake_connection(zoom: EmulatorHandle, index: int, issued_days_ago: float) -> str:
    """A connection with a live grant at the emulator, made without the browser (for numbers, not flows)."""
    from link_zoom.adapters import connections_store, crypto

    redirect_uri = "http://127.0.0.1:3000/v1/zoom/callback"
    user = zoom.state.sign_in(f"scale{index}.{uuid.uuid4().hex[:6]}@corp.example")
    code = zoom.state.issue_code(user, zoom.config.client_id, redirect_uri, None)
    tokens = zoom.state.exchange_code(zoom.config.client_id, code, redirect_uri, None)
    user_id = str(uuid.uuid4())
    now = time.time()
    consented_at = datetime.fromtimestamp(int(now - issued_days_ago * DAY), UTC)
    plaintext = json.dumps({"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]})
    connections_store.put(
        connections_store.ConnectionRecord(
            user_id=user_id,
            zoom_user_id=user.id,
            zoom_account_id=user.account_id,
            sealed=crypto.seal(user_id, plaintext.encode()),
            generation=uuid.uuid4().hex,
            access_expires_at=now - issued_days_ago * DAY + 3599,
            refresh_issued_at=now - issued_days_ago * DAY,
            consented_at=consented_at,
            expires_at=consented_at + timedelta(days=365),
        )
    )
    return user_id


@pytest.mark.timeout(600)
def test_the_keeper_handles_thousands_of_connections_in_one_run(
    connections: LocalResources, zoom: EmulatorHandle, keeper_function: Any
) -> None:
    from link_zoom.adapters import crypto

    young = 200
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: _fake_connection(zoom, i, 61 + i % 20), range(SCALE)))
        list(pool.map(lambda i: _fake_connection(zoom, SCALE + i, 10), range(young)))
    crypto.forget_cached_keys()  # the keeper runs in a cold container
    zoom.clear_calls()

    started = time.monotonic()
    summary = _run_keeper(keeper_function)
    elapsed = time.monotonic() - started

    assert summary["refreshed"] == SCALE and summary["candidates"] == SCALE
    assert summary["failed"] == summary["lost"] == 0 and not summary["stopped_early"]
    assert len(token_calls(zoom)) == SCALE
    rate = SCALE / elapsed
    print(f"\nkeeper: {SCALE} old of {SCALE + young} connections refreshed in {elapsed:.1f} s = {rate:.0f}/s")
    # One process here serves the keeper, the moto server and the emulator; AWS and Zoom would not share it.
    assert elapsed * 1000 < LONG_RUN_MS - 60_000
