"""Recurring events through the stack `make run` starts: the Link server's series and exception items in the
stack's calendar table, the stream poller, the Zoom emulator's recurring meetings, the sweep after connecting."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import E2EStack
from tests.e2e.test_meetings_e2e import Calendar, Emulator, User, settle, sign_in, wait_for

SERIES: dict[str, Any] = {
    "subject": "Weekly sync",
    "start": "2099-03-23T09:00:00+01:00",
    "end": "2099-03-23T09:30:00+01:00",
    "time_zone": "Europe/Berlin",
    "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=4",
}


@pytest.fixture(scope="module")
def people(stack: E2EStack) -> tuple[User, User]:
    """(admin, user): the switch on, the user connected to Zoom."""
    admin = sign_in(stack, "admin")
    assert admin.call("PUT", "/v1/admin/features/zoom", {"enabled": True}).json() == {"enabled": True}
    user = sign_in(stack, "user")
    user.connect_zoom()
    return admin, user


@pytest.fixture
def zoom(stack: E2EStack, people: tuple[User, User]) -> Emulator:
    assert stack.zoom_emulator_url, "these tests need the stack's own Zoom emulator"
    emulator = Emulator(stack.zoom_emulator_url)
    emulator.clear()
    return emulator


@pytest.fixture
def calendar(stack: E2EStack) -> Calendar:
    return Calendar(stack)


def put_series(calendar: Calendar, user_id: str, event_id: str, exdates: set[str], **attributes: Any) -> None:
    calendar.put(user_id, event_id, **attributes, **({"exdates": exdates} if exdates else {}))


def berlin(occurrences: list[dict[str, Any]], status: str = "available") -> list[str]:
    zone = ZoneInfo("Europe/Berlin")
    return [
        datetime.strptime(o["start_time"], "%Y-%m-%dT%H:%M:%SZ")
        .replace(tzinfo=UTC)
        .astimezone(zone)
        .strftime("%m-%d %H:%M")
        for o in occurrences
        if o["status"] == status
    ]


def test_a_series_with_an_exdate_and_an_exception_through_the_stack(
    zoom: Emulator, people: tuple[User, User], calendar: Calendar
) -> None:
    alice = people[1]
    series_id = f"e2e-series-{uuid.uuid4()}"
    put_series(calendar, alice.user_id, series_id, {"2099-04-06T09:00:00+02:00"}, **SERIES, zoom=True)
    item = calendar.status_of(alice.user_id, series_id, "scheduled")
    meeting_id = item["zoom_meeting_id"]
    meeting = wait_for(lambda: (m := zoom.meetings()[meeting_id]) and berlin(m["occurrences"], "deleted") and m)
    assert meeting["type"] == 8 and item["zoom_join_url"] == meeting["join_url"]
    assert berlin(meeting["occurrences"]) == ["03-23 09:00", "03-30 09:00", "04-13 09:00"]  # DST on 29 March
    assert berlin(meeting["occurrences"], "deleted") == ["04-06 09:00"]
    settle()
    assert [c["method"] for c in zoom.calls()] == ["POST", "DELETE"]

    zoom.clear()
    exception_id = f"{series_id}-exception"
    calendar.put(
        alice.user_id,
        exception_id,
        start="2099-03-30T15:00:00+02:00",
        end="2099-03-30T15:30:00+02:00",
        series_id=series_id,
        recurrence_id="2099-03-30T09:00:00+02:00",
    )
    exception = calendar.status_of(alice.user_id, exception_id, "scheduled")
    assert (exception["zoom_meeting_id"], exception["zoom_join_url"]) == (meeting_id, meeting["join_url"])
    wait_for(lambda: "03-30 15:00" in berlin(zoom.meetings()[meeting_id]["occurrences"]))
    settle()
    assert [(c["method"], c["path"]) for c in zoom.calls()] == [("PATCH", f"/v2/meetings/{meeting_id}")]

    zoom.clear()
    calendar.delete(alice.user_id, series_id)
    wait_for(lambda: meeting_id not in zoom.meetings())
    wait_for(lambda: "zoom_meeting_id" not in calendar.item(alice.user_id, exception_id))
    settle()
    assert [c["method"] for c in zoom.calls()] == ["DELETE"]


def test_the_sweep_after_connecting_covers_series_whose_last_occurrence_has_not_ended(
    zoom: Emulator, people: tuple[User, User], calendar: Calendar
) -> None:
    admin = people[0]
    admin.disconnect_zoom()
    running, ended = f"e2e-series-{uuid.uuid4()}", f"e2e-series-{uuid.uuid4()}"
    began_in_the_past = {**SERIES, "start": "2020-01-06T09:00:00+01:00", "end": "2020-01-06T09:30:00+01:00"}
    put_series(calendar, admin.user_id, running, set(), **{**began_in_the_past, "recurrence": "FREQ=WEEKLY"}, zoom=True)
    put_series(
        calendar, admin.user_id, ended, set(), **{**began_in_the_past, "recurrence": "FREQ=WEEKLY;COUNT=3"}, zoom=True
    )
    calendar.status_of(admin.user_id, running, "authorization_required")
    calendar.status_of(admin.user_id, ended, "authorization_required")

    admin.connect_zoom()
    scheduled = calendar.status_of(admin.user_id, running, "scheduled", timeout=60)
    meeting = zoom.meetings()[scheduled["zoom_meeting_id"]]
    assert meeting["type"] == 3 and "no end" in scheduled["zoom_error"]  # a series without end: no fixed times
    assert calendar.item(admin.user_id, ended)["zoom_status"] == "authorization_required"
