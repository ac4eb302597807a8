"""The keeper fanned out, on fakes: the planner queues the due connections only, once each, idempotently; the
refresh worker reports the messages that must come back."""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from link_zoom.deadline import Deadline
from link_zoom.domain.connection import ZoomTokens, ZoomUser
from link_zoom.domain.keeper import Keeper, PacedRefreshes, RefreshFailed, RefreshRequest, refresh_one
from link_zoom.edge.batches import handle_refresh_batch
from tests.support.lambda_context import FakeLambdaContext

DAY = 86400.0
LONG = 900_000


class FakeConnections:
    """Connections by user id with the epoch of their refresh token; scan segments by a stable hash of the id."""

    def __init__(self, ages_days: Mapping[str, float]) -> None:
        now = time.time()
        self.issued = {user_id: now - days * DAY for user_id, days in ages_days.items()}
        self.segments_read: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def refreshed_before(self, cutoff: float, segment: int, segments: int) -> Iterator[tuple[str, float]]:
        with self._lock:
            self.segments_read.append((segment, segments))
        for user_id, issued in sorted(self.issued.items()):
            if zlib.crc32(user_id.encode()) % segments == segment and issued < cutoff:
                yield user_id, issued

    def keep_fresh(self, user_id: str, cutoff: float, deadline: Deadline | None = None) -> str:
        """As Connection.keep_fresh: refreshes only what is still due."""
        if user_id not in self.issued:
            return "lost"
        if self.issued[user_id] >= cutoff:
            return "skipped"
        self.issued[user_id] = time.time()
        return "refreshed"


class FakeQueue:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self._lock = threading.Lock()

    def send(self, bodies: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            self.batches.append([dict(body) for body in bodies])

    @property
    def user_ids(self) -> list[str]:
        return sorted(body["user_id"] for batch in self.batches for body in batch)


def ages(**days: float) -> dict[str, float]:
    return days


def test_the_planner_queues_only_connections_older_than_60_days() -> None:
    # Given connections refreshed 10, 59, 61, 70 and 89 days ago
    store = FakeConnections(ages(a=10, b=59, c=61, d=70, e=89))
    queue = FakeQueue()

    # When the planner runs
    summary = Keeper(store, queue).plan(lambda: LONG, segments=4)

    # Then the three older than 60 days are queued, each once, and the two due for over 2 days count as not reached
    assert queue.user_ids == ["c", "d", "e"]
    assert (summary.due, summary.queued, summary.not_reached, summary.stopped_early) == (3, 3, 2, False)
    assert sorted(store.segments_read) == [(s, 4) for s in range(4)]


def test_the_planner_sends_batches_of_at_most_ten_with_the_cut_off() -> None:
    store = FakeConnections({f"user{i:02}": 61 for i in range(25)})
    queue = FakeQueue()

    Keeper(store, queue).plan(lambda: LONG, segments=1)

    assert [len(batch) for batch in queue.batches] == [10, 10, 5]
    cutoffs = {body["refreshed_before"] for batch in queue.batches for body in batch}
    assert len(cutoffs) == 1 and abs(cutoffs.pop() - (time.time() - 60 * DAY)) < 60


def test_a_second_plan_after_the_workers_ran_queues_nothing() -> None:
    store = FakeConnections(ages(a=61, b=75, c=20))
    queue = FakeQueue()
    keeper = Keeper(store, queue)
    keeper.plan(lambda: LONG, segments=2)
    for body in (body for batch in queue.batches for body in batch):
        refresh_one(store, json.dumps(body), Deadline(60))

    again = FakeQueue()
    summary = Keeper(store, again).plan(lambda: LONG, segments=2)

    assert again.batches == [] and (summary.due, summary.queued) == (0, 0)


def test_a_message_for_a_connection_refreshed_meanwhile_is_skipped() -> None:
    store = FakeConnections(ages(a=61))
    queue = FakeQueue()
    Keeper(store, queue).plan(lambda: LONG)
    first, duplicate = (json.dumps(queue.batches[0][0]),) * 2

    assert refresh_one(store, first, Deadline(60)) == "refreshed"
    assert refresh_one(store, duplicate, Deadline(60)) == "skipped"


def test_the_planner_stops_reading_when_time_runs_low() -> None:
    store = FakeConnections({f"user{i:02}": 61 for i in range(40)})
    queue = FakeQueue()
    budget = iter([LONG, LONG])

    summary = Keeper(store, queue).plan(lambda: next(budget, 1_000), segments=1)

    assert summary.stopped_early is True
    # what was read is queued (the batch in hand included), the rest waits for the next run
    assert summary.queued == summary.due == 30 and len(queue.user_ids) == 30


class Outcomes:
    """keep_fresh answering a fixed outcome per user."""

    def __init__(self, outcomes: Mapping[str, str]) -> None:
        self.outcomes = outcomes
        self.calls: list[str] = []

    def keep_fresh(self, user_id: str, cutoff: float, deadline: Deadline | None = None) -> str:
        self.calls.append(user_id)
        return self.outcomes[user_id]


def test_only_failed_refreshes_raise() -> None:
    connection = Outcomes({"ok": "refreshed", "same": "skipped", "gone": "lost", "down": "failed"})
    body = RefreshRequest("down", 1.0).body()

    with pytest.raises(RefreshFailed):
        refresh_one(connection, json.dumps(body), Deadline(60))
    for user_id in ("ok", "same", "gone"):
        assert refresh_one(connection, json.dumps(RefreshRequest(user_id, 1.0).body()), Deadline(60)) != "failed"
    assert refresh_one(connection, "not json", Deadline(60)) == "unusable"
    assert refresh_one(connection, json.dumps({"user_id": ""}), Deadline(60)) == "unusable"


def sqs_event(bodies: Sequence[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:TokenRefreshQueue",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_the_worker_reports_only_the_failed_messages() -> None:
    connection = Outcomes({"ok": "refreshed", "down": "failed", "gone": "lost", "late": "failed"})
    bodies = [json.dumps(RefreshRequest(u, 1.0).body()) for u in ("ok", "down", "gone", "late")] + ["{}"]

    answer = handle_refresh_batch(sqs_event(bodies), FakeLambdaContext(remaining_ms=60_000), lambda: connection)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert connection.calls == ["ok", "down", "gone", "late"]


def test_an_empty_batch_does_nothing() -> None:
    assert handle_refresh_batch({"Records": []}, FakeLambdaContext(), lambda: Outcomes({})) == {"batchItemFailures": []}


class CountingOAuth:
    def __init__(self) -> None:
        self.refreshed: list[str] = []
        self.revoked: list[str] = []

    def refresh(self, refresh_token: str) -> ZoomTokens:
        self.refreshed.append(refresh_token)
        return ZoomTokens("a", "r", 3599)

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> ZoomTokens:
        raise AssertionError("not paced, not used here")

    def revoke(self, token: str) -> None:
        self.revoked.append(token)

    def current_user(self, access_token: str) -> ZoomUser:
        return ZoomUser("z", None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_a_worker_starts_at_most_ten_refreshes_a_second() -> None:
    inner, clock = CountingOAuth(), FakeClock()
    paced = PacedRefreshes(inner, clock=clock, sleep=clock.sleep)

    for i in range(5):
        paced.refresh(f"r{i}")

    assert inner.refreshed == [f"r{i}" for i in range(5)]
    assert clock.slept == [0.1] * 4  # the first at once, then one every 100 ms
    assert clock.now == pytest.approx(100.4)


def test_refreshes_slower_than_the_pace_are_not_delayed_and_other_calls_pass_straight_through() -> None:
    inner, clock = CountingOAuth(), FakeClock()
    paced = PacedRefreshes(inner, clock=clock, sleep=clock.sleep)

    paced.refresh("r0")
    clock.now += 0.25  # Zoom took 250 ms
    paced.refresh("r1")
    paced.revoke("t")
    paced.revoke("t")

    assert clock.slept == [] and inner.revoked == ["t", "t"]
