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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.zoom_emulator import EmulatorHandle
from tests.integration.connection.zoom_flow import Person, connect, invoke, new_person, token_calls
from tests.support.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.integration

DAY = 86400
PLANNER_MS = 900_000  # TokenKeeperFunction's timeout
WORKER_MS = 180_000  # TokenRefreshFunction's timeout
# Enough to show the path at scale; raise it (e.g. 5000) for a longer run.
SCALE = int(os.environ.get("KEEPER_SCALE_CONNECTIONS", "300"))


@dataclass
class Keeper:
    """The keeper's two functions over the connections table and TokenRefreshQueue, with Zoom and the consent."""

    aws: LocalResources
    zoom: EmulatorHandle
    oauth_function: Any
    keeper_function: Any
    refresh_function: Any

    def connected(self, name: str = "user", days: float = 61) -> Person:
        """A person connected through the consent flow, their refresh token issued `days` ago."""
        person = new_person(name)
        connect(self.oauth_function, person)
        self.age(person.user_id, days)
        return person

    def age(self, user_id: str, days: float) -> None:
        """The refresh token was issued `days` ago."""
        self.aws.client("dynamodb").update_item(
            TableName=self.aws.tables["ZoomConnectionsTable"],
            Key={"user_id": {"S": user_id}},
            UpdateExpression="SET refresh_issued_at = :then",
            ExpressionAttributeValues={":then": {"N": str(time.time() - days * DAY)}},
        )

    def plan(self) -> dict[str, Any]:
        """TokenKeeperFunction run by its schedule; its summary."""
        summary: dict[str, Any] = invoke(
            self.keeper_function, {"source": "aws.events"}, FakeLambdaContext(remaining_ms=PLANNER_MS)
        )
        return summary

    def receive(self, most: int = 10) -> list[dict[str, Any]]:
        answer = self.aws.client("sqs").receive_message(
            QueueUrl=self.aws.queues["TokenRefreshQueue"], MaxNumberOfMessages=most, VisibilityTimeout=120
        )
        messages: list[dict[str, Any]] = answer.get("Messages") or []
        return messages

    def deliver(self, messages: list[dict[str, Any]], remaining_ms: int = WORKER_MS) -> dict[str, Any]:
        """One SQS batch to TokenRefreshFunction; its answer."""
        event = {"Records": [_sqs_record(m) for m in messages]}
        answer: dict[str, Any] = invoke(self.refresh_function, event, FakeLambdaContext(remaining_ms=remaining_ms))
        return answer

    def work(self, remaining_ms: int = WORKER_MS) -> list[str]:
        """Lambda's SQS event source, once over the queue: batches of 10 to the worker, what succeeded deleted.
        Returns the ids of the messages the worker reported failed (they stay, invisible, as in SQS)."""
        failed: list[str] = []
        while messages := self.receive():
            answer = self.deliver(messages, remaining_ms)
            failures = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
            failed += sorted(failures)
            self._delete([message for message in messages if message["MessageId"] not in failures])
        return failed

    def empty(self) -> None:
        """An empty connections table and refresh queue: the planner scans all of the table."""
        ddb = self.aws.client("dynamodb")
        table = self.aws.tables["ZoomConnectionsTable"]
        for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="user_id"):
            for item in page["Items"]:
                ddb.delete_item(TableName=table, Key={"user_id": item["user_id"]})
        # (PurgeQueue is allowed once a minute: the left-overs are received and deleted instead)
        while left := self.receive():
            self._delete(left)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        sqs, url = self.aws.client("sqs"), self.aws.queues["TokenRefreshQueue"]
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def keeper(
    zoom: EmulatorHandle, local_aws: LocalResources, oauth_function: Any, keeper_function: Any, refresh_function: Any
) -> Keeper:
    """The keeper's world, its table and queue emptied first."""
    world = Keeper(local_aws, zoom, oauth_function, keeper_function, refresh_function)
    world.empty()
    return world


def _sealed_generation(user_id: str) -> str:
    from link_zoom.adapters import connections_store

    record = connections_store.get(user_id)
    assert record is not None
    return record.generation


def _refreshed_within(user_id: str, seconds: float) -> bool:
    from link_zoom.adapters import connections_store

    record = connections_store.get(user_id)
    return record is not None and record.refresh_issued_at > time.time() - seconds


def _sqs_record(message: dict[str, Any]) -> dict[str, Any]:
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


def test_due_connections_are_queued_and_refreshed_and_young_ones_left_alone(keeper: Keeper) -> None:
    old, older, young = keeper.connected("old", 61), keeper.connected("older", 89), keeper.connected("young", 59)
    generations = {person.user_id: _sealed_generation(person.user_id) for person in (old, older, young)}
    keeper.zoom.clear_calls()

    summary = keeper.plan()

    assert summary | {"seconds": 0} == {"due": 2, "queued": 2, "not_reached": 1, "stopped_early": False, "seconds": 0}
    assert token_calls(keeper.zoom) == []  # the planner only queues
    assert keeper.work() == []
    assert len(token_calls(keeper.zoom)) == 2
    assert _sealed_generation(old.user_id) != generations[old.user_id]
    assert _sealed_generation(older.user_id) != generations[older.user_id]
    assert _sealed_generation(young.user_id) == generations[young.user_id]
    # Now all are young: the next plan queues nothing.
    assert keeper.plan()["due"] == 0


def test_planning_twice_before_the_workers_run_refreshes_each_connection_once(keeper: Keeper) -> None:
    keeper.connected()
    keeper.zoom.clear_calls()

    assert keeper.plan()["queued"] == 1
    assert keeper.plan()["queued"] == 1  # still due: queued again

    assert keeper.work() == []
    assert len(token_calls(keeper.zoom)) == 1  # the second message found it refreshed: one read, no call


def test_the_same_connection_on_two_workers_at_once_is_refreshed_once(keeper: Keeper) -> None:
    keeper.connected()
    keeper.plan()
    keeper.plan()
    first, second = keeper.receive(1), keeper.receive(1)
    assert len(first) == len(second) == 1
    keeper.zoom.set_latency(100)
    keeper.zoom.clear_calls()
    barrier = threading.Barrier(2)

    def worker(messages: list[dict[str, Any]]) -> dict[str, Any]:
        barrier.wait()
        return keeper.deliver(messages)

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(worker, [first, second]))

    assert answers == [{"batchItemFailures": []}] * 2
    assert len(token_calls(keeper.zoom)) == 1


def test_a_connection_revoked_at_zoom_is_lost_and_removed(keeper: Keeper) -> None:
    from link_zoom import composition
    from link_zoom.adapters.preferences_store import list_preferences

    gone = keeper.connected("gone", 70)
    keeper.zoom.state.deauthorize(gone.email)

    keeper.plan()

    assert keeper.work() == []  # nothing to retry: the message is done
    assert not composition.connection().connection_status(gone.user_id).connected
    assert list_preferences(gone.user_id) == []


def test_zoom_failing_keeps_the_connection_and_its_message_for_a_retry(keeper: Keeper) -> None:
    person = keeper.connected()
    generation = _sealed_generation(person.user_id)
    keeper.zoom.add_fault("POST", "/oauth/token", 503)

    keeper.plan()
    assert len(keeper.work()) == 1  # reported failed: SQS gives it again later
    assert _sealed_generation(person.user_id) == generation

    keeper.plan()  # the next run (the failed message is still invisible)
    assert keeper.work() == []
    assert _sealed_generation(person.user_id) != generation


def test_a_worker_without_the_time_to_store_an_answer_starts_no_refresh(keeper: Keeper) -> None:
    person = keeper.connected()
    generation = _sealed_generation(person.user_id)
    keeper.zoom.clear_calls()
    keeper.plan()

    failed = keeper.work(remaining_ms=10_000)  # less than a refresh may need (17 s)

    assert len(failed) == 1 and token_calls(keeper.zoom) == []
    assert _sealed_generation(person.user_id) == generation


def test_a_worker_and_a_request_racing_make_one_refresh(keeper: Keeper) -> None:
    from link_zoom import composition
    from link_zoom.adapters.zoom_oauth import current_user

    person = keeper.connected()
    keeper.zoom.state.expire_access_tokens(person.email)
    keeper.plan()
    keeper.zoom.set_latency(100)
    keeper.zoom.clear_calls()
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def work() -> None:
        barrier.wait()
        results["keeper"] = keeper.work()

    def request() -> None:
        barrier.wait()
        results["request"] = composition.connection().call_zoom(person.user_id, lambda token: current_user(token).id)

    threads = [threading.Thread(target=work), threading.Thread(target=request)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results["request"]
    assert results["keeper"] == []
    assert len(token_calls(keeper.zoom)) == 1


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
def test_hundreds_of_due_connections_are_all_refreshed_through_the_queue(keeper: Keeper) -> None:
    from link_zoom.adapters import crypto

    young = 100
    with ThreadPoolExecutor(max_workers=8) as pool:
        due = set(pool.map(lambda i: _fake_connection(keeper.zoom, i, 61 + i % 20), range(SCALE)))
        list(pool.map(lambda i: _fake_connection(keeper.zoom, SCALE + i, 10), range(young)))
    crypto.forget_cached_keys()  # the workers run in a cold container
    keeper.zoom.clear_calls()

    summary = keeper.plan()
    started = time.monotonic()
    failed = keeper.work()
    elapsed = time.monotonic() - started

    assert (summary["due"], summary["queued"], summary["stopped_early"]) == (SCALE, SCALE, False)
    assert failed == []
    assert len(token_calls(keeper.zoom)) == SCALE
    assert all(_refreshed_within(user_id, elapsed + 60) for user_id in due)
    print(
        f"\nkeeper: planned {SCALE} of {SCALE + young} in {summary['seconds']} s; one worker refreshed them in "
        f"{elapsed:.1f} s = {SCALE / elapsed:.1f}/s"
    )
