"""The calendar stream on fakes: what each record does, and how many calls to Zoom (and the connection) it costs."""

from __future__ import annotations

import time
from typing import Any

import pytest

from link_zoom.deadline import Deadline
from link_zoom.domain.calendar_events import SkippedAfterFailure, decide, process_records, sweep_after_connect
from link_zoom.errors import ZoomRateLimited, ZoomRejected, ZoomUnavailable
from tests.unit.meetings.fakes import OTHER_USER, USER, World, build_world, image, stream_record

EVENT: dict[str, Any] = {
    "subject": "Planning",
    "start": "2026-03-01T10:00:00+01:00",
    "end": "2026-03-01T11:00:00+01:00",
    "time_zone": "Europe/Berlin",
    "zoom": True,
}


@pytest.fixture
def world() -> World:
    return build_world()


class Calendar:
    """Plays the Link server: writes items to the fake table and returns the stream records they make."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.sequence = 0

    def _record(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
        self.sequence += 1
        return stream_record(name, old, new, self.sequence)

    def insert(self, event_id: str = "evt-1", user_id: str = USER, **attributes: Any) -> dict[str, Any]:
        new = image(user_id, event_id, **{**EVENT, **attributes})
        self.world.calendar.put(new)
        return self._record("INSERT", None, new)

    def modify(self, event_id: str = "evt-1", user_id: str = USER, **changes: Any) -> dict[str, Any]:
        current = self.world.calendar.get(user_id, event_id)
        assert current is not None
        old = dict(current.attributes)
        new = dict(old)
        for name, value in changes.items():
            if value is None:
                new.pop(name, None)
            else:
                new.update(image(user_id, event_id, **{name: value}))
        self.world.calendar.put(new)
        return self._record("MODIFY", old, new)

    def remove(self, event_id: str = "evt-1", user_id: str = USER) -> dict[str, Any]:
        current = self.world.calendar.get(user_id, event_id)
        assert current is not None
        self.world.calendar.delete(user_id, event_id)
        return self._record("REMOVE", dict(current.attributes), None)

    def write_back_record(self, event_id: str = "evt-1", user_id: str = USER) -> dict[str, Any]:
        """The record the service's own write-back made (old: before it, new: the item now)."""
        current = self.world.calendar.get(user_id, event_id)
        assert current is not None
        new = dict(current.attributes)
        old = current.without_zoom_fields()
        return self._record("MODIFY", old, new)


@pytest.fixture
def link(world: World) -> Calendar:
    return Calendar(world)


def run(world: World, *records: dict[str, Any], replayed: bool = False) -> list[BaseException | None]:
    return process_records(list(records), Deadline(20), lambda: world.meetings, replayed=replayed)


def test_insert_with_zoom_creates_one_meeting_and_writes_it_back(world: World, link: Calendar) -> None:
    assert run(world, link.insert()) == [None]
    fields = world.calendar.zoom_of(USER, "evt-1")
    assert fields.status == "scheduled" and fields.meeting_id in world.zoom and fields.join_url
    assert fields.error is None
    meeting = world.zoom.meetings[fields.meeting_id or ""]
    assert (meeting.start_time, meeting.duration_minutes, meeting.time_zone) == (
        "2026-03-01T09:00:00Z",
        60,
        "Europe/Berlin",
    )
    assert meeting.topic == "Planning"


def test_insert_without_zoom_costs_nothing(world: World, link: Calendar) -> None:
    assert run(world, link.insert(zoom=False)) == [None]
    assert not world.zoom.calls and world.connection.uses == 0 and world.switch.reads == 0


def test_each_real_change_moves_the_meeting_with_exactly_one_patch(world: World, link: Calendar) -> None:
    run(world, link.insert())
    meeting_id = world.calendar.zoom_of(USER, "evt-1").meeting_id
    for change in (
        {"start": "2026-03-01T10:30:00+01:00"},
        {"end": "2026-03-01T12:00:00+01:00"},
        {"time_zone": "America/New_York"},
        {"subject": "Planning (moved)"},
    ):
        world.zoom.calls.clear()
        assert run(world, link.modify(**change)) == [None]
        assert world.zoom.calls == [("update", meeting_id)], change
        run(world, link.write_back_record())
    assert len(world.zoom) == 1


def test_unrelated_edits_and_write_backs_cost_no_zoom_no_connection_no_switch(world: World, link: Calendar) -> None:
    run(world, link.insert())
    world.zoom.calls.clear()
    world.connection.uses = world.switch.reads = 0
    records = [link.write_back_record(), link.modify(location="Room 4"), link.modify(body="Agenda: ...")]
    assert run(world, *records) == [None, None, None]
    assert not world.zoom.calls and world.connection.uses == 0 and world.switch.reads == 0


def test_the_same_instant_written_with_another_offset_is_no_change(world: World, link: Calendar) -> None:
    run(world, link.insert())
    world.zoom.calls.clear()
    run(world, link.modify(start="2026-03-01T09:00:00Z", end="2026-03-01T10:00:00Z"))
    assert not world.zoom.calls


def test_switching_zoom_off_deletes_and_on_again_creates(world: World, link: Calendar) -> None:
    run(world, link.insert())
    first = world.calendar.zoom_of(USER, "evt-1").meeting_id
    assert run(world, link.modify(zoom=False)) == [None]
    assert first not in world.zoom and len(world.links) == 0
    assert world.calendar.zoom_of(USER, "evt-1") == world.calendar.zoom_of(USER, "evt-1").__class__()
    assert run(world, link.modify(zoom=True)) == [None]
    second = world.calendar.zoom_of(USER, "evt-1").meeting_id
    assert second in world.zoom and second != first and len(world.zoom) == 1


def test_remove_deletes_the_meeting_and_a_missing_meeting_counts_as_deleted(world: World, link: Calendar) -> None:
    run(world, link.insert(), link.insert("evt-2"))
    gone = world.calendar.zoom_of(USER, "evt-2").meeting_id
    world.zoom.meetings.pop(gone or "")  # deleted at Zoom already (3001)
    assert run(world, link.remove(), link.remove("evt-2")) == [None, None]
    assert len(world.zoom) == 0 and len(world.links) == 0 and world.zoom.count("delete") == 2


def test_remove_of_an_event_without_zoom_calls_nothing(world: World, link: Calendar) -> None:
    run(world, link.insert(zoom=False))
    run(world, link.remove())
    assert not world.zoom.calls and world.connection.uses == 0


def test_replayed_and_duplicate_records_make_one_meeting(world: World, link: Calendar) -> None:
    insert = link.insert()
    assert run(world, insert, insert, insert) == [None, None, None]
    assert run(world, insert) == [None]
    assert len(world.zoom) == 1 and world.zoom.count("create") == 1


def test_a_stale_record_replayed_after_newer_changes_does_not_move_the_meeting_back(
    world: World, link: Calendar
) -> None:
    run(world, link.insert())
    early = link.modify(start="2026-03-01T10:15:00+01:00")
    run(world, early)
    run(world, link.modify(start="2026-03-01T10:45:00+01:00"))
    world.zoom.calls.clear()
    run(world, early, replayed=True)  # from the DLQ, long after
    assert not world.zoom.calls
    meeting = next(iter(world.zoom.meetings.values()))
    assert meeting.start_time == "2026-03-01T09:45:00Z"


def test_an_events_last_record_in_the_batch_is_reconciled_from_its_image_without_a_read(
    world: World, link: Calendar
) -> None:
    run(world, link.insert())
    records = [link.insert("evt-2"), link.modify(start="2026-03-01T10:15:00+01:00")]
    world.calendar.reads = 0
    world.zoom.calls.clear()
    assert run(world, *records) == [None, None]
    assert world.calendar.reads == 0
    assert sorted(call[0] for call in world.zoom.calls) == ["create", "update"]
    assert world.calendar.zoom_of(USER, "evt-2").status == "scheduled"
    assert world.zoom.meetings[world.calendar.zoom_of(USER, "evt-1").meeting_id or ""].start_time == (
        "2026-03-01T09:15:00Z"
    )


def test_earlier_records_of_an_event_read_the_item_and_the_last_one_changes_nothing_more(
    world: World, link: Calendar
) -> None:
    run(world, link.insert())
    records = [link.modify(start="2026-03-01T10:15:00+01:00"), link.modify(start="2026-03-01T10:45:00+01:00")]
    world.calendar.reads = 0
    world.zoom.calls.clear()
    assert run(world, *records) == [None, None]
    assert world.calendar.reads == 1  # the first record's; the last one's image is the item as it is
    assert [call[0] for call in world.zoom.calls] == ["update"]  # straight to 10:45, once


def test_a_duplicate_delivered_after_a_newer_record_is_reconciled_with_the_newest_image(
    world: World, link: Calendar
) -> None:
    run(world, link.insert())
    early = link.modify(start="2026-03-01T10:15:00+01:00")
    late = link.modify(start="2026-03-01T10:45:00+01:00")
    world.zoom.calls.clear()
    assert run(world, early, late, early) == [None, None, None]
    assert [call[0] for call in world.zoom.calls] == ["update"]
    meeting = next(iter(world.zoom.meetings.values()))
    assert meeting.start_time == "2026-03-01T09:45:00Z"


def test_a_replayed_batch_reads_every_item(world: World, link: Calendar) -> None:
    record = link.insert()
    world.calendar.reads = 0
    assert run(world, record, replayed=True) == [None]
    assert world.calendar.reads == 1


def test_a_put_made_meeting_is_reused_by_the_insert(world: World, link: Calendar) -> None:
    from link_zoom.domain.calendar_events import CalendarItem

    item = CalendarItem(image(USER, "evt-1", **EVENT))
    schedule = item.schedule()
    assert schedule is not None
    made = world.meetings.put_event_meeting(USER, "evt-1", schedule, Deadline(10))
    world.zoom.calls.clear()
    run(world, link.insert())
    assert not world.zoom.calls
    assert world.calendar.zoom_of(USER, "evt-1").meeting_id == made["meeting_id"]


def test_an_unconnected_user_gets_authorization_required_then_the_sweep_gives_the_meeting(
    world: World, link: Calendar
) -> None:
    future = {"start": "2099-01-01T10:00:00+00:00", "end": "2099-01-01T11:00:00+00:00"}
    past = {"start": "2020-01-01T10:00:00+00:00", "end": "2020-01-01T11:00:00+00:00"}
    run(world, link.insert("soon", OTHER_USER, **future), link.insert("gone", OTHER_USER, **past))
    waiting = world.calendar.zoom_of(OTHER_USER, "soon")
    assert waiting.status == "authorization_required" and waiting.error and waiting.error.endswith(".")
    assert not world.zoom.calls and len(world.links) == 0

    world.connection.connected.add(OTHER_USER)
    assert sweep_after_connect(OTHER_USER, Deadline(10), world.meetings) == 1
    assert world.calendar.zoom_of(OTHER_USER, "soon").status == "scheduled"
    assert world.calendar.zoom_of(OTHER_USER, "gone").status == "authorization_required"  # it has ended
    assert len(world.zoom) == 1


def test_an_event_waiting_for_a_meeting_gets_one_on_its_next_change(world: World, link: Calendar) -> None:
    run(world, link.insert(user_id=OTHER_USER))
    world.connection.connected.add(OTHER_USER)
    run(world, link.modify(user_id=OTHER_USER, location="Room 1"))  # not a schedule change, but no meeting yet
    assert world.calendar.zoom_of(OTHER_USER, "evt-1").status == "scheduled"


def test_with_the_switch_off_events_get_feature_disabled_but_deletes_happen(world: World, link: Calendar) -> None:
    run(world, link.insert("kept"))
    world.switch.on = False
    run(world, link.insert("new"), link.modify("kept", start="2026-03-01T10:30:00+01:00"))
    assert world.calendar.zoom_of(USER, "new").status == "feature_disabled"
    kept = world.calendar.zoom_of(USER, "kept")
    assert kept.status == "feature_disabled" and kept.meeting_id in world.zoom  # still linked, not moved
    assert world.zoom.count("create") == 1 and world.zoom.count("update") == 0
    run(world, link.remove("kept"))
    assert len(world.zoom) == 0


def test_a_permanent_zoom_refusal_is_failed_not_retried(world: World, link: Calendar) -> None:
    world.zoom.fail_next("create", ZoomRejected(300, "Invalid field."))
    assert run(world, link.insert()) == [None]
    fields = world.calendar.zoom_of(USER, "evt-1")
    assert fields.status == "failed" and fields.error == "Zoom refused to schedule this meeting (Invalid field)."
    assert len(world.links) == 0


def test_unusable_times_are_failed_without_calling_zoom(world: World, link: Calendar) -> None:
    assert run(world, link.insert(end="2026-03-01T09:00:00+01:00")) == [None]
    assert world.calendar.zoom_of(USER, "evt-1").status == "failed"
    assert not world.zoom.calls


@pytest.mark.parametrize("error", [ZoomUnavailable()])
def test_transient_zoom_faults_fail_the_record_and_the_later_records_of_that_event(
    world: World, link: Calendar, error: Exception
) -> None:
    # evt-1 and evt-2 run at once: the fault must hit evt-1's create, whichever thread calls Zoom first.
    original_create = world.zoom.create
    faults = [error]

    def create_failing_evt_1_once(token: str, schedule: Any, deadline: Deadline, reference: str | None = None) -> Any:
        if schedule.topic == "Renamed" and faults:  # evt-1 as the table holds it by then
            world.zoom.calls.append(("create", ""))
            raise faults.pop()
        return original_create(token, schedule, deadline, reference)

    world.zoom.create = create_failing_evt_1_once  # type: ignore[method-assign]
    records = [link.insert("evt-1"), link.insert("evt-2"), link.modify("evt-1", subject="Renamed")]
    results = run(world, *records)
    assert results[0] is error and results[1] is None and isinstance(results[2], SkippedAfterFailure)
    assert world.calendar.zoom_of(USER, "evt-1").status is None  # nothing written: the retry will
    assert len(world.links) == 1  # evt-2 only; evt-1's claim was released
    assert run(world, *[records[0], records[2]]) == [None, None]
    assert len(world.zoom) == 2 and world.zoom.count("create") == 3  # the failed one, then one each


def test_a_rate_limited_event_is_waited_out_by_the_service_not_by_the_streams_retries(
    world: World, link: Calendar
) -> None:
    queued: list[tuple[str, str, int]] = []
    world.zoom.fail_next("create", ZoomRateLimited(3600))
    records = [link.insert("evt-1"), link.insert("evt-2")]
    results = process_records(records, Deadline(20), lambda: world.meetings, later=lambda *a: queued.append(a))
    assert results == [None, None], "a 429 never fails the record (it would end in the DLQ)"
    assert queued == [(USER, "evt-1", 3600)]
    fields = world.calendar.zoom_of(USER, "evt-1")
    assert fields.status == "rate_limited" and fields.error and "automatically" in fields.error
    assert len(world.links) == 1  # evt-2 only; evt-1's claim was released for the retry


def test_a_write_back_never_overwrites_a_newer_link_server_write(world: World, link: Calendar) -> None:
    insert = link.insert()
    original_create = world.zoom.create

    def create_while_the_user_edits(*args: Any, **kwargs: Any) -> Any:
        link.modify(subject="Edited meanwhile")  # the Link server writes while Zoom answers
        return original_create(*args, **kwargs)

    world.zoom.create = create_while_the_user_edits  # type: ignore[method-assign]
    run(world, insert)
    assert world.calendar.refused_writes == 1
    assert world.calendar.zoom_of(USER, "evt-1").status is None
    item = world.calendar.get(USER, "evt-1")
    assert item is not None and item.text("subject") == "Edited meanwhile"


def test_different_events_run_concurrently_and_one_events_records_in_order(world: World, link: Calendar) -> None:
    world.zoom.latency_s = 0.05
    records = [link.insert(f"evt-{n}") for n in range(16)]
    moves = [link.modify("evt-3", start=f"2026-03-01T10:{minute:02d}:00+01:00") for minute in (10, 20, 30)]
    began = time.monotonic()
    assert run(world, *records, *moves) == [None] * 19
    elapsed = time.monotonic() - began
    assert elapsed < 16 * 0.05  # sequential would take at least 0.8 s for the creates alone
    assert len(world.zoom) == 16
    meeting = world.zoom.meetings[world.calendar.zoom_of(USER, "evt-3").meeting_id or ""]
    assert meeting.start_time == "2026-03-01T09:30:00Z"  # the last move won


def test_records_without_keys_are_skipped_not_retried(world: World) -> None:
    broken = {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "9"}}
    assert run(world, broken) == [None]


def test_meeting_deleted_at_zoom_marks_the_item_and_drops_the_link(world: World, link: Calendar) -> None:
    run(world, link.insert())
    meeting_id = world.calendar.zoom_of(USER, "evt-1").meeting_id or ""
    world.zoom.meetings.pop(meeting_id)
    assert world.meetings.meeting_deleted_at_zoom(meeting_id) == 1
    fields = world.calendar.zoom_of(USER, "evt-1")
    assert (fields.status, fields.meeting_id, fields.join_url) == ("deleted_at_zoom", None, None)
    assert len(world.links) == 0
    world.zoom.calls.clear()
    run(world, link.write_back_record())
    assert not world.zoom.calls
    assert world.meetings.meeting_deleted_at_zoom("123") == 0


class TestDecide:
    def test_decisions_come_from_the_images_alone(self) -> None:
        base = image(**EVENT, zoom_meeting_id="1", zoom_join_url="u", zoom_status="scheduled")

        def modify(**changes: Any) -> bool:
            new = {**base, **image(**changes)}
            return decide(stream_record("MODIFY", base, new)).needs_reconcile

        assert not modify(zoom_status="failed", zoom_error="x")
        assert not modify(location="elsewhere")
        assert modify(start="2026-03-01T10:05:00+01:00")
        assert modify(end="2026-03-01T11:05:00+01:00")
        assert modify(time_zone="UTC")
        assert modify(subject="New")
        assert modify(zoom=False)
        assert decide(stream_record("REMOVE", base, None)).needs_reconcile
        assert decide(stream_record("INSERT", None, base)).needs_reconcile
        assert not decide(stream_record("INSERT", None, image(**{**EVENT, "zoom": False}))).needs_reconcile

    def test_zoom_off_edits_and_waiting_events(self) -> None:
        off = image(**{**EVENT, "zoom": False})
        assert not decide(stream_record("MODIFY", off, {**off, **image(subject="x")})).needs_reconcile
        waiting = image(**EVENT, zoom_status="authorization_required")
        assert decide(stream_record("MODIFY", waiting, {**waiting, **image(location="x")})).needs_reconcile

    def test_a_record_without_keys_is_an_error(self) -> None:
        with pytest.raises(ValueError):
            decide({"eventName": "INSERT", "dynamodb": {}})
