"""The keeper fanned out, through the moto server (template.yaml's table and TokenRefreshQueue) and the Zoom
emulator: TokenKeeperFunction queues the connections whose refresh token is older than 60 days, TokenRefreshFunction
refreshes them from the queue, and nothing else is touched."""

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
PLANNER_MS = 900_000  # TokenKeeperFunction's timeout
WORKER_MS = 180_000  # TokenRefreshFunction's timeout
# Enough to show the path at scale; raise it (e.g. 5000) for a longer run.
SCALE = int(os.environ.get("KEEPER_SCALE_CONNECTIONS", "300"))


@pytest.fixture
def connections(zoom: EmulatorHandle, local_aws: LocalResources) -> LocalResources:
    """An empty connections table and refresh queue: the planner scans all of the table."""
    ddb = local_aws.client("dynamodb")
    table = local_aws.tables["ZoomConnectionsTable"]
    for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="user_id"):
        for item in page["Items"]:
            ddb.delete_item(TableName=table, Key={"user_id": item["user_id"]})
    # (PurgeQueue is allowed once a minute: the left-overs are received and deleted instead)
    while left := _receive(local_aws):
        for message in left:
            local_aws.client("sqs").delete_message(
                QueueUrl=local_aws.queues["TokenRefreshQueue"], ReceiptHandle=message["ReceiptHandle"]
            )
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


def _refreshed_within(user_id: str, seconds: float) -> bool:
    from link_zoom.adapters import connections_store

    record = connections_store.get(user_id)
    return record is not None and record.refresh_issued_at > time.time() - seconds


def _plan(keeper_function: Any) -> dict[str, Any]:
    summary: dict[str, Any] = invoke(
        keeper_function, {"source": "aws.events"}, FakeLambdaContext(remaining_ms=PLANNER_MS)
    )
    return summary


def _sqs_record(local_aws: LocalResources, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:TokenRefreshQueue",
        "awsRegion": "us-east-1",
    }


def _receive(local_aws: LocalResources, most: int = 10) -> list[dict[str, Any]]:
    answer = local_aws.client("sqs").receive_message(
        QueueUrl=local_aws.queues["TokenRefreshQueue"], MaxNumberOfMessages=most, VisibilityTimeout=120
    )
    messages: list[dict[str, Any]] = answer.get("Messages") or []
    return messages


def _work(local_aws: LocalResources, refresh_function: Any, remaining_ms: int = WORKER_MS) -> list[str]:
    """Lambda's SQS event source, once over the queue: batches of 10 to the worker, what succeeded deleted.
    Returns the ids of the messages the worker reported failed (they stay, invisible, as in SQS)."""
    sqs, url = local_aws.client("sqs"), local_aws.queues["TokenRefreshQueue"]
    failed: list[str] = []
    while messages := _receive(local_aws):
        event = {"Records": [_sqs_record(local_aws, m) for m in messages]}
        answer = invoke(refresh_function, event, FakeLambdaContext(remaining_ms=remaining_ms))
        failures = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        failed += sorted(failures)
        for message in messages:
            if message["MessageId"] not in failures:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return failed


def test_due_connections_are_queued_and_refreshed_and_young_ones_left_alone(
    connections: LocalResources,
    zoom: EmulatorHandle,
    oauth_function: Any,
    keeper_function: Any,
    refresh_function: Any,
) -> None:
    old, older, young = new_person("old"), new_person("older"), new_person("young")
    for person in (old, older, young):
        connect(oauth_function, person)
    _age(connections, old.user_id, 61)
    _age(connections, older.user_id, 89)
    _age(connections, young.user_id, 59)
    generations = {person.user_id: _sealed_generation(person.user_id) for person in (old, older, young)}
    zoom.clear_calls()

    summary = _plan(keeper_function)

    assert summary | {"seconds": 0} == {"due": 2, "queued": 2, "not_reached": 1, "stopped_early": False, "seconds": 0}
    assert token_calls(zoom) == []  # the planner only queues
    assert _work(connections, refresh_function) == []
    assert len(token_calls(zoom)) == 2
    assert _sealed_generation(old.user_id) != generations[old.user_id]
    assert _sealed_generation(older.user_id) != generations[older.user_id]
    assert _sealed_generation(young.user_id) == generations[young.user_id]
    # Now all are young: the next plan queues nothing.
    assert _plan(keeper_function)["due"] == 0


def test_planning_twice_before_the_workers_run_refreshes_each_connection_once(
    connections: LocalResources,
    zoom: EmulatorHandle,
    oauth_function: Any,
    keeper_function: Any,
    refresh_function: Any,
) -> None:
    person = new_person()
    connect(oauth_function, person)
    _age(connections, person.user_id, 61)
    zoom.clear_calls()

    assert _plan(keeper_function)["queued"] == 1
    assert _plan(keeper_function)["queued"] == 1  # still due: queued again

    assert _work(connections, refresh_function) == []
    assert len(token_calls(zoom)) == 1  # the second message found it refreshed: one read, no call


def test_the_same_connection_on_two_workers_at_once_is_refreshed_once(
    connections: LocalResources,
    zoom: EmulatorHandle,
    oauth_function: Any,
    keeper_function: Any,
    refresh_function: Any,
) -> None:
    person = new_person()
    connect(oauth_function, person)
    _age(connections, person.user_id, 61)
    _plan(keeper_function)
    _plan(keeper_function)
    first, second = _receive(connections, 1), _receive(connections, 1)
    assert len(first) == len(second) == 1
    zoom.set_latency(100)
    zoom.clear_calls()
    barrier = threading.Barrier(2)

    def worker(messages: list[dict[str, Any]]) -> dict[str, Any]:
        barrier.wait()
        event = {"Records": [_sqs_record(connections, m) for m in messages]}
        answer: dict[str, Any] = invoke(refresh_function, event, FakeLambdaContext(remaining_ms=WORKER_MS))
        return answer

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(worker, [first, second]))

    assert answers == [{"batchItemFailures": []}] * 2
    assert len(token_calls(zoom)) == 1


def test_a_connection_revoked_at_zoom_is_lost_and_removed(
    connections: LocalResources,
    zoom: EmulatorHandle,
    oauth_function: Any,
    keeper_function: Any,
    refresh_function: Any,
) -> None:
    from link_zoom import composition
    from link_zoom.adapters.preferences_store import list_preferences

    gone = new_person("gone")
    connect(oauth_function, gone)
    _age(connections, gone.user_id, 70)
    zoom.state.deauthorize(gone.email)

    _plan(keeper_function)

    assert _work(connections, refresh_function) == []  # nothing to retry: the message is done
    assert not composition.connection().connection_status(gone.user_id).connected
    assert list_preferences(gone.user_id) == []


def test_zoom_failing_keeps_the_connection_and_its_message_for_a_retry(
    connections: LocalResources,
    zoom: EmulatorHandle,
    oauth_function: Any,
    keeper_function: Any,
    refresh_function: Any,
) -> None:
    person = new_person()
    connect(oauth_function, person)
    _age(connections, person.user_id, 61)
    generation = _sealed_generation(person.user_id)
    zoom.add_fault("POST", "/oauth/token", 503)

    _plan(keeper_function)
    assert len(_work(connections, refresh_function)) == 1  # reported failed: SQS gives it again later
    assert _sealed_generation(person.user_id) == generation

    _plan(keeper_function)  # the next run (the failed message is still invisible)
    assert _work(connections, refresh_function) == []
    assert _sealed_generation(person.user_id) != generation


def test_a_worker_without_the_time_to_store_an_answer_starts_no_refresh(
    connections: LocalResources,
    zoom: EmulatorHandle,
    oauth_function: Any,
    keeper_function: Any,
    refresh_function: Any,
) -> None:
    person = new_person()
    connect(oauth_function, person)
    _age(connections, person.user_id, 61)
    generation = _sealed_generation(person.user_id)
    zoom.clear_calls()
    _plan(keeper_function)

    failed = _work(connections, refresh_function, remaining_ms=10_000)  # less than a refresh may need (17 s)

    assert len(failed) == 1 and token_calls(zoom) == []
    assert _sealed_generation(person.user_id) == generation


def test_a_worker_and_a_request_racing_make_one_refresh(
    connections: LocalResources,
    zoom: EmulatorHandle,
    oauth_function: Any,
    keeper_function: Any,
    refresh_function: Any,
) -> None:
    from link_zoom import composition
    from link_zoom.adapters.zoom_oauth import current_user

    person = new_person()
    connect(oauth_function, person)
    _age(connections, person.user_id, 61)
    zoom.state.expire_access_tokens(person.email)
    _plan(keeper_function)
    zoom.set_latency(100)
    zoom.clear_calls()
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def keeper() -> None:
        barrier.wait()
        results["keeper"] = _work(connections, refresh_function)

    def request() -> None:
        barrier.wait()
        results["request"] = composition.connection().call_zoom(person.user_id, lambda token: current_user(token).id)

    threads = [threading.Thread(target=keeper), threading.Thread(target=request)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results["request"]
    assert results["keeper"] == []
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
def test_hundreds_of_due_connections_are_all_refreshed_through_the_queue(
    connections: LocalResources, zoom: EmulatorHandle, keeper_function: Any, refresh_function: Any
) -> None:
    from link_zoom.adapters import crypto

    young = 100
    with ThreadPoolExecutor(max_workers=8) as pool:
        due = set(pool.map(lambda i: _fake_connection(zoom, i, 61 + i % 20), range(SCALE)))
        list(pool.map(lambda i: _fake_connection(zoom, SCALE + i, 10), range(young)))
    crypto.forget_cached_keys()  # the workers run in a cold container
    zoom.clear_calls()

    summary = _plan(keeper_function)
    started = time.monotonic()
    failed = _work(connections, refresh_function)
    elapsed = time.monotonic() - started

    assert (summary["due"], summary["queued"], summary["stopped_early"]) == (SCALE, SCALE, False)
    assert failed == []
    assert len(token_calls(zoom)) == SCALE
    assert all(_refreshed_within(user_id, elapsed + 60) for user_id in due)
    print(
        f"\nkeeper: planned {SCALE} of {SCALE + young} in {summary['seconds']} s; one worker refreshed them in "
        f"{elapsed:.1f} s = {SCALE / elapsed:.1f}/s"
    )
