"""The adapters' recurring-event parts against moto: a series' state and an exception's row in the links table,
a series' exception items in the calendar table, and the write-back condition on the recurrence attributes."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from link_zoom.adapters.calendar_store import CalendarStore
from link_zoom.adapters.meeting_links_store import MeetingLinksStore
from link_zoom.domain.calendar_events import CalendarItem, ZoomFields
from link_zoom.domain.meetings import ZoomMeeting
from link_zoom.domain.schedule import Schedule, parse_instant
from tests.support.aws import REGION
from tests.unit.meetings.fakes import USER, image

FIRST = Schedule(
    "Sync",
    parse_instant("2099-03-23T09:00:00+01:00") or pytest.fail(),
    parse_instant("2099-03-23T09:30:00+01:00") or pytest.fail(),
    "Europe/Berlin",
)
MEETING = ZoomMeeting("85746065432", "https://zoom.test/j/85746065432?pwd=x", "123456")
STATE = {
    "kind": "series",
    "rule": "FREQ=WEEKLY;COUNT=2",
    "type": 8,
    "cancelled": ["2099-03-30T07:00:00Z"],
    "occurrences": {"2099-03-23T08:00:00Z": "4077072000000", "2099-03-30T07:00:00Z": "4077673200000"},
}


def test_series_state_and_exception_rows(aws: dict[str, Any]) -> None:
    links = MeetingLinksStore(aws["MEETING_LINKS_TABLE"])
    assert links.claim(USER, "series", "c1", time.time() + 30)
    series = links.complete(USER, "series", "c1", MEETING, FIRST)
    assert series is not None and series.series is None
    saved = links.set_series(series, STATE, FIRST)
    assert saved is not None and saved.series == STATE and links.get(USER, "series") == saved

    moved = Schedule("Sync", FIRST.start.replace(hour=13), FIRST.end.replace(hour=13, minute=30), "Europe/Berlin")
    exception_state = {"kind": "exception", "series_id": "series", "original_start": "x", "occurrence_id": "1"}
    links.put_exception(saved, "series-exc", moved, exception_state)
    row = links.get(USER, "series-exc")
    assert row is not None and row.meeting_id == MEETING.meeting_id and row.join_url == MEETING.join_url
    assert row.schedule == moved and row.series == exception_state
    assert sorted(links.find_by_meeting(MEETING.meeting_id)) == [(USER, "series"), (USER, "series-exc")]

    assert links.remove(USER, "series", MEETING.meeting_id)
    assert links.set_series(saved, STATE, FIRST) is None  # the meeting is gone: nothing is written


def test_exceptions_of_a_series_and_write_backs_conditional_on_exdates(aws: dict[str, Any]) -> None:
    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    ddb = boto3.client("dynamodb", region_name=REGION)
    series_item = {**image(USER, "series", subject="Sync", recurrence="FREQ=WEEKLY;COUNT=2", zoom=True)}
    series_item["exdates"] = {"SS": ["2099-03-30T09:00:00+02:00"]}
    ddb.put_item(TableName=aws["CALENDAR_TABLE"], Item=series_item)
    for event_id, series_id in (("exc-1", "series"), ("exc-2", "series"), ("exc-3", "other")):
        ddb.put_item(TableName=aws["CALENDAR_TABLE"], Item=image(USER, event_id, series_id=series_id))
    assert sorted(item.event_id for item in calendar.exceptions_of(USER, "series")) == ["exc-1", "exc-2"]

    read = calendar.get(USER, "series")
    assert isinstance(read, CalendarItem) and read.exdates() == ["2099-03-30T09:00:00+02:00"]
    ddb.update_item(
        TableName=aws["CALENDAR_TABLE"],
        Key={"user_id": {"S": USER}, "event_id": {"S": "series"}},
        UpdateExpression="REMOVE exdates",
    )
    # The Link server changed exdates after the read: the service's write-back does not overwrite anything.
    assert calendar.write_back(read, ZoomFields(MEETING.meeting_id, MEETING.join_url, "scheduled")) is False
    fresh = calendar.get(USER, "series")
    assert fresh is not None and calendar.write_back(fresh, ZoomFields(MEETING.meeting_id, None, "scheduled"))
