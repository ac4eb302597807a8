"""Which calendar records concern a recurring event (decide() from the images alone), and Zoom's
meeting.deleted for one occurrence, which leaves the series alone."""

from __future__ import annotations

from typing import Any

from link_zoom.domain.calendar_events import decide
from link_zoom.domain.webhook import Webhook
from tests.unit.meetings.fakes import image, stream_record

SERIES: dict[str, Any] = {
    "subject": "Team sync",
    "start": "2099-03-23T09:00:00+01:00",
    "end": "2099-03-23T09:30:00+01:00",
    "time_zone": "Europe/Berlin",
    "recurrence": "FREQ=WEEKLY;COUNT=6",
    "zoom": True,
}
EXCEPTION: dict[str, Any] = {
    "start": "2099-03-30T14:00:00+02:00",
    "end": "2099-03-30T14:30:00+02:00",
    "series_id": "series-1",
    "recurrence_id": "2099-03-30T09:00:00+02:00",
}


def modify(attributes: dict[str, Any], event_id: str = "series-1", **changes: Any) -> dict[str, Any]:
    old = image(event_id=event_id, **attributes)
    new = image(event_id=event_id, **{**attributes, **changes})
    return stream_record("MODIFY", old, new)


def test_an_exception_item_follows_its_series_without_a_zoom_toggle_of_its_own() -> None:
    inserted = decide(stream_record("INSERT", None, image(event_id="exc-1", **EXCEPTION)))
    assert inserted.needs_reconcile
    moved = decide(modify(EXCEPTION, "exc-1", start="2099-03-30T15:00:00+02:00", end="2099-03-30T15:30:00+02:00"))
    assert moved.needs_reconcile
    linked = {**EXCEPTION, "zoom_meeting_id": "81000000001"}
    assert not decide(modify(linked, "exc-1", location="Room 2")).needs_reconcile


def test_rule_and_exdates_changes_concern_the_series_and_unrelated_edits_do_not() -> None:
    assert decide(modify(SERIES, recurrence="FREQ=WEEKLY;COUNT=8")).needs_reconcile
    assert decide(modify(SERIES, exdates={"2099-03-30T09:00:00+02:00"})).needs_reconcile
    with_meeting = {**SERIES, "zoom_meeting_id": "81000000001"}
    assert not decide(modify(with_meeting, location="Room 2")).needs_reconcile


def test_meeting_deleted_for_one_occurrence_leaves_the_series_alone() -> None:
    deleted: list[str] = []
    webhook = Webhook(
        secret=lambda: "s",
        zoom_client_id="c",
        forget_zoom_user=lambda *_: 0,
        meeting_deleted=lambda meeting_id: deleted.append(meeting_id) or 1,
    )
    one = {"id": 81000000001, "occurrences": [{"occurrence_id": "4077072000000", "start_time": "2099-03-23T08:00:00Z"}]}
    assert webhook.handle({"event": "meeting.deleted", "payload": {"object": one}}) == {"status": "ignored"}
    assert deleted == []
    whole = {"id": 81000000001}
    assert webhook.handle({"event": "meeting.deleted", "payload": {"object": whole}}) == {"status": "handled"}
    assert deleted == ["81000000001"]
