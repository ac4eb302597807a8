"""Recurring events (contract 3a) from the calendar stream to the Zoom emulator: one meeting per series, its
occurrences in step with the rule, exdates and exception items, with the fewest Zoom calls."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

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
LOCAL_STARTS_BUT_THIRD = [start for start in LOCAL_STARTS if start != "Mon 03-30 09:00"]
SECOND = "2099-03-25T09:00:00+01:00"  # the second occurrence's original start
THIRD = "2099-03-30T09:00:00+02:00"
SECOND_MOVED = {"start": "2099-03-25T14:00:00+01:00", "end": "2099-03-25T14:30:00+01:00"}


@dataclass
class Stage:
    """Alice's calendar as the Link server writes it, its stream delivered to the stream function, and Zoom."""

    zoom: EmulatorHandle
    functions: dict[str, Any]
    alice: Person
    calendar: CalendarTable

    def put_series(self, **attributes: Any) -> str:
        """A new series item with Zoom on (SERIES, changed by `attributes`); its event id."""
        event_id = f"series-{uuid.uuid4()}"
        self.calendar.put(self.alice.user_id, event_id, **{**SERIES, **attributes}, zoom=True)
        return event_id

    def put_exception(self, event_id: str, recurrence_id: str = SECOND, **attributes: Any) -> str:
        """An exception item of the series `event_id` for the occurrence `recurrence_id`; its event id."""
        exception_id = f"{event_id}-exc"
        self.calendar.put(
            self.alice.user_id, exception_id, **attributes, series_id=event_id, recurrence_id=recurrence_id
        )
        return exception_id

    def update(self, event_id: str, **attributes: Any) -> None:
        self.calendar.update(self.alice.user_id, event_id, **attributes)

    def item(self, event_id: str) -> dict[str, Any]:
        return self.calendar.item(self.alice.user_id, event_id)

    def deliver(self, records: list[dict[str, Any]], seconds: float = 60) -> dict[str, Any]:
        """Hands `records` to the stream function once, as the event source mapping would; its answer."""
        answer: dict[str, Any] = self.functions["calendar_stream"].handler(
            {"Records": records}, context(seconds, "calendar-stream")
        )
        return answer

    def settle(self) -> None:
        """Delivers the stream until it is quiet (the service's own write-backs come back as records)."""
        for _ in range(4):
            records = self.calendar.new_records()
            if not records:
                return
            assert self.deliver(records, seconds=120) == {"batchItemFailures": []}

    def calls(self) -> list[tuple[str, str]]:
        """Zoom API calls since the last clear, as (method, path with the meeting id as {id})."""
        found = []
        for call in self.zoom.calls:
            if call["path"].startswith("/v2/"):
                path = call["path"].split("/v2", 1)[1]
                parts = path.split("/")
                if len(parts) > 2 and parts[1] == "meetings":
                    parts[2] = "{id}"
                found.append((call["method"], "/".join(parts)))
        return found

    def meetings(self) -> dict[str, dict[str, Any]]:
        return meetings_at(self.zoom)

    def put_request(self, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return request(self.functions, "PUT", f"/v1/events/{event_id}/zoom", self.alice, body)


@pytest.fixture
def stage(zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable) -> Stage:
    return Stage(zoom, functions, alice, calendar)


def local(occurrence: dict[str, Any]) -> str:
    moment = datetime.strptime(occurrence["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return moment.astimezone(BERLIN).strftime("%a %m-%d %H:%M")


def available(meeting: dict[str, Any]) -> list[str]:
    return [local(o) for o in meeting["occurrences"] if o["status"] == "available"]


@pytest.fixture
def series_event(stage: Stage) -> tuple[str, str, dict[str, Any]]:
    """A series with one cancelled date, delivered; (event id, meeting id, the meeting at Zoom)."""
    event_id = stage.put_series(exdates={THIRD})
    stage.settle()
    item = stage.item(event_id)
    assert item["zoom_status"] == "scheduled", item
    return event_id, item["zoom_meeting_id"], stage.meetings()[item["zoom_meeting_id"]]


@pytest.fixture
def second_moved(stage: Stage, series_event: tuple[str, str, dict[str, Any]]) -> tuple[str, str, dict[str, Any], str]:
    """That series with its second occurrence moved to 14:00 by an exception item, delivered, Zoom's calls
    cleared; (event id, meeting id, the meeting at Zoom before the move, the exception's event id)."""
    event_id, meeting_id, before = series_event
    exception_id = stage.put_exception(event_id, **SECOND_MOVED)
    stage.settle()
    stage.zoom.clear_calls()
    return event_id, meeting_id, before, exception_id


def test_a_series_gets_one_fixed_time_meeting_matching_the_rule_minus_exdates(stage: Stage) -> None:
    stage.zoom.clear_calls()
    event_id = stage.put_series(exdates={THIRD})
    stage.settle()
    item = stage.item(event_id)
    assert item["zoom_status"] == "scheduled" and "zoom_error" not in item
    assert stage.calls() == [("POST", "/users/me/meetings"), ("DELETE", "/meetings/{id}")]
    meetings = stage.meetings()
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
    assert available(meeting) == LOCAL_STARTS_BUT_THIRD

    # Edits Zoom does not care about, replays of every record: no call, no second meeting.
    stage.zoom.clear_calls()
    stage.update(event_id, location="Room 7")
    stage.settle()
    assert stage.calls() == []


def test_exdate_added_deletes_one_occurrence_and_removed_brings_it_back(
    stage: Stage, series_event: tuple[str, str, dict[str, Any]]
) -> None:
    event_id, meeting_id, _ = series_event
    stage.zoom.clear_calls()
    stage.update(event_id, exdates={THIRD, SECOND})
    stage.settle()
    assert stage.calls() == [("DELETE", "/meetings/{id}")]
    assert "Wed 03-25 09:00" not in available(stage.meetings()[meeting_id])

    stage.zoom.clear_calls()
    stage.update(event_id, exdates={THIRD})
    stage.settle()
    # Zoom cannot undelete one occurrence: the series is re-sent, its ids read, the other date cancelled again.
    assert stage.calls() == [("PATCH", "/meetings/{id}"), ("GET", "/meetings/{id}"), ("DELETE", "/meetings/{id}")]
    meeting = stage.meetings()[meeting_id]
    assert available(meeting) == LOCAL_STARTS_BUT_THIRD
    assert stage.item(event_id)["zoom_join_url"] == meeting["join_url"]


def test_exception_moves_only_its_occurrence_and_its_removal_puts_it_back(
    stage: Stage, series_event: tuple[str, str, dict[str, Any]]
) -> None:
    event_id, meeting_id, before = series_event
    stage.zoom.clear_calls()
    exception_id = stage.put_exception(
        event_id,
        subject="Team sync",
        start="2099-03-25T14:00:00+01:00",
        end="2099-03-25T15:00:00+01:00",
        time_zone="Europe/Berlin",
    )
    stage.settle()
    assert stage.calls() == [("PATCH", "/meetings/{id}")]
    exception = stage.item(exception_id)
    assert (exception["zoom_meeting_id"], exception["zoom_join_url"], exception["zoom_status"]) == (
        meeting_id,
        before["join_url"],
        "scheduled",
    )
    moved = stage.meetings()[meeting_id]
    second = moved["occurrences"][1]
    assert (local(second), second["duration"]) == ("Wed 03-25 14:00", 60)
    assert second["occurrence_id"] == before["occurrences"][1]["occurrence_id"]
    assert [o for n, o in enumerate(moved["occurrences"]) if n != 1] == [
        o for n, o in enumerate(before["occurrences"]) if n != 1
    ]

    stage.zoom.clear_calls()
    stage.calendar.delete(stage.alice.user_id, exception_id)
    stage.settle()
    assert stage.calls() == [("PATCH", "/meetings/{id}")]
    back = stage.meetings()[meeting_id]["occurrences"][1]
    assert (local(back), back["duration"]) == ("Wed 03-25 09:00", 30)


def test_series_change_keeps_the_join_url_and_reapplies_exdates_and_moves(
    stage: Stage, second_moved: tuple[str, str, dict[str, Any], str]
) -> None:
    event_id, meeting_id, before, _ = second_moved
    stage.update(event_id, subject="Team sync (new name)")
    stage.settle()
    assert stage.calls() == [("PATCH", "/meetings/{id}")]  # the topic only: occurrences untouched
    assert stage.meetings()[meeting_id]["topic"] == "Team sync (new name)"

    stage.zoom.clear_calls()
    stage.update(event_id, recurrence="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8")
    stage.settle()
    assert stage.calls() == [
        ("PATCH", "/meetings/{id}"),  # the series
        ("GET", "/meetings/{id}"),  # its new occurrence ids
        ("DELETE", "/meetings/{id}"),  # the exdate again
        ("PATCH", "/meetings/{id}"),  # the exception's move again
    ]
    meeting = stage.meetings()[meeting_id]
    assert meeting["join_url"] == before["join_url"] and len(stage.meetings()) == 1
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
    stage: Stage, second_moved: tuple[str, str, dict[str, Any], str]
) -> None:
    event_id, meeting_id, _, exception_id = second_moved
    stage.update(event_id, zoom=False)
    stage.settle()
    assert stage.calls() == [("DELETE", "/meetings/{id}")]
    assert meeting_id not in stage.meetings()
    for event in (event_id, exception_id):
        assert not {name for name in stage.item(event) if name.startswith("zoom_")}

    stage.update(event_id, zoom=True)
    stage.settle()
    again = stage.item(event_id)["zoom_meeting_id"]
    assert stage.item(exception_id)["zoom_meeting_id"] == again  # re-applied on create
    stage.zoom.clear_calls()
    stage.calendar.delete(stage.alice.user_id, event_id)
    stage.settle()
    assert stage.calls() == [("DELETE", "/meetings/{id}")] and stage.meetings() == {}


def test_a_series_zoom_cannot_express_gets_one_meeting_without_fixed_times(stage: Stage) -> None:
    event_id = stage.put_series(recurrence="FREQ=WEEKLY;BYDAY=MO")
    stage.settle()
    item = stage.item(event_id)
    meeting = stage.meetings()[item["zoom_meeting_id"]]
    assert meeting["type"] == 3 and "occurrences" not in meeting
    assert item["zoom_status"] == "scheduled" and item["zoom_join_url"] == meeting["join_url"]
    assert "no end" in item["zoom_error"] and item["zoom_error"].endswith(".")


@pytest.mark.parametrize(
    ("recurrence", "words"),
    [("FREQ=SOMETIMES", "not a valid RRULE"), ("FREQ=WEEKLY;BYDAY=TU;COUNT=3", "is not the event's start")],
)
def test_a_rule_that_does_not_parse_or_start_at_start_fails_without_a_call(
    stage: Stage, recurrence: str, words: str
) -> None:
    stage.zoom.clear_calls()
    event_id = stage.put_series(recurrence=recurrence)
    stage.settle()
    item = stage.item(event_id)
    assert item["zoom_status"] == "failed" and words in item["zoom_error"]
    assert stage.calls() == []


def test_replayed_records_make_one_series_meeting(stage: Stage) -> None:
    stage.put_series()
    records = stage.calendar.new_records()
    for _ in range(3):
        assert stage.deliver(records) == {"batchItemFailures": []}
    assert len(stage.meetings()) == 1


def test_meeting_deleted_for_one_occurrence_leaves_the_series_alone(
    stage: Stage, series_event: tuple[str, str, dict[str, Any]]
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
    signature = sign_webhook(stage.zoom.config.webhook_secret, stamp, body)
    headers = {"x-zm-request-timestamp": stamp, "x-zm-signature": signature}
    event = api_event("POST", "/v1/zoom/webhook", body=body, headers=headers)
    assert stage.functions["zoom_webhook"].handler(event, context())["statusCode"] == 200
    item = stage.item(event_id)
    assert (item["zoom_status"], item["zoom_meeting_id"]) == ("scheduled", meeting_id)


def test_put_takes_a_recurrence_and_refuses_a_bad_one(stage: Stage) -> None:
    body = {
        "topic": "Team sync",
        "start": SERIES["start"],
        "end": SERIES["end"],
        "time_zone": "Europe/Berlin",
        "recurrence": SERIES["recurrence"],
    }
    event_id = f"series-{uuid.uuid4()}"
    first = stage.put_request(event_id, body)
    assert first["statusCode"] == 200, first
    answer = body_of(first)
    meeting = stage.meetings()[answer["meeting_id"]]
    assert meeting["type"] == 8 and len(meeting["occurrences"]) == 6
    assert answer["start_time"] == "2099-03-23T08:00:00Z" and answer["duration_minutes"] == 30
    stage.zoom.clear_calls()
    again = stage.put_request(event_id, body)
    assert body_of(again) == answer and stage.calls() == []

    for bad in ("FREQ=NEVER", "FREQ=WEEKLY;BYDAY=TU;COUNT=2", 7):
        refused = stage.put_request(f"other-{uuid.uuid4()}", {**body, "recurrence": bad})
        assert refused["statusCode"] == 400
        assert body_of(refused)["error"]["code"] == "bad_request"


def test_zoom_daily_limit_leaves_the_series_rate_limited_and_its_work_queued(stage: Stage) -> None:
    # Zoom's own daily 429 has no Retry-After (the reset is 00:00 UTC); one second here stands for the reset.
    daily = {"X-RateLimit-Type": "Daily-limit", "X-RateLimit-Remaining": "0", "Retry-After": "1"}
    stage.zoom.state.add_fault(method="POST", path="/v2/users/me/meetings", status=429, headers=daily, times=1)
    event_id = stage.put_series()
    records = stage.calendar.new_records()
    assert stage.deliver(records) == {"batchItemFailures": []}  # a 429 never fails a record: the work queue waits
    item = stage.item(event_id)
    assert item["zoom_status"] == "rate_limited" and "limit" in item["zoom_error"]
    assert stage.meetings() == {}
    # What the queued work does once the limit resets: reconcile the item as it is then (until the reset the
    # user is known limited, and a create would not even be sent).
    time.sleep(1.2)
    assert stage.deliver(records) == {"batchItemFailures": []}
    assert stage.item(event_id)["zoom_status"] == "scheduled" and len(stage.meetings()) == 1


def test_a_series_that_loses_its_rule_becomes_a_single_meeting(
    stage: Stage, series_event: tuple[str, str, dict[str, Any]]
) -> None:
    event_id, meeting_id, _ = series_event
    stage.zoom.clear_calls()
    stage.calendar.remove_attributes(stage.alice.user_id, event_id, "recurrence", "exdates")
    stage.settle()
    item = stage.item(event_id)
    meetings = stage.meetings()
    assert meeting_id not in meetings and len(meetings) == 1
    single = meetings[item["zoom_meeting_id"]]
    assert (single["type"], single["start_time"], item["zoom_status"]) == (2, "2099-03-23T08:00:00Z", "scheduled")
    assert stage.calls() == [("DELETE", "/meetings/{id}"), ("POST", "/users/me/meetings")]


def test_occurrences_that_differ_from_the_rule_are_logged_and_counted(
    stage: Stage, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
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
    stage.zoom.state.add_fault(
        method="POST", path="/v2/users/me/meetings", status=201, body=json.dumps(answer), after_handling=True
    )
    event_id = stage.put_series(recurrence="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=2")
    capsys.readouterr()
    stage.settle()
    output = capsys.readouterr().out
    assert any(record.getMessage() == "Zoom's occurrences differ from the rule's" for record in caplog.records)
    assert '"SeriesOccurrenceMismatch":[1.0]' in output.replace(" ", "")
    assert stage.item(event_id)["zoom_meeting_id"] == "99999999901"


def test_a_series_without_fixed_times_links_exceptions_and_exdates_without_calls(stage: Stage) -> None:
    event_id = stage.put_series(recurrence="FREQ=WEEKLY;BYDAY=MO,WE")
    stage.settle()
    series = stage.item(event_id)
    stage.zoom.clear_calls()
    stage.update(event_id, exdates={SECOND})
    exception_id = stage.put_exception(
        event_id, THIRD, start="2099-03-30T15:00:00+02:00", end="2099-03-30T15:30:00+02:00"
    )
    stage.settle()
    assert stage.calls() == []
    exception = stage.item(exception_id)
    assert (exception["zoom_meeting_id"], exception["zoom_join_url"]) == (
        series["zoom_meeting_id"],
        series["zoom_join_url"],
    )


def test_an_exception_that_switches_occurrence_puts_the_first_one_back(
    stage: Stage, second_moved: tuple[str, str, dict[str, Any], str]
) -> None:
    _, meeting_id, _, exception_id = second_moved
    stage.update(
        exception_id,
        start="2099-04-01T16:00:00+02:00",
        end="2099-04-01T16:30:00+02:00",
        recurrence_id="2099-04-01T09:00:00+02:00",
    )
    stage.settle()
    assert stage.calls() == [("PATCH", "/meetings/{id}"), ("PATCH", "/meetings/{id}")]  # back, then the new one
    assert available(stage.meetings()[meeting_id]) == [
        "Mon 03-23 09:00",
        "Wed 03-25 09:00",
        "Wed 04-01 16:00",
        "Mon 04-06 09:00",
        "Wed 04-08 09:00",
    ]


def test_put_without_recurrence_on_a_series_makes_it_a_single_meeting(stage: Stage) -> None:
    body = {"topic": "Team sync", "start": SERIES["start"], "end": SERIES["end"], "recurrence": SERIES["recurrence"]}
    event_id = f"series-{uuid.uuid4()}"
    series = body_of(stage.put_request(event_id, body))
    single = body_of(stage.put_request(event_id, {**body, "recurrence": None}))
    assert single is not None and "error" in single  # null is not a rule
    body.pop("recurrence")
    single = body_of(stage.put_request(event_id, body))
    meetings = stage.meetings()
    assert series["meeting_id"] not in meetings and meetings[single["meeting_id"]]["type"] == 2


@pytest.mark.parametrize("recurrence", ["FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6", "FREQ=WEEKLY;BYDAY=MO,WE"])
def test_a_series_create_whose_answer_is_lost_is_adopted_not_made_twice(stage: Stage, recurrence: str) -> None:
    stage.zoom.state.add_fault(
        method="POST", path="/v2/users/me/meetings", status=201, body="<html>proxy</html>", after_handling=True
    )
    event_id = stage.put_series(recurrence=recurrence)
    records = stage.calendar.new_records()
    first = stage.deliver(records)
    assert len(first["batchItemFailures"]) == 1 and len(stage.meetings()) == 1  # made, answer lost
    assert stage.deliver(records) == {"batchItemFailures": []}
    stage.settle()
    item = stage.item(event_id)
    meetings = stage.meetings()
    assert list(meetings) == [item["zoom_meeting_id"]] and item["zoom_status"] == "scheduled"


def test_racing_deliveries_of_one_series_make_one_meeting(stage: Stage) -> None:
    stage.zoom.state.set_latency(200)  # both are inside the create at once
    event_id = stage.put_series(exdates={THIRD})
    records = stage.calendar.new_records()
    answers: list[dict[str, Any]] = []

    def deliver_once() -> None:
        answers.append(stage.deliver(records))

    threads = [threading.Thread(target=deliver_once) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stage.zoom.state.set_latency(0)
    assert answers == [{"batchItemFailures": []}] * 3
    stage.settle()
    meetings = stage.meetings()
    assert len(meetings) == 1
    meeting = next(iter(meetings.values()))
    assert available(meeting) == LOCAL_STARTS_BUT_THIRD
    assert stage.item(event_id)["zoom_meeting_id"] == str(meeting["id"])


def test_a_series_whose_meeting_was_deleted_at_zoom_gets_a_new_one_on_its_next_change(
    stage: Stage, series_event: tuple[str, str, dict[str, Any]]
) -> None:
    event_id, meeting_id, _ = series_event
    stage.zoom.state.remove_meeting(int(meeting_id))  # deleted in the Zoom app, no webhook
    stage.update(event_id, recurrence="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8")
    stage.settle()
    item = stage.item(event_id)
    meetings = stage.meetings()
    assert item["zoom_status"] == "scheduled" and list(meetings) == [item["zoom_meeting_id"]]
    assert len(available(meetings[item["zoom_meeting_id"]])) == 7  # 8 minus the exdate
