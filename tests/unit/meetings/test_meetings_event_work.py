"""Per-event work on fakes: failed stream records, rate limits and sweep failures heal without a person."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from link_zoom.deadline import Deadline
from link_zoom.domain.event_work import (
    GIVE_UP_SENTENCE,
    EventWork,
    FailedRecordsPort,
    UnusableFailureMessage,
    WorkItem,
    WorkQueuePort,
)
from link_zoom.errors import ZoomRateLimited, ZoomUnavailable
from tests.unit.meetings.fakes import USER, World, build_world, image

EVENT: dict[str, Any] = {
    "subject": "Planning",
    "start": "2026-03-01T10:00:00+01:00",
    "end": "2026-03-01T11:00:00+01:00",
    "zoom": True,
}
FAILURE = {"DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "2"}}


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], float]] = []

    def send(self, bodies: list[dict[str, Any]], delay_s: float = 0) -> None:
        self.sent.extend((body, delay_s) for body in bodies)

    def take(self) -> list[tuple[WorkItem, float]]:
        items = [(WorkItem.from_body(body), delay) for body, delay in self.sent]
        self.sent.clear()
        return [(item, delay) for item, delay in items if item is not None]


class FakeFailedRecords:
    def __init__(self, keys: list[tuple[str, str]]) -> None:
        self.keys = keys

    def keys_of(self, failure: Mapping[str, Any]) -> list[tuple[str, str]]:
        return list(self.keys)


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> World:
    world = build_world()
    world.calendar.put(image(USER, "evt-1", **EVENT))
    return world


def work_for(world: World, keys: list[tuple[str, str]] | None = None) -> tuple[EventWork, FakeQueue, Clock]:
    queue, clock = FakeQueue(), Clock()
    ports: tuple[WorkQueuePort, FailedRecordsPort] = (queue, FakeFailedRecords(keys or []))
    return EventWork(world.meetings, *ports, clock=clock, spread=lambda wait: 0.0), queue, clock


def test_a_stream_failure_becomes_one_work_item_per_event(world: World) -> None:
    work, queue, _ = work_for(world, [(USER, "evt-2"), (USER, "evt-1"), (USER, "evt-2")])
    assert work.handle_message(FAILURE, Deadline(60)) == "queued 2"
    assert [item for item, _ in queue.take()] == [WorkItem(USER, "evt-1"), WorkItem(USER, "evt-2")]


def test_a_stream_failure_whose_records_are_gone_is_failed_loudly(world: World) -> None:
    work, queue, _ = work_for(world, [])
    with pytest.raises(UnusableFailureMessage):
        work.handle_message(FAILURE, Deadline(60))
    assert queue.sent == []


def test_work_reconciles_the_event_as_it_is_now(world: World) -> None:
    work, queue, _ = work_for(world)
    assert work.handle_message(WorkItem(USER, "evt-1").body(), Deadline(60)) == "created"
    assert world.calendar.zoom_of(USER, "evt-1").status == "scheduled" and queue.sent == []


def test_a_failure_is_retried_with_growing_delays_then_given_up_in_writing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_WORK_MAX_ATTEMPTS", "4")
    work, queue, _ = work_for(world)
    item, delays = WorkItem(USER, "evt-1"), []
    for _ in range(3):
        world.zoom.fail_next("create", ZoomUnavailable())
        assert work.work_on(item, Deadline(60)) == "retrying"
        ((item, delay),) = queue.take()
        delays.append(delay)
    assert delays == [30, 60, 120] and item.attempt == 3
    world.zoom.fail_next("create", ZoomUnavailable())
    assert work.work_on(item, Deadline(60)) == "failed"
    fields = world.calendar.zoom_of(USER, "evt-1")
    assert (fields.status, fields.error) == ("failed", GIVE_UP_SENTENCE) and queue.sent == []


def test_a_rate_limited_event_waits_for_zooms_retry_after_then_gets_its_meeting(world: World) -> None:
    work, queue, clock = work_for(world)
    world.zoom.fail_next("create", ZoomRateLimited(3600))
    assert work.work_on(WorkItem(USER, "evt-1"), Deadline(60)) == "rate_limited"
    assert world.calendar.zoom_of(USER, "evt-1").status == "rate_limited"
    ((item, delay),) = queue.take()
    assert delay == 3600 and item.not_before == clock.now + 3600  # the queue caps the delay at 15 minutes
    clock.now += 900
    assert work.work_on(item, Deadline(60)) == "waiting", "not due yet: back on the queue, no Zoom call"
    ((item, delay),) = queue.take()
    assert delay == 2700 and world.zoom.count("create") == 1
    clock.now += 2700
    assert work.work_on(item, Deadline(60)) == "created"
    assert world.calendar.zoom_of(USER, "evt-1").status == "scheduled"


def test_work_without_enough_time_left_is_queued_again_at_once(world: World) -> None:
    work, queue, _ = work_for(world)
    assert work.work_on(WorkItem(USER, "evt-1"), Deadline(5)) == "deferred"
    assert queue.take() == [(WorkItem(USER, "evt-1"), 0)] and world.zoom.count("create") == 0


@pytest.mark.parametrize("body", [{}, {"user_id": USER}, {"user_id": USER, "event_id": "e", "attempt": "x"}])
def test_unusable_work_messages_are_dropped_with_a_log(world: World, body: dict[str, Any]) -> None:
    work, queue, _ = work_for(world)
    assert work.handle_message(body, Deadline(60)) == "unusable" and queue.sent == []
