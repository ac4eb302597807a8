"""The emulator's recurring meetings: type 8 and 3, Zoom's recurrence checks, occurrences, occurrence
PATCH/DELETE, the daily limit and meeting.deleted for one occurrence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_emulator import Receiver, api, connect, control  # the sibling module's helpers

from devstack.settings import LOCAL_ZOOM
from devstack.zoom_emulator import EmulatorConfig, EmulatorHandle, start_emulator

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = LOCAL_ZOOM.webhook_secret


def series(emu: EmulatorHandle, token: str, recurrence: Any, **fields: Any) -> Any:
    body = {
        "topic": "Weekly",
        "type": 8,
        "start_time": "2026-03-23T08:00:00Z",  # Monday 09:00 Berlin
        "duration": 30,
        "timezone": "Europe/Berlin",
        "recurrence": recurrence,
        **fields,
    }
    return api(emu, "POST", "/users/me/meetings", token, json=body)


def berlin(occurrences: list[dict[str, Any]]) -> list[str]:
    zone = ZoneInfo("Europe/Berlin")
    return [
        datetime.strptime(item["start_time"], "%Y-%m-%dT%H:%M:%SZ")
        .replace(tzinfo=UTC)
        .astimezone(zone)
        .strftime("%a %Y-%m-%d %H:%M")
        for item in occurrences
    ]


def test_weekly_series_occurrences_keep_local_time_across_dst_with_epoch_ms_ids(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    created = series(emu, token, {"type": 2, "repeat_interval": 1, "weekly_days": "2,4", "end_times": 4})
    assert created.status_code == 201, created.text
    meeting = created.json()
    assert meeting["type"] == 8
    assert meeting["recurrence"] == {"type": 2, "repeat_interval": 1, "weekly_days": "2,4", "end_times": 4}
    occurrences = meeting["occurrences"]
    assert berlin(occurrences) == [
        "Mon 2026-03-23 09:00",
        "Wed 2026-03-25 09:00",
        "Mon 2026-03-30 09:00",  # after the switch to summer time on 29 March
        "Wed 2026-04-01 09:00",
    ]
    for item in occurrences:
        moment = datetime.strptime(item["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert item["occurrence_id"] == str(int(moment.timestamp() * 1000))
        assert (item["duration"], item["status"]) == (30, "available")
    assert api(emu, "GET", f"/meetings/{meeting['id']}", token).json()["occurrences"] == occurrences


@pytest.mark.parametrize(
    ("recurrence", "expected"),
    [
        ({"type": 1, "repeat_interval": 2, "end_times": 3}, ["Mon 2026-03-23", "Wed 2026-03-25", "Fri 2026-03-27"]),
        (
            {"type": 2, "repeat_interval": 2, "weekly_days": "2", "end_date_time": "2026-04-20T07:00:00Z"},
            ["Mon 2026-03-23", "Mon 2026-04-06", "Mon 2026-04-20"],
        ),
        ({"type": 3, "monthly_day": 23, "end_times": 3}, ["Mon 2026-03-23", "Thu 2026-04-23", "Sat 2026-05-23"]),
        (
            {"type": 3, "monthly_week": 4, "monthly_week_day": 2, "end_times": 3},
            ["Mon 2026-03-23", "Mon 2026-04-27", "Mon 2026-05-25"],
        ),
        (
            {"type": 3, "monthly_week": -1, "monthly_week_day": 2, "end_times": 3},
            ["Mon 2026-03-30", "Mon 2026-04-27", "Mon 2026-05-25"],
        ),
    ],
)
def test_daily_weekly_and_monthly_forms(emu: EmulatorHandle, recurrence: dict[str, Any], expected: list[str]) -> None:
    token = connect(emu)["access_token"]
    meeting = series(emu, token, recurrence).json()
    assert [text[:14] for text in berlin(meeting["occurrences"])] == expected
    assert meeting["start_time"] == meeting["occurrences"][0]["start_time"]


@pytest.mark.parametrize(
    ("recurrence", "words"),
    [
        ("weekly", "must be an object"),
        ({"type": 4}, "type"),
        ({"type": 1, "repeat_interval": 100, "end_times": 2}, "repeat_interval"),
        ({"type": 2, "repeat_interval": 51, "weekly_days": "2", "end_times": 2}, "repeat_interval"),
        ({"type": 3, "repeat_interval": 11, "monthly_day": 1, "end_times": 2}, "repeat_interval"),
        ({"type": 2, "end_times": 2}, "weekly_days"),
        ({"type": 2, "weekly_days": "0,8", "end_times": 2}, "weekly_days"),
        ({"type": 3, "end_times": 2}, "monthly_week"),
        ({"type": 3, "monthly_week": 5, "monthly_week_day": 2, "end_times": 2}, "monthly_week"),
        ({"type": 3, "monthly_day": 3, "monthly_week": 1, "end_times": 2}, "monthly_day"),
        ({"type": 1, "end_times": 61}, "end_times"),
        ({"type": 1, "end_times": 3, "end_date_time": "2026-04-01T00:00:00Z"}, "together"),
        ({"type": 1, "end_date_time": "2026-04-01"}, "end_date_time"),
        ({"type": 1, "end_date_time": "2026-12-31T00:00:00Z"}, "at most 60"),
        ({"type": 1, "end_date_time": "2026-03-01T00:00:00Z"}, "no occurrence"),
        ({"type": 1, "every": 2}, "unknown field"),
    ],
)
def test_recurrences_zoom_refuses_are_400_code_300(emu: EmulatorHandle, recurrence: Any, words: str) -> None:
    token = connect(emu)["access_token"]
    refused = series(emu, token, recurrence)
    assert refused.status_code == 400
    body = refused.json()
    assert body["code"] == 300 and body["message"].startswith("Invalid recurrence: ") and words in body["message"]
    assert control(emu, "GET", "/meetings").json() == []


def test_type_8_needs_a_recurrence_and_type_3_has_no_times(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    missing = api(emu, "POST", "/users/me/meetings", token, json={"type": 8, "start_time": "2026-03-23T08:00:00Z"})
    assert missing.status_code == 400 and missing.json()["code"] == 300
    floating = api(emu, "POST", "/users/me/meetings", token, json={"topic": "Any time", "type": 3}).json()
    assert floating["type"] == 3 and "start_time" not in floating and "occurrences" not in floating
    assert floating["join_url"]


def test_occurrence_patch_moves_only_that_one_and_refuses_series_fields(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    meeting = series(emu, token, {"type": 2, "weekly_days": "2", "end_times": 3}).json()
    second = meeting["occurrences"][1]["occurrence_id"]
    path = f"/meetings/{meeting['id']}?occurrence_id={second}"
    moved = api(emu, "PATCH", path, token, json={"start_time": "2026-03-31T12:00:00Z", "duration": 45})
    assert moved.status_code == 204, moved.text
    for refused_field in ({"topic": "x"}, {"timezone": "UTC"}, {"recurrence": {"type": 1}}, {"type": 2}):
        answer = api(emu, "PATCH", path, token, json={"start_time": "2026-03-31T12:00:00Z", **refused_field})
        assert answer.status_code == 400 and answer.json()["code"] == 300
    after = api(emu, "GET", f"/meetings/{meeting['id']}", token).json()
    assert [(o["occurrence_id"], o["start_time"], o["duration"]) for o in after["occurrences"]] == [
        (meeting["occurrences"][0]["occurrence_id"], "2026-03-23T08:00:00Z", 30),
        (second, "2026-03-31T12:00:00Z", 45),  # the id stays the original start
        (meeting["occurrences"][2]["occurrence_id"], "2026-04-06T07:00:00Z", 30),
    ]
    assert after["topic"] == "Weekly"
    unknown = api(emu, "PATCH", f"/meetings/{meeting['id']}?occurrence_id=123", token, json={"duration": 40})
    assert unknown.status_code == 400 and unknown.json()["code"] == 300


def test_occurrence_delete_marks_it_deleted_and_a_series_change_regenerates(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    meeting = series(emu, token, {"type": 2, "weekly_days": "2", "end_times": 3}).json()
    first = meeting["occurrences"][0]["occurrence_id"]
    path = f"/meetings/{meeting['id']}"
    assert api(emu, "DELETE", f"{path}?occurrence_id={first}", token).status_code == 204
    statuses = [o["status"] for o in api(emu, "GET", path, token).json()["occurrences"]]
    assert statuses == ["deleted", "available", "available"]
    again = api(emu, "DELETE", f"{path}?occurrence_id={first}", token)
    assert again.status_code == 400 and again.json()["code"] == 300

    assert api(emu, "PATCH", path, token, json={"topic": "Renamed"}).status_code == 204
    assert [o["status"] for o in api(emu, "GET", path, token).json()["occurrences"]] == statuses
    patch = {"recurrence": {"type": 2, "weekly_days": "2", "end_times": 4}}
    assert api(emu, "PATCH", path, token, json=patch).status_code == 204
    after = api(emu, "GET", path, token).json()
    assert [o["status"] for o in after["occurrences"]] == ["available"] * 4
    refused = api(emu, "PATCH", path, token, json={"recurrence": {"type": 2, "end_times": 4}})
    assert refused.status_code == 400
    assert len(api(emu, "GET", path, token).json()["occurrences"]) == 4  # a refused change changes nothing


def test_occurrence_patch_and_delete_count_against_the_daily_limit() -> None:
    handle = start_emulator(port=0, config=EmulatorConfig(daily_meeting_limit=3))
    try:
        token = connect(handle)["access_token"]
        meeting = series(handle, token, {"type": 1, "end_times": 3}).json()
        ids = [o["occurrence_id"] for o in meeting["occurrences"]]
        path = f"/meetings/{meeting['id']}"
        assert api(handle, "PATCH", f"{path}?occurrence_id={ids[0]}", token, json={"duration": 40}).status_code == 204
        assert api(handle, "DELETE", f"{path}?occurrence_id={ids[1]}", token).status_code == 204
        limited = api(handle, "DELETE", f"{path}?occurrence_id={ids[2]}", token)
        assert limited.status_code == 429 and limited.headers["X-RateLimit-Type"] == "Daily-limit"
        assert api(handle, "DELETE", path, token).status_code == 204  # deleting the whole meeting is not counted
    finally:
        handle.stop()


def test_meeting_deleted_webhook_for_one_occurrence(emu: EmulatorHandle, receiver: Receiver) -> None:
    token = connect(emu)["access_token"]
    meeting = series(emu, token, {"type": 1, "end_times": 2}).json()
    second = meeting["occurrences"][1]
    result = control(
        emu,
        "DELETE",
        f"/meetings/{meeting['id']}?occurrence_id={second['occurrence_id']}",
        json={"webhook_url": receiver.url},
    ).json()
    assert result["webhook"]["status"] == 200
    _, _, event = receiver.event()
    assert event["event"] == "meeting.deleted"
    assert event["payload"]["object"]["id"] == meeting["id"]
    assert event["payload"]["object"]["occurrences"] == [
        {"occurrence_id": second["occurrence_id"], "start_time": second["start_time"]}
    ]
    kept = api(emu, "GET", f"/meetings/{meeting['id']}", token).json()
    assert [o["status"] for o in kept["occurrences"]] == ["available", "deleted"]


def test_upcoming_list_keeps_a_series_until_its_last_occurrence(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    start = datetime.now(UTC).replace(microsecond=0, second=0)
    meeting = series(
        emu, token, {"type": 1, "end_times": 3}, start_time=start.strftime("%Y-%m-%dT%H:%M:%SZ"), timezone="UTC"
    ).json()
    control(emu, "POST", "/clock", json={"advance_seconds": 86400 + 3600})  # the first two have passed
    token = connect(emu)["access_token"]  # the first one's access token has expired meanwhile
    listed = api(emu, "GET", "/users/me/meetings?type=upcoming", token).json()["meetings"]
    assert [item["id"] for item in listed] == [meeting["id"]]
