"""Recurring events (contract 3a) from the calendar stream to the Zoom emulator: one meeting per series, its
occurrences in step with the rule, exdates and exception items, with the fewest Zoom calls."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devstack.aws import LocalResources
from devstack.events import api_event
from devstack.zoom_emulator import EmulatorHandle, sign_webhook
from tests.integration.connection.zoom_flow import Person
from tests.integration.meetings.conftest import body_of, context
from tests.integration.meetings.stream_tap import CalendarTable
from tests.integration.meetings.test_meetings_integration import meetings_at, request

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
# Mondays and Wednesdays at 09:00 Berlin, six times, across the switch to summer time on 29 March 2099.
SERIES = {
    "subject": "Team sync",
    "start": "2099-03-23T09:00:00+01:00",
    "end": "2099-03-23T09:30:00+01:00",
    "time_zone": "Europe/Berlin",
    "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6",
}
LOCAL_STARTS = [
    "Mon 03-23 09:00",
    "Wed 03-25 09:00",
    "Mon 03-30 09:00",
    "Wed 04-01 09:00",
    "Mon 04-06 09:00",
    "Wed 04-08 09:00",
]
SECOND = "2099-03-25T09:00:00+01:00"  # the second occurrence's original start
THIRD = "2099-03-30T09:00:00+02:00"


@pytest.fixture
def calendar(local_aws: LocalResources, zoom: EmulatorHandle) -> CalendarTable:
    return CalendarTable(local_aws)


def calls(zoom: EmulatorHandle) -> list[tuple[str, str]]:
    """Zoom API calls since the last clear, as (method, path with the meeting id as {id})."""
    found = []
    for call in zoom.calls:
        if call["path"].startswith("/v2/"):
            path = call["path"].split("/v2", 1)[1]
            parts = path.split("/")
            if len(parts) > 2 and parts[1] == "meetings":
                parts[2] = "{id}"
            found.append((call["method"], "/".join(parts)))
    return found


def local(occurrence: dict[str, Any]) -> str:
    moment = datetime.strptime(occurrence["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return moment.astimezone(BERLIN).strftime("%a %m-%d %H:%M")


def available(meeting: dict[str, Any]) -> list[str]:
    return [local(o) for o in meeting["occurrences"] if o["status"] == "available"]


def settle(functions: dict[str, Any], calendar: CalendarTable) -> None:
    """Delivers the stream until it is quiet (the service's own write-backs come back as records)."""
    for _ in range(4):
        records = calendar.new_records()
        if not records:
            return
        answer = functions["calendar_stream"].handler({"Records": records}, context(120, "calendar-stream"))
        assert answer == {"batchItemFailures": []}


@pytest.fixture
def series_event(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> tuple[str, str, dict[str, Any]]:
    """A series with one cancelled date, delivered; (event id, meeting id, the meeting at Zoom)."""
    event_id = f"series-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **SERIES, exdates={THIRD}, zoom=True)
    settle(functions, calendar)
    item = calendar.item(alice.user_id, event_id)
    assert item["zoom_status"] == "scheduled", item
    return event_id, item["zoom_meeting_id"], meetings_at(zoom)[item["zoom_meeting_id"]]


def test_a_series_gets_one_fixed_time_meeting_matching_the_rule_minus_exdates(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    event_id = f"series-{uuid.uuid4()}"
    zoom.clear_calls()
    calendar.put(alice.user_id, event_id, **SERIES, exdates={THIRD}, zoom=True)
    settle(functions, calendar)
    item = calendar.item(alice.user_id, event_id)
    assert item["zoom_status"] == "scheduled" and "zoom_error" not in item
    assert calls(zoom) == [("POST", "/users/me/meetings"), ("DELETE", "/meetings/{id}")]
    meetings = meetings_at(zoom)
    assert len(meetings) == 1
    meeting = meetings[item["zoom_meeting_id"]]
    assert item["zoom_join_url"] == meeting["join_url"]
    assert (meeting["type"], meeting["topic"], meeting["duration"], meeting["timezone"]) == (
        8,
        "Team sync",
        30,
        "Europe/Berlin",
    )
    assert meeting["recurrence"] == {"type": 2, "repeat_interval": 1, "weekly_days": "2,4", "end_times": 6}
    assert [local(o) for o in meeting["occurrences"]] == LOCAL_STARTS  # 09:00 on both sides of the DST switch
    assert available(meeting) == [start for start in LOCAL_STARTS if start != "Mon 03-30 09:00"]

    # Edits Zoom does not care about, replays of every record: no call, no second meeting.
    zoom.clear_calls()
    calendar.update(alice.user_id, event_id, location="Room 7")
    settle(functions, calendar)
    assert calls(zoom) == []


def test_exdate_added_deletes_one_occurrence_and_removed_brings_it_back(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    series_event: tuple[str, str, dict[str, Any]],
) -> None:
    event_id, meeting_id, _ = series_event
    zoom.clear_calls()
    calendar.update(alice.user_id, event_id, exdates={THIRD, SECOND})
    settle(functions, calendar)
    assert calls(zoom) == [("DELETE", "/meetings/{id}")]
    assert "Wed 03-25 09:00" not in available(meetings_at(zoom)[meeting_id])

    zoom.clear_calls()
    calendar.update(alice.user_id, event_id, exdates={THIRD})
    settle(functions, calendar)
    # Zoom cannot undelete one occurrence: the series is re-sent, its ids read, the other date cancelled again.
    assert calls(zoom) == [("PATCH", "/meetings/{id}"), ("GET", "/meetings/{id}"), ("DELETE", "/meetings/{id}")]
    meeting = meetings_at(zoom)[meeting_id]
    assert available(meeting) == [start for start in LOCAL_STARTS if start != "Mon 03-30 09:00"]
    assert calendar.item(alice.user_id, event_id)["zoom_join_url"] == meeting["join_url"]


def test_exception_moves_only_its_occurrence_and_its_removal_puts_it_back(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    series_event: tuple[str, str, dict[str, Any]],
) -> None:
    event_id, meeting_id, before = series_event
    exception_id = f"{event_id}-exc"
    zoom.clear_calls()
    calendar.put(
        alice.user_id,
        exception_id,
        subject="Team sync",
        start="2099-03-25T14:00:00+01:00",
        end="2099-03-25T15:00:00+01:00",
        time_zone="Europe/Berlin",
        series_id=event_id,
        recurrence_id=SECOND,
    )
    settle(functions, calendar)
    assert calls(zoom) == [("PATCH", "/meetings/{id}")]
    exception = calendar.item(alice.user_id, exception_id)
    assert (exception["zoom_meeting_id"], exception["zoom_join_url"], exception["zoom_status"]) == (
        meeting_id,
        before["join_url"],
        "scheduled",
    )
    moved = meetings_at(zoom)[meeting_id]
    second = moved["occurrences"][1]
    assert (local(second), second["duration"]) == ("Wed 03-25 14:00", 60)
    assert second["occurrence_id"] == before["occurrences"][1]["occurrence_id"]
    assert [o for n, o in enumerate(moved["occurrences"]) if n != 1] == [
        o for n, o in enumerate(before["occurrences"]) if n != 1
    ]

    zoom.clear_calls()
    calendar.delete(alice.user_id, exception_id)
    settle(functions, calendar)
    assert calls(zoom) == [("PATCH", "/meetings/{id}")]
    back = meetings_at(zoom)[meeting_id]["occurrences"][1]
    assert (local(back), back["duration"]) == ("Wed 03-25 09:00", 30)


def test_series_change_keeps_the_join_url_and_reapplies_exdates_and_moves(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    series_event: tuple[str, str, dict[str, Any]],
) -> None:
    event_id, meeting_id, before = series_event
    exception_id = f"{event_id}-exc"
    calendar.put(
        alice.user_id,
        exception_id,
        start="2099-03-25T14:00:00+01:00",
        end="2099-03-25T14:30:00+01:00",
        series_id=event_id,
        recurrence_id=SECOND,
    )
    settle(functions, calendar)

    zoom.clear_calls()
    calendar.update(alice.user_id, event_id, subject="Team sync (new name)")
    settle(functions, calendar)
    assert calls(zoom) == [("PATCH", "/meetings/{id}")]  # the topic only: occurrences untouched
    assert meetings_at(zoom)[meeting_id]["topic"] == "Team sync (new name)"

    zoom.clear_calls()
    calendar.update(alice.user_id, event_id, recurrence="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8")
    settle(functions, calendar)
    assert calls(zoom) == [
        ("PATCH", "/meetings/{id}"),  # the series
        ("GET", "/meetings/{id}"),  # its new occurrence ids
        ("DELETE", "/meetings/{id}"),  # the exdate again
        ("PATCH", "/meetings/{id}"),  # the exception's move again
    ]
    meeting = meetings_at(zoom)[meeting_id]
    assert meeting["join_url"] == before["join_url"] and len(meetings_at(zoom)) == 1
    assert len(meeting["occurrences"]) == 8
    assert available(meeting) == [
        "Mon 03-23 09:00",
        "Wed 03-25 14:00",
        "Wed 04-01 09:00",
        "Mon 04-06 09:00",
        "Wed 04-08 09:00",
        "Mon 04-13 09:00",
        "Wed 04-15 09:00",
    ]


def test_toggle_off_and_remove_delete_the_whole_meeting(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    series_event: tuple[str, str, dict[str, Any]],
) -> None:
    event_id, meeting_id, _ = series_event
    exception_id = f"{event_id}-exc"
    calendar.put(
        alice.user_id,
        exception_id,
        start="2099-03-25T14:00:00+01:00",
        end="2099-03-25T14:30:00+01:00",
        series_id=event_id,
        recurrence_id=SECOND,
    )
    settle(functions, calendar)
    zoom.clear_calls()
    calendar.update(alice.user_id, event_id, zoom=False)
    settle(functions, calendar)
    assert calls(zoom) == [("DELETE", "/meetings/{id}")]
    assert meeting_id not in meetings_at(zoom)
    for event in (event_id, exception_id):
        assert not {name for name in calendar.item(alice.user_id, event) if name.startswith("zoom_")}

    calendar.update(alice.user_id, event_id, zoom=True)
    settle(functions, calendar)
    again = calendar.item(alice.user_id, event_id)["zoom_meeting_id"]
    assert calendar.item(alice.user_id, exception_id)["zoom_meeting_id"] == again  # re-applied on create
    zoom.clear_calls()
    calendar.delete(alice.user_id, event_id)
    settle(functions, calendar)
    assert calls(zoom) == [("DELETE", "/meetings/{id}")] and meetings_at(zoom) == {}


def test_a_series_zoom_cannot_express_gets_one_meeting_without_fixed_times(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    event_id = f"series-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **{**SERIES, "recurrence": "FREQ=WEEKLY;BYDAY=MO"}, zoom=True)
    settle(functions, calendar)
    item = calendar.item(alice.user_id, event_id)
    meeting = meetings_at(zoom)[item["zoom_meeting_id"]]
    assert meeting["type"] == 3 and "occurrences" not in meeting
    assert item["zoom_status"] == "scheduled" and item["zoom_join_url"] == meeting["join_url"]
    assert "no end" in item["zoom_error"] and item["zoom_error"].endswith(".")


@pytest.mark.parametrize(
    ("recurrence", "words"),
    [("FREQ=SOMETIMES", "not a valid RRULE"), ("FREQ=WEEKLY;BYDAY=TU;COUNT=3", "is not the event's start")],
)
def test_a_rule_that_does_not_parse_or_start_at_start_fails_without_a_call(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    recurrence: str,
    words: str,
) -> None:
    event_id = f"series-{uuid.uuid4()}"
    zoom.clear_calls()
    calendar.put(alice.user_id, event_id, **{**SERIES, "recurrence": recurrence}, zoom=True)
    settle(functions, calendar)
    item = calendar.item(alice.user_id, event_id)
    assert item["zoom_status"] == "failed" and words in item["zoom_error"]
    assert calls(zoom) == []


def test_replayed_records_make_one_series_meeting(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    event_id = f"series-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **SERIES, zoom=True)
    records = calendar.new_records()
    for _ in range(3):
        answer = functions["calendar_stream"].handler({"Records": records}, context(60, "calendar-stream"))
        assert answer == {"batchItemFailures": []}
    assert len(meetings_at(zoom)) == 1


def test_meeting_deleted_for_one_occurrence_leaves_the_series_alone(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    series_event: tuple[str, str, dict[str, Any]],
) -> None:
    event_id, meeting_id, before = series_event
    occurrence = before["occurrences"][0]
    body = json.dumps(
        {
            "event": "meeting.deleted",
            "event_ts": int(time.time() * 1000),
            "payload": {
                "account_id": "a",
                "object": {"id": int(meeting_id), "host_id": "h", "occurrences": [occurrence]},
            },
        }
    ).encode()
    stamp = str(int(time.time()))
    headers = {"x-zm-request-timestamp": stamp, "x-zm-signature": sign_webhook(zoom.config.webhook_secret, stamp, body)}
    event = api_event("POST", "/v1/zoom/webhook", body=body, headers=headers)
    assert functions["zoom_webhook"].handler(event, context())["statusCode"] == 200
    item = calendar.item(alice.user_id, event_id)
    assert (item["zoom_status"], item["zoom_meeting_id"]) == ("scheduled", meeting_id)


def test_put_takes_a_recurrence_and_refuses_a_bad_one(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    body = {
        "topic": "Team sync",
        "start": SERIES["start"],
        "end": SERIES["end"],
        "time_zone": "Europe/Berlin",
        "recurrence": SERIES["recurrence"],
    }
    event_id = f"series-{uuid.uuid4()}"
    first = request(functions, "PUT", f"/v1/events/{event_id}/zoom", alice, body)
    assert first["statusCode"] == 200, first
    answer = body_of(first)
    meeting = meetings_at(zoom)[answer["meeting_id"]]
    assert meeting["type"] == 8 and len(meeting["occurrences"]) == 6
    assert answer["start_time"] == "2099-03-23T08:00:00Z" and answer["duration_minutes"] == 30
    zoom.clear_calls()
    again = request(functions, "PUT", f"/v1/events/{event_id}/zoom", alice, body)
    assert body_of(again) == answer and calls(zoom) == []

    for bad in ("FREQ=NEVER", "FREQ=WEEKLY;BYDAY=TU;COUNT=2", 7):
        refused = request(functions, "PUT", f"/v1/events/other-{uuid.uuid4()}/zoom", alice, {**body, "recurrence": bad})
        assert refused["statusCode"] == 400
        assert body_of(refused)["error"]["code"] == "bad_request"


def test_zoom_daily_limit_leaves_the_series_rate_limited_and_its_work_queued(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    event_id = f"series-{uuid.uuid4()}"
    # Zoom's own daily 429 has no Retry-After (the reset is 00:00 UTC); one second here stands for the reset.
    daily = {"X-RateLimit-Type": "Daily-limit", "X-RateLimit-Remaining": "0", "Retry-After": "1"}
    zoom.state.add_fault(method="POST", path="/v2/users/me/meetings", status=429, headers=daily, times=1)
    calendar.put(alice.user_id, event_id, **SERIES, zoom=True)
    records = calendar.new_records()
    answer = functions["calendar_stream"].handler({"Records": records}, context(60, "calendar-stream"))
    assert answer == {"batchItemFailures": []}  # a 429 never fails a record: the work queue waits it out
    item = calendar.item(alice.user_id, event_id)
    assert item["zoom_status"] == "rate_limited" and "limit" in item["zoom_error"]
    assert meetings_at(zoom) == {}
    # What the queued work does once the limit resets: reconcile the item as it is then (until the reset the
    # user is known limited, and a create would not even be sent).
    time.sleep(1.2)
    answer = functions["calendar_stream"].handler({"Records": records}, context(60, "calendar-stream"))
    assert answer == {"batchItemFailures": []}
    assert calendar.item(alice.user_id, event_id)["zoom_status"] == "scheduled" and len(meetings_at(zoom)) == 1


def test_a_series_that_loses_its_rule_becomes_a_single_meeting(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    series_event: tuple[str, str, dict[str, Any]],
) -> None:
    event_id, meeting_id, _ = series_event
    zoom.clear_calls()
    calendar.remove_attributes(alice.user_id, event_id, "recurrence", "exdates")
    settle(functions, calendar)
    item = calendar.item(alice.user_id, event_id)
    meetings = meetings_at(zoom)
    assert meeting_id not in meetings and len(meetings) == 1
    single = meetings[item["zoom_meeting_id"]]
    assert (single["type"], single["start_time"], item["zoom_status"]) == (2, "2099-03-23T08:00:00Z", "scheduled")
    assert calls(zoom) == [("DELETE", "/meetings/{id}"), ("POST", "/users/me/meetings")]


def test_occurrences_that_differ_from_the_rule_are_logged_and_counted(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Zoom makes the meeting, but its answer lists the occurrences a day late (as a Zoom that read the rule
    # differently would): the service keeps Zoom's ids and says so.
    answer = {
        "id": 99999999901,
        "join_url": "https://zoom.example/j/99999999901",
        "occurrences": [
            {"occurrence_id": str(4077072000000 + n * 86400000), "start_time": start, "duration": 30}
            for n, start in enumerate(["2099-03-24T08:00:00Z", "2099-03-26T08:00:00Z"])
        ],
    }
    zoom.state.add_fault(
        method="POST", path="/v2/users/me/meetings", status=201, body=json.dumps(answer), after_handling=True
    )
    event_id = f"series-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **{**SERIES, "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=2"}, zoom=True)
    capsys.readouterr()
    settle(functions, calendar)
    output = capsys.readouterr().out
    assert any(record.getMessage() == "Zoom's occurrences differ from the rule's" for record in caplog.records)
    assert '"SeriesOccurrenceMismatch":[1.0]' in output.replace(" ", "")
    assert calendar.item(alice.user_id, event_id)["zoom_meeting_id"] == "99999999901"


def test_a_series_without_fixed_times_links_exceptions_and_exdates_without_calls(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    event_id = f"series-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **{**SERIES, "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE"}, zoom=True)
    settle(functions, calendar)
    series = calendar.item(alice.user_id, event_id)
    zoom.clear_calls()
    calendar.update(alice.user_id, event_id, exdates={SECOND})
    calendar.put(
        alice.user_id,
        f"{event_id}-exc",
        start="2099-03-30T15:00:00+02:00",
        end="2099-03-30T15:30:00+02:00",
        series_id=event_id,
        recurrence_id=THIRD,
    )
    settle(functions, calendar)
    assert calls(zoom) == []
    exception = calendar.item(alice.user_id, f"{event_id}-exc")
    assert (exception["zoom_meeting_id"], exception["zoom_join_url"]) == (
        series["zoom_meeting_id"],
        series["zoom_join_url"],
    )


def test_an_exception_that_switches_occurrence_puts_the_first_one_back(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    series_event: tuple[str, str, dict[str, Any]],
) -> None:
    event_id, meeting_id, _ = series_event
    exception_id = f"{event_id}-exc"
    moved = {"start": "2099-03-25T14:00:00+01:00", "end": "2099-03-25T14:30:00+01:00"}
    calendar.put(alice.user_id, exception_id, **moved, series_id=event_id, recurrence_id=SECOND)
    settle(functions, calendar)
    zoom.clear_calls()
    calendar.update(
        alice.user_id,
        exception_id,
        start="2099-04-01T16:00:00+02:00",
        end="2099-04-01T16:30:00+02:00",
        recurrence_id="2099-04-01T09:00:00+02:00",
    )
    settle(functions, calendar)
    assert calls(zoom) == [("PATCH", "/meetings/{id}"), ("PATCH", "/meetings/{id}")]  # back, then the new one
    assert available(meetings_at(zoom)[meeting_id]) == [
        "Mon 03-23 09:00",
        "Wed 03-25 09:00",
        "Wed 04-01 16:00",
        "Mon 04-06 09:00",
        "Wed 04-08 09:00",
    ]


def test_put_without_recurrence_on_a_series_makes_it_a_single_meeting(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    body = {"topic": "Team sync", "start": SERIES["start"], "end": SERIES["end"], "recurrence": SERIES["recurrence"]}
    event_id = f"series-{uuid.uuid4()}"
    series = body_of(request(functions, "PUT", f"/v1/events/{event_id}/zoom", alice, body))
    single = body_of(request(functions, "PUT", f"/v1/events/{event_id}/zoom", alice, {**body, "recurrence": None}))
    assert single is not None and "error" in single  # null is not a rule
    body.pop("recurrence")
    single = body_of(request(functions, "PUT", f"/v1/events/{event_id}/zoom", alice, body))
    meetings = meetings_at(zoom)
    assert series["meeting_id"] not in meetings and meetings[single["meeting_id"]]["type"] == 2


@pytest.mark.parametrize("recurrence", ["FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6", "FREQ=WEEKLY;BYDAY=MO,WE"])
def test_a_series_create_whose_answer_is_lost_is_adopted_not_made_twice(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable, recurrence: str
) -> None:
    zoom.state.add_fault(
        method="POST", path="/v2/users/me/meetings", status=201, body="<html>proxy</html>", after_handling=True
    )
    event_id = f"series-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **{**SERIES, "recurrence": recurrence}, zoom=True)
    records = calendar.new_records()
    first = functions["calendar_stream"].handler({"Records": records}, context(60, "calendar-stream"))
    assert len(first["batchItemFailures"]) == 1 and len(meetings_at(zoom)) == 1  # made, answer lost
    again = functions["calendar_stream"].handler({"Records": records}, context(60, "calendar-stream"))
    assert again == {"batchItemFailures": []}
    settle(functions, calendar)
    item = calendar.item(alice.user_id, event_id)
    meetings = meetings_at(zoom)
    assert list(meetings) == [item["zoom_meeting_id"]] and item["zoom_status"] == "scheduled"


def test_racing_deliveries_of_one_series_make_one_meeting(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    zoom.state.set_latency(200)  # both are inside the create at once
    event_id = f"series-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **SERIES, exdates={THIRD}, zoom=True)
    records = calendar.new_records()
    answers: list[dict[str, Any]] = []

    def deliver_once() -> None:
        answers.append(functions["calendar_stream"].handler({"Records": records}, context(60, "calendar-stream")))

    threads = [threading.Thread(target=deliver_once) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    zoom.state.set_latency(0)
    assert answers == [{"batchItemFailures": []}] * 3
    settle(functions, calendar)
    meetings = meetings_at(zoom)
    assert len(meetings) == 1
    meeting = next(iter(meetings.values()))
    assert available(meeting) == [start for start in LOCAL_STARTS if start != "Mon 03-30 09:00"]
    assert calendar.item(alice.user_id, event_id)["zoom_meeting_id"] == str(meeting["id"])


def test_a_series_whose_meeting_was_deleted_at_zoom_gets_a_new_one_on_its_next_change(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    series_event: tuple[str, str, dict[str, Any]],
) -> None:
    event_id, meeting_id, _ = series_event
    zoom.state.remove_meeting(int(meeting_id))  # deleted in the Zoom app, no webhook
    calendar.update(alice.user_id, event_id, recurrence="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8")
    settle(functions, calendar)
    item = calendar.item(alice.user_id, event_id)
    meetings = meetings_at(zoom)
    assert item["zoom_status"] == "scheduled" and list(meetings) == [item["zoom_meeting_id"]]
    assert len(available(meetings[item["zoom_meeting_id"]])) == 7  # 8 minus the exdate
