"""The user's daily Zoom quota on fakes: once Zoom says it is used up, creates and updates wait for the reset
without a call; deletes never wait; a per-second limit is not remembered; the marker never outlives the reset."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from link_zoom.deadline import Deadline
from link_zoom.domain.event_work import MAX_RESET_SPREAD_S, EventWork, WorkItem, reset_spread
from link_zoom.domain.meetings import ComposeLinkRequest
from link_zoom.domain.schedule import Schedule
from link_zoom.domain.zoom_quota import ZoomQuota
from link_zoom.errors import ZoomRateLimited
from tests.unit.meetings.fakes import OTHER_USER, USER, FakeQuotaMarkers, FakeZoom, World, build_world, image

EVENT: dict[str, Any] = {
    "subject": "Planning",
    "start": "2099-03-01T10:00:00+01:00",
    "end": "2099-03-01T11:00:00+01:00",
    "zoom": True,
}
DAILY = 3600  # seconds to Zoom's reset in these tests


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class QuotaZoom(FakeZoom):
    """A Zoom that counts creates and updates per user day as Zoom does: over `limit`, a daily-limit 429 (with the
    seconds left to the reset) and nothing done; a new day starts when the clock passes the reset."""

    def __init__(self, clock: Clock, limit: int) -> None:
        super().__init__()
        self.clock, self.limit, self.used, self.refused = clock, limit, 0, 0
        self.reset_at = clock.now + DAILY
        self.spend_lock = threading.Lock()

    def _spend(self) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)  # the call is on its way: others may be sent meanwhile
        with self.spend_lock:
            if self.clock.now >= self.reset_at:
                self.used, self.reset_at = 0, self.reset_at + 86400
            if self.used >= self.limit:
                self.refused += 1
                raise ZoomRateLimited(int(self.reset_at - self.clock.now), daily_limit=True)
            self.used += 1

    def create(self, access_token: str, schedule: Schedule, deadline: Deadline, reference: str | None = None) -> Any:
        self._spend()
        return super().create(access_token, schedule, deadline, reference)

    def update(self, access_token: str, meeting_id: str, schedule: Schedule, deadline: Deadline) -> None:
        self._spend()
        super().update(access_token, meeting_id, schedule, deadline)


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], float]] = []

    def send(self, bodies: list[dict[str, Any]], delay_s: float = 0) -> None:
        self.sent.extend((body, delay_s) for body in bodies)

    def take(self) -> list[WorkItem]:
        items = [WorkItem.from_body(body) for body, _ in self.sent]
        self.sent.clear()
        return [item for item in items if item is not None]


class NoFailures:
    def keys_of(self, failure: Mapping[str, Any]) -> list[tuple[str, str]]:
        return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


def limited_world(clock: Clock, limit: int = 1) -> tuple[World, QuotaZoom]:
    world = build_world(clock)
    zoom = QuotaZoom(clock, limit)
    world.zoom = world.meetings.zoom = zoom
    return world, zoom


def put(world: World, event_id: str, **changes: Any) -> None:
    world.calendar.put(image(USER, event_id, **{**EVENT, **changes}))


def put_40_events(world: World) -> list[str]:
    events = [f"evt-{n:02}" for n in range(40)]
    for event_id in events:
        put(world, event_id)
    return events


def reconcile_on_16_workers(world: World, events: list[str]) -> list[str]:
    """The user's `events` reconciled by 16 threads at once; each one's outcome, a Zoom 429 as "rate_limited"."""

    def reconcile(event_id: str) -> str:
        try:
            return world.meetings.reconcile_event(USER, event_id, Deadline(60))
        except ZoomRateLimited:
            return "rate_limited"

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(reconcile, events))


def test_after_the_daily_limit_the_users_next_event_waits_without_a_call_or_a_claim(clock: Clock) -> None:
    world, zoom = limited_world(clock)
    for event_id in ("evt-1", "evt-2", "evt-3"):
        put(world, event_id)
    assert world.meetings.reconcile_event(USER, "evt-1", Deadline(20)) == "created"
    with pytest.raises(ZoomRateLimited):
        world.meetings.reconcile_event(USER, "evt-2", Deadline(20))
    assert zoom.refused == 1 and world.markers.rows == {USER: clock.now + DAILY}
    clock.now += 600
    with pytest.raises(ZoomRateLimited) as waited:
        world.meetings.reconcile_event(USER, "evt-3", Deadline(20))
    assert waited.value.retry_after_seconds == DAILY - 600 and waited.value.daily_limit
    assert zoom.refused == 1 and zoom.count("create") == 1, "known limited: no call to Zoom"
    assert world.links.get(USER, "evt-3") is None, "and no claim written"
    fields = world.calendar.zoom_of(USER, "evt-3")
    assert fields.status == "rate_limited" and fields.error and "automatically" in fields.error


def test_the_marker_ends_at_zooms_reset_and_the_next_create_goes_to_zoom(clock: Clock) -> None:
    world, zoom = limited_world(clock)
    put(world, "evt-1")
    put(world, "evt-2")
    world.meetings.reconcile_event(USER, "evt-1", Deadline(20))
    with pytest.raises(ZoomRateLimited):
        world.meetings.reconcile_event(USER, "evt-2", Deadline(20))
    clock.now += DAILY
    assert world.meetings.reconcile_event(USER, "evt-2", Deadline(20)) == "created"
    assert world.calendar.zoom_of(USER, "evt-2").status == "scheduled" and zoom.count("create") == 2


def test_updates_wait_too_and_deletes_never_wait(clock: Clock) -> None:
    world, zoom = limited_world(clock)
    put(world, "evt-1")
    put(world, "evt-2")
    world.meetings.reconcile_event(USER, "evt-1", Deadline(20))
    meeting_id = world.calendar.zoom_of(USER, "evt-1").meeting_id
    with pytest.raises(ZoomRateLimited):
        world.meetings.reconcile_event(USER, "evt-2", Deadline(20))
    put(world, "evt-1", start="2099-03-01T12:00:00+01:00", end="2099-03-01T13:00:00+01:00")
    with pytest.raises(ZoomRateLimited):
        world.meetings.reconcile_event(USER, "evt-1", Deadline(20))
    assert zoom.count("update") == 0 and zoom.refused == 1
    fields = world.calendar.zoom_of(USER, "evt-1")
    assert (fields.status, fields.meeting_id) == ("rate_limited", meeting_id), "the meeting is kept while it waits"
    world.calendar.delete(USER, "evt-1")
    assert world.meetings.reconcile_event(USER, "evt-1", Deadline(20)) == "removed"
    assert zoom.count("delete") == 1 and meeting_id not in zoom


def test_compose_link_answers_429_with_retry_after_at_once_while_known_limited(clock: Clock) -> None:
    world, zoom = limited_world(clock, limit=0)
    with pytest.raises(ZoomRateLimited):
        world.meetings.compose_link(USER, ComposeLinkRequest(), Deadline(20))
    clock.now += 100
    with pytest.raises(ZoomRateLimited) as limited:
        world.meetings.compose_link(USER, ComposeLinkRequest(), Deadline(20))
    assert limited.value.headers == {"Retry-After": str(DAILY - 100)}
    assert zoom.refused == 1
    # Another user's quota is their own.
    world.connection.connected.add(OTHER_USER)
    zoom.limit = 1
    assert world.meetings.compose_link(OTHER_USER, ComposeLinkRequest(), Deadline(20))["meeting_id"]


def test_a_per_second_limit_is_not_remembered(clock: Clock) -> None:
    world = build_world(clock)
    put(world, "evt-1")
    put(world, "evt-2")
    world.zoom.fail_next("create", ZoomRateLimited(30))  # Retry-After beyond the call's budget, not the daily limit
    with pytest.raises(ZoomRateLimited):
        world.meetings.reconcile_event(USER, "evt-1", Deadline(20))
    assert world.meetings.reconcile_event(USER, "evt-2", Deadline(20)) == "created"
    assert world.markers.rows == {} and world.markers.writes == 0


def test_another_containers_marker_is_read_and_an_unreadable_one_blocks_nothing(clock: Clock) -> None:
    world = build_world(clock)
    put(world, "evt-1")
    world.markers.rows[USER] = clock.now + 50
    with pytest.raises(ZoomRateLimited) as limited:
        world.meetings.reconcile_event(USER, "evt-1", Deadline(20))
    assert limited.value.retry_after_seconds == 50 and world.zoom.count("create") == 0
    clock.now += 50
    fresh = build_world(clock)
    put(fresh, "evt-1")
    fresh.markers.failing = True
    assert fresh.meetings.reconcile_event(USER, "evt-1", Deadline(20)) == "created"


def test_a_stale_marker_blocks_nothing_and_not_limited_is_read_again_after_a_few_seconds(clock: Clock) -> None:
    markers = FakeQuotaMarkers(rows={USER: clock.now - 1})
    quota = ZoomQuota(markers, clock=clock)
    quota.check(USER)
    quota.check(USER)
    assert markers.reads == 1, "not limited is trusted for a few seconds"
    clock.now += quota.not_limited_fresh_s
    markers.rows[USER] = clock.now + 10  # another container met the limit
    with pytest.raises(ZoomRateLimited):
        quota.check(USER)
    assert quota.calls_avoided == 1


def test_150_waiting_events_first_the_quota_then_the_rest_after_the_reset_none_failed(clock: Clock) -> None:
    """Zoom's quota at 100: the first 100 are made now, ONE call is refused, the other 49 wait without a call, and
    after the reset (and its spread) all 150 have their meeting; nothing is failed."""
    world, zoom = limited_world(clock, limit=100)
    events = [f"evt-{n:03}" for n in range(150)]
    for event_id in events:
        put(world, event_id)
    queue = FakeQueue()
    work = EventWork(world.meetings, queue, NoFailures(), clock=clock)
    outcomes = [work.work_on(WorkItem(USER, event_id), Deadline(600)) for event_id in events]
    assert outcomes.count("created") == 100 and outcomes.count("rate_limited") == 50
    assert (zoom.count("create"), zoom.refused) == (100, 1)
    waiting = queue.take()
    assert len(waiting) == 50 and all(zoom.reset_at <= item.not_before <= zoom.reset_at + 900 for item in waiting)
    assert len({item.not_before for item in waiting}) > 40, "spread, not all at the reset"
    while waiting:
        clock.now = min(item.not_before for item in waiting)
        due = [item for item in waiting if item.not_before <= clock.now]
        waiting = [item for item in waiting if item.not_before > clock.now]
        for item in due:
            assert work.work_on(item, Deadline(600)) == "created"
        waiting += queue.take()
    statuses = {world.calendar.zoom_of(USER, event_id).status for event_id in events}
    assert statuses == {"scheduled"} and len(zoom) == 150 and zoom.refused == 1


def test_the_spread_after_a_reset_grows_with_the_wait_and_stays_within_15_minutes() -> None:
    assert all(0 <= reset_spread(4) <= 1 for _ in range(100))
    assert all(0 <= reset_spread(86400) <= MAX_RESET_SPREAD_S for _ in range(100))
    assert len({round(reset_spread(3600), 3) for _ in range(20)}) > 10


def test_near_the_quota_a_users_concurrent_calls_go_one_at_a_time_so_zoom_refuses_only_one(clock: Clock) -> None:
    """16 workers on one user's 40 events, Zoom's quota at 30: below 20 sent they run together; from there one at
    a time, so the call that meets the limit is the only one refused and the other 10 wait without a call."""
    world, zoom = limited_world(clock, limit=30)
    assert world.meetings.quota is not None
    world.meetings.quota.single_file_after = 20
    zoom.latency_s = 0.01
    events = put_40_events(world)
    outcomes = reconcile_on_16_workers(world, events)
    assert outcomes.count("created") == 30 and outcomes.count("rate_limited") == 10
    assert zoom.refused == 1 and zoom.count("create") == 30


def test_a_whole_days_quota_at_once_runs_concurrently_and_the_next_call_waits_for_those_in_flight(
    clock: Clock,
) -> None:
    """One user's batch of exactly Zoom's quota is not slowed down (issue 14's 100-event batch), and the call past
    it starts only once every earlier call has landed, so it is the one Zoom refuses, and the only one."""
    world, zoom = limited_world(clock, limit=30)
    assert world.meetings.quota is not None
    world.meetings.quota.single_file_after = 30
    zoom.latency_s = 0.02
    running, peak, lock = [0], [0], threading.Lock()
    spend = zoom._spend

    def spend_counting() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            spend()
        finally:
            with lock:
                running[0] -= 1

    zoom._spend = spend_counting  # type: ignore[method-assign]
    events = put_40_events(world)
    began = time.monotonic()
    outcomes = reconcile_on_16_workers(world, events)
    assert outcomes.count("created") == 30 and outcomes.count("rate_limited") == 10
    assert zoom.refused == 1 and zoom.count("create") == 30
    assert peak[0] >= 8, "the quota's worth of calls ran side by side"
    assert time.monotonic() - began < 30 * zoom.latency_s, "not one at a time"
