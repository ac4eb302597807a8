"""domain/series.py on fakes: what a series item asks of Zoom, decided from the state last applied."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from link_zoom.deadline import Deadline
from link_zoom.domain.calendar_events import CalendarItem
from link_zoom.domain.meetings import MeetingLink, ZoomMeeting
from link_zoom.domain.recurrence import ZoomOccurrence, ZoomRecurrence, parse_series
from link_zoom.domain.schedule import Schedule
from link_zoom.domain.series import (
    RecurringMeetings,
    SeriesCalendarPort,
    SeriesLinksPort,
    SeriesZoomPort,
)
from link_zoom.errors import ZoomRateLimited, ZoomRejected
from tests.unit.meetings.fakes import USER, FakeCalendar, FakeLinks, World, build_world, image

SERIES: dict[str, Any] = {
    "subject": "Sync",
    "start": "2099-03-23T09:00:00+01:00",
    "end": "2099-03-23T09:30:00+01:00",
    "time_zone": "Europe/Berlin",
    "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=4",
    "zoom": True,
}
THIRD = "2099-04-06T09:00:00+02:00"


@dataclass
class FakeSeriesZoom:
    """Zoom's recurring meetings, reduced to what the service relies on: occurrences by original start, deleted
    or moved ones, and a series change remaking them all. Every call is recorded."""

    made: dict[str, list[ZoomOccurrence]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail: list[BaseException] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(82_000_000_001))

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if self.fail:
            raise self.fail.pop(0)

    def _make(self, schedule: Schedule, zoom: ZoomRecurrence) -> list[ZoomOccurrence]:
        if zoom.recurrence is None:
            return []
        rule = {1: "DAILY", 2: "WEEKLY", 3: "MONTHLY"}[zoom.recurrence["type"]]
        series = parse_series(f"FREQ={rule};COUNT={zoom.recurrence.get('end_times', 1)}", schedule)
        minutes = schedule.duration_minutes
        return [ZoomOccurrence(str(int(s.timestamp() * 1000)), s, minutes) for s in series.starts()]

    def create_series(
        self, access_token: str, schedule: Schedule, zoom: ZoomRecurrence, deadline: Deadline, reference: str | None
    ) -> tuple[ZoomMeeting, list[ZoomOccurrence]]:
        self._enter("create")
        meeting_id = str(next(self._ids))
        self.made[meeting_id] = self._make(schedule, zoom)
        return ZoomMeeting(meeting_id, f"https://zoom.example/j/{meeting_id}", None), list(self.made[meeting_id])

    def occurrences(self, access_token: str, meeting_id: str, deadline: Deadline) -> list[ZoomOccurrence]:
        self._enter("get")
        return list(self.made[meeting_id])

    def update_series(
        self, access_token: str, meeting_id: str, schedule: Schedule, zoom: ZoomRecurrence, deadline: Deadline
    ) -> None:
        self._enter("update_series")
        self.made[meeting_id] = self._make(schedule, zoom)

    def rename(self, access_token: str, meeting_id: str, topic: str, deadline: Deadline) -> None:
        self._enter("rename")

    def move_occurrence(
        self, access_token: str, meeting_id: str, occurrence_id: str, schedule: Schedule, deadline: Deadline
    ) -> None:
        self._enter("move_occurrence")

    def delete_occurrence(self, access_token: str, meeting_id: str, occurrence_id: str, deadline: Deadline) -> bool:
        self._enter("delete_occurrence")
        found = self.made[meeting_id]
        self.made[meeting_id] = [replace(o, available=False) if o.occurrence_id == occurrence_id else o for o in found]
        return True


class FakeSeriesLinks(FakeLinks):
    def set_series(self, link: MeetingLink, state: dict[str, Any], schedule: Schedule) -> MeetingLink | None:
        with self._lock:
            current = self.rows.get((link.user_id, link.event_id))
            if current is None or current.meeting_id != link.meeting_id:
                return None
            saved = replace(current, series=state, schedule=schedule)
            self.rows[(link.user_id, link.event_id)] = saved
            return saved

    def put_exception(self, series: MeetingLink, event_id: str, schedule: Schedule, state: dict[str, Any]) -> None:
        with self._lock:
            self.rows[(series.user_id, event_id)] = replace(series, event_id=event_id, schedule=schedule, series=state)


class FakeSeriesCalendar(FakeCalendar):
    def exceptions_of(self, user_id: str, series_id: str) -> list[CalendarItem]:
        with self._lock:
            rows = [dict(a) for (owner, _), a in self.items.items() if owner == user_id]
        return [item for item in map(CalendarItem, rows) if item.series_id == series_id]


@dataclass
class SeriesWorld:
    world: World
    zoom: FakeSeriesZoom
    links: FakeSeriesLinks
    calendar: FakeSeriesCalendar

    def put(self, **attributes: Any) -> None:
        self.calendar.put(image(USER, "series", **attributes))

    def reconcile(self) -> str:
        return self.world.meetings.reconcile_event(USER, "series", Deadline(10))

    def item(self) -> CalendarItem:
        item = self.calendar.get(USER, "series")
        assert item is not None
        return item


@pytest.fixture
def series_world() -> SeriesWorld:
    world = build_world()
    zoom, links, calendar = FakeSeriesZoom(), FakeSeriesLinks(), FakeSeriesCalendar()
    ports: tuple[SeriesZoomPort, SeriesLinksPort, SeriesCalendarPort] = (zoom, links, calendar)  # checked by mypy
    world.meetings.links, world.meetings.calendar = links, calendar
    world.meetings.recurring = RecurringMeetings(world.meetings, *ports)
    return SeriesWorld(world, zoom, links, calendar)


def test_a_series_is_made_once_with_its_exdates_and_a_repeat_costs_nothing(series_world: SeriesWorld) -> None:
    series_world.put(**SERIES)
    series_world.calendar.items[(USER, "series")]["exdates"] = {"SS": [THIRD]}
    assert series_world.reconcile() == "created"
    assert series_world.zoom.calls == ["create", "delete_occurrence"]
    fields = series_world.item().zoom_fields()
    assert (fields.status, fields.error) == ("scheduled", None) and fields.meeting_id in series_world.zoom.made
    state = series_world.links.get(USER, "series")
    assert state is not None and state.series is not None and state.series["cancelled"] == ["2099-04-06T07:00:00Z"]
    series_world.zoom.calls.clear()
    assert series_world.reconcile() == "unchanged" and series_world.zoom.calls == []


def test_a_date_taken_out_of_exdates_re_sends_the_series(series_world: SeriesWorld) -> None:
    series_world.put(**SERIES)
    series_world.calendar.items[(USER, "series")]["exdates"] = {"SS": [THIRD, "2099-03-30T09:00:00+02:00"]}
    series_world.reconcile()
    series_world.zoom.calls.clear()
    series_world.calendar.items[(USER, "series")]["exdates"] = {"SS": [THIRD]}
    assert series_world.reconcile() == "moved"
    assert series_world.zoom.calls == ["update_series", "get", "delete_occurrence"]
    meeting_id = series_world.item().zoom_fields().meeting_id
    assert meeting_id is not None
    assert [o.available for o in series_world.zoom.made[meeting_id]] == [True, True, False, True]


def test_a_subject_change_renames_only(series_world: SeriesWorld) -> None:
    series_world.put(**SERIES)
    series_world.reconcile()
    series_world.zoom.calls.clear()
    series_world.put(**{**SERIES, "subject": "Sync (renamed)"})
    series_world.reconcile()
    assert series_world.zoom.calls == ["rename"]


@pytest.mark.parametrize("rule", ["FREQ=WHENEVER", "FREQ=WEEKLY;BYDAY=TU;COUNT=2"])
def test_a_bad_rule_is_failed_without_a_call(series_world: SeriesWorld, rule: str) -> None:
    series_world.put(**{**SERIES, "recurrence": rule})
    assert series_world.reconcile() == "failed"
    assert series_world.zoom.calls == [] and series_world.item().zoom_fields().error


def test_switch_off_connection_missing_and_rate_limit(series_world: SeriesWorld) -> None:
    series_world.put(**SERIES)
    series_world.world.switch.on = False
    assert series_world.reconcile() == "feature_disabled" and series_world.zoom.calls == []
    series_world.world.switch.on = True
    series_world.world.connection.connected.clear()
    assert series_world.reconcile() == "authorization_required" and series_world.zoom.calls == []
    series_world.world.connection.connected.add(USER)
    series_world.zoom.fail.append(ZoomRateLimited(60))
    with pytest.raises(ZoomRateLimited):
        series_world.reconcile()
    assert series_world.item().zoom_fields().status == "rate_limited"
    assert series_world.reconcile() == "created"


def test_a_permanent_zoom_refusal_of_a_series_is_failed_with_zooms_reason(series_world: SeriesWorld) -> None:
    series_world.put(**SERIES)
    series_world.zoom.fail.append(ZoomRejected(300, "Invalid field."))
    assert series_world.reconcile() == "failed" and series_world.zoom.calls == ["create"]
    fields = series_world.item().zoom_fields()
    assert (fields.status, fields.error) == ("failed", "Zoom refused to schedule this series (Invalid field).")


def test_the_fallback_says_why_in_one_sentence(series_world: SeriesWorld) -> None:
    series_world.put(**{**SERIES, "recurrence": "FREQ=YEARLY;COUNT=3"})
    assert series_world.reconcile() == "created"
    error = series_world.item().zoom_fields().error
    assert error is not None and "yearly" in error and series_world.zoom.calls == ["create"]


def test_sweep_keeps_series_until_their_last_occurrence_ends(series_world: SeriesWorld) -> None:
    waiting = {**SERIES, "zoom_status": "authorization_required"}
    series_world.put(**waiting)
    first_end = datetime(2099, 3, 23, 8, 30, tzinfo=UTC)
    assert [i.event_id for i in series_world.world.meetings.sweep_candidates(USER, first_end + timedelta(days=1))] == [
        "series"
    ]
    assert series_world.world.meetings.sweep_candidates(USER, first_end + timedelta(days=30)) == []
