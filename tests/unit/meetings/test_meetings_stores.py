"""The link and calendar adapters against moto, with the tables as template.yaml defines them."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from devstack.template import load_template
from link_zoom.adapters.calendar_store import CalendarStore
from link_zoom.adapters.meeting_links_store import MeetingLinkModel, MeetingLinksStore
from link_zoom.domain.calendar_events import CalendarItem, ZoomFields
from link_zoom.domain.meetings import ZoomMeeting
from link_zoom.domain.schedule import Schedule, parse_instant
from tests.unit.meetings.fakes import USER, image

TEMPLATE = load_template()
SCHEDULE = Schedule(
    "Review",
    parse_instant("2026-03-01T10:00:00+01:00") or pytest.fail(),
    parse_instant("2026-03-01T11:00:00+01:00") or pytest.fail(),
    "Europe/Berlin",
)
MEETING = ZoomMeeting("85746065432", "https://zoom.test/j/85746065432?pwd=x", "123456")


def test_the_link_model_matches_the_template() -> None:
    props = TEMPLATE["Resources"]["MeetingLinksTable"]["Properties"]
    attributes = MeetingLinkModel.get_attributes()
    keys = {
        a.attr_name: ("HASH" if a.is_hash_key else "RANGE")
        for a in attributes.values()
        if a.is_hash_key or a.is_range_key
    }
    assert keys == {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
    index = props["GlobalSecondaryIndexes"][0]
    assert MeetingLinkModel.by_meeting.Meta.index_name == index["IndexName"]
    assert index["KeySchema"] == [{"AttributeName": "meeting_id", "KeyType": "HASH"}]
    assert not {"access_token", "refresh_token", "token"} & set(attributes)


def test_claim_complete_move_and_remove(aws: dict[str, Any]) -> None:
    links = MeetingLinksStore(aws["MEETING_LINKS_TABLE"])
    assert links.claim(USER, "evt", "c1", time.time() + 30)
    assert not links.claim(USER, "evt", "c2", time.time() + 30)  # the slot is taken
    pending = links.get(USER, "evt")
    assert pending is not None and pending.meeting_id is None and pending.claim_id == "c1"
    assert links.complete(USER, "evt", "c2", MEETING, SCHEDULE) is None  # not our claim
    done = links.complete(USER, "evt", "c1", MEETING, SCHEDULE)
    assert done is not None and done.meeting_id == MEETING.meeting_id and done.schedule == SCHEDULE
    assert done.claim_id is None and done.password == "123456"
    assert links.get(USER, "evt") == done
    assert links.find_by_meeting(MEETING.meeting_id) == [(USER, "evt")]

    later = Schedule("Review", SCHEDULE.start.replace(hour=12), SCHEDULE.end.replace(hour=13), "UTC")
    moved = links.reschedule(done, later)
    assert moved is not None and moved.schedule == later
    assert links.remove(USER, "evt", "other-meeting") is False
    assert links.remove(USER, "evt", MEETING.meeting_id) is True
    assert links.get(USER, "evt") is None and links.find_by_meeting(MEETING.meeting_id) == []


def test_an_expired_claim_can_be_taken_over_and_released(aws: dict[str, Any]) -> None:
    links = MeetingLinksStore(aws["MEETING_LINKS_TABLE"])
    assert links.claim(USER, "evt", "old", time.time() - 1)
    assert not links.claim(USER, "evt", "new", time.time() + 30, replacing="wrong")
    assert links.claim(USER, "evt", "new", time.time() + 30, replacing="old")
    assert links.release(USER, "evt", "old") is False
    assert links.release(USER, "evt", "new") is True
    assert links.get(USER, "evt") is None


def test_a_claim_whose_create_lost_its_answer_is_kept_with_its_reference(aws: dict[str, Any]) -> None:
    links = MeetingLinksStore(aws["MEETING_LINKS_TABLE"])
    assert links.claim(USER, "evt", "c1", time.time() + 30, ref="ref-1")
    assert links.mark_unknown(USER, "evt", "other") is False
    assert links.mark_unknown(USER, "evt", "c1") is True
    left = links.get(USER, "evt")
    assert left is not None and (left.claim_ref, left.outcome_unknown, left.claim_expires_at) == ("ref-1", True, 0)
    assert links.claim(USER, "evt", "c2", time.time() + 30, replacing="c1", ref="ref-1", outcome_unknown=True)
    taken = links.get(USER, "evt")
    assert taken is not None and (taken.claim_id, taken.claim_ref, taken.outcome_unknown) == ("c2", "ref-1", True)
    done = links.complete(USER, "evt", "c2", MEETING, SCHEDULE)
    assert done is not None and (done.claim_ref, done.outcome_unknown) == (None, False)
    assert links.mark_unknown(USER, "evt", "c2") is False  # a link is never a claim again


def _put(aws: dict[str, Any], **attributes: Any) -> CalendarItem:
    attrs = image(USER, "evt", **attributes)
    boto3.client("dynamodb").put_item(TableName=aws["CALENDAR_TABLE"], Item=attrs)
    item = CalendarItem.from_image(attrs)
    assert item is not None
    return item


def _raw(aws: dict[str, Any]) -> dict[str, Any]:
    return boto3.client("dynamodb").get_item(
        TableName=aws["CALENDAR_TABLE"], Key={"user_id": {"S": USER}, "event_id": {"S": "evt"}}
    )["Item"]


EVENT = {"subject": "Review", "start": "2026-03-01T10:00:00+01:00", "end": "2026-03-01T11:00:00+01:00", "zoom": True}


def test_write_back_sets_only_the_zoom_attributes(aws: dict[str, Any]) -> None:
    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    item = _put(aws, **EVENT, location="Room 1")
    fields = ZoomFields("1", "https://zoom.test/j/1", "scheduled")
    assert calendar.write_back(item, fields)
    stored = _raw(aws)
    assert stored["zoom_meeting_id"] == {"S": "1"} and stored["zoom_status"] == {"S": "scheduled"}
    assert "zoom_error" not in stored
    assert {k: v for k, v in stored.items() if not k.startswith("zoom_")} == item.without_zoom_fields()
    again = calendar.get(USER, "evt")
    assert again is not None and again.zoom_fields() == fields


def test_write_back_removes_attributes_set_to_none(aws: dict[str, Any]) -> None:
    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    item = _put(aws, **EVENT, zoom_meeting_id="1", zoom_join_url="u", zoom_status="scheduled", zoom_error="x")
    assert calendar.write_back(item, ZoomFields())
    assert not {k for k in _raw(aws) if k.startswith("zoom_")}


@pytest.mark.parametrize(
    "newer",
    [{"subject": "Edited"}, {"start": "2026-03-01T10:30:00+01:00"}, {"time_zone": "UTC"}, {"zoom": False}],
)
def test_write_back_never_overwrites_a_newer_write(aws: dict[str, Any], newer: dict[str, Any]) -> None:
    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    item = _put(aws, **EVENT)
    _put(aws, **{**EVENT, **newer})
    assert calendar.write_back(item, ZoomFields("1", "u", "scheduled")) is False
    assert "zoom_status" not in _raw(aws)


def test_write_back_of_a_deleted_item_creates_nothing(aws: dict[str, Any]) -> None:
    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    item = _put(aws, **EVENT)
    boto3.client("dynamodb").delete_item(
        TableName=aws["CALENDAR_TABLE"], Key={"user_id": {"S": USER}, "event_id": {"S": "evt"}}
    )
    assert calendar.write_back(item, ZoomFields("1", "u", "scheduled")) is False
    assert calendar.get(USER, "evt") is None


def test_unchanged_fields_are_not_written(aws: dict[str, Any]) -> None:
    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    item = _put(aws, **EVENT, zoom_status="feature_disabled")
    _put(aws, **{**EVENT, "subject": "Edited"})  # a write would fail its condition
    assert calendar.write_back(item, ZoomFields(status="feature_disabled")) is True


def test_items_waiting_for_a_connection_are_found(aws: dict[str, Any]) -> None:
    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    ddb = boto3.client("dynamodb")
    for event_id, status, zoom in (
        ("a", "authorization_required", True),
        ("b", "scheduled", True),
        ("c", "authorization_required", False),
    ):
        ddb.put_item(
            TableName=aws["CALENDAR_TABLE"],
            Item=image(USER, event_id, **{**EVENT, "zoom": zoom, "zoom_status": status}),
        )
    ddb.put_item(
        TableName=aws["CALENDAR_TABLE"],
        Item=image("someone-else", "d", **{**EVENT, "zoom_status": "authorization_required"}),
    )
    assert [item.event_id for item in calendar.waiting_for_connection(USER)] == ["a"]


def test_the_sweep_reads_only_waiting_items_through_the_sparse_index(aws: dict[str, Any]) -> None:
    from link_zoom.adapters.aws import client

    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    ddb = boto3.client("dynamodb")
    for number in range(30):
        status = {"zoom_status": "authorization_required"} if number < 2 else {"zoom_status": "scheduled"}
        ddb.put_item(TableName=aws["CALENDAR_TABLE"], Item=image(USER, f"e{number:02}", **{**EVENT, **status}))
    for number in range(30):  # events without any zoom_status are not in the index at all
        ddb.put_item(TableName=aws["CALENDAR_TABLE"], Item=image(USER, f"plain{number:02}", subject="Lunch"))
    scanned: list[int] = []

    def count_read(parsed: dict[str, Any], **_: Any) -> None:
        scanned.append(parsed.get("ScannedCount", 0))

    client("dynamodb").meta.events.register("after-call.dynamodb.Query", count_read)
    try:
        assert [item.event_id for item in calendar.waiting_for_connection(USER)] == ["e00", "e01"]
    finally:
        client("dynamodb").meta.events.unregister("after-call.dynamodb.Query", count_read)
    assert sum(scanned) == 2, "only the waiting items are read, not the user's 60 events"


def test_deleted_at_zoom_only_for_the_same_meeting(aws: dict[str, Any]) -> None:
    calendar = CalendarStore(aws["CALENDAR_TABLE"])
    _put(aws, **EVENT, zoom_meeting_id="1", zoom_join_url="u", zoom_status="scheduled")
    assert calendar.mark_deleted_at_zoom(USER, "evt", "2") is False
    assert calendar.mark_deleted_at_zoom(USER, "evt", "1") is True
    stored = _raw(aws)
    assert stored["zoom_status"] == {"S": "deleted_at_zoom"}
    assert "zoom_meeting_id" not in stored and "zoom_join_url" not in stored
    assert calendar.mark_deleted_at_zoom(USER, "nothing-here", "1") is False
    assert calendar.get(USER, "nothing-here") is None
