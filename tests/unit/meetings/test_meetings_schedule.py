"""Time math: offsets, IANA zones, DST changes and day boundaries, whole minutes rounded up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from link_zoom.domain.schedule import Schedule, current_minute, is_time_zone, meeting_topic, parse_instant, zoom_time


def schedule(start: str, end: str, zone: str) -> Schedule:
    begin, finish = parse_instant(start), parse_instant(end)
    assert begin is not None and finish is not None
    return Schedule("t", begin, finish, zone)


@pytest.mark.parametrize(
    ("start", "end", "zone", "utc_start", "minutes"),
    [
        # Berlin springs forward at 02:00 local on 29 March 2026: 01:30+01 to 03:30+02 is one hour.
        ("2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00", "Europe/Berlin", "2026-03-29T00:30:00Z", 60),
        # ...and falls back on 25 October: 02:30+02 to 02:30+01 is one hour too.
        ("2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "Europe/Berlin", "2026-10-25T00:30:00Z", 60),
        # New York springs forward on 8 March 2026.
        ("2026-03-08T01:00:00-05:00", "2026-03-08T03:15:00-04:00", "America/New_York", "2026-03-08T06:00:00Z", 75),
        # Kolkata's half-hour offset, across midnight into the previous UTC day.
        ("2026-06-01T00:15:00+05:30", "2026-06-01T01:00:00+05:30", "Asia/Kolkata", "2026-05-31T18:45:00Z", 45),
        # Lord Howe moves by 30 minutes (+11:00 summer to +10:30) on 5 April 2026 at 02:00 local.
        ("2026-04-05T01:45:00+11:00", "2026-04-05T01:45:00+10:30", "Australia/Lord_Howe", "2026-04-04T14:45:00Z", 30),
        # A New Year's Eve event in New York ends in next year's UTC.
        ("2026-12-31T23:30:00-05:00", "2027-01-01T00:30:00-05:00", "America/New_York", "2027-01-01T04:30:00Z", 60),
    ],
)
def test_times_are_exact_to_the_minute_across_dst_and_day_boundaries(
    start: str, end: str, zone: str, utc_start: str, minutes: int
) -> None:
    meeting = schedule(start, end, zone)
    assert meeting.start_time == utc_start
    assert meeting.duration_minutes == minutes
    assert meeting.time_zone == zone


def test_the_offset_decides_not_the_zone_name() -> None:
    # Same wall clock, different offsets: different instants.
    winter = schedule("2026-01-15T09:00:00+01:00", "2026-01-15T10:00:00+01:00", "Europe/Berlin")
    summer = schedule("2026-07-15T09:00:00+02:00", "2026-07-15T10:00:00+02:00", "Europe/Berlin")
    assert winter.start_time == "2026-01-15T08:00:00Z"
    assert summer.start_time == "2026-07-15T07:00:00Z"


def test_duration_is_rounded_up_to_whole_minutes() -> None:
    assert schedule("2026-01-01T10:00:00Z", "2026-01-01T10:30:01Z", "UTC").duration_minutes == 31
    assert schedule("2026-01-01T10:00:00Z", "2026-01-01T10:00:10Z", "UTC").duration_minutes == 1
    assert schedule("2026-01-01T10:00:00.900Z", "2026-01-01T10:30:00Z", "UTC").duration_minutes == 30


@pytest.mark.parametrize(
    "value",
    ["2026-01-01T10:00:00", "2026-01-01", "tomorrow", "", 1767261600, None, "2026-13-01T10:00:00Z", "x" * 100],
)
def test_times_without_an_offset_or_unreadable_are_refused(value: object) -> None:
    assert parse_instant(value) is None


def test_zoom_time_is_utc_with_z_and_whole_seconds() -> None:
    parsed = parse_instant("2026-05-01T12:34:56.789+02:00")
    assert parsed is not None
    assert zoom_time(parsed) == "2026-05-01T10:34:56Z"


def test_compose_meetings_start_in_the_current_minute() -> None:
    now = datetime(2026, 2, 3, 4, 5, 59, 999_000, tzinfo=UTC)
    assert current_minute(now) == datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    meeting = Schedule.starting_now("Quick sync", 30, now)
    assert (meeting.start_time, meeting.duration_minutes, meeting.time_zone) == ("2026-02-03T04:05:00Z", 30, "UTC")


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_iana_zones_are_known(zone: str) -> None:
    assert is_time_zone(zone)


@pytest.mark.parametrize("zone", ["utc", "Mars/Olympus", "America", "../etc/passwd", "/etc/localtime", "", None, 1])
def test_unknown_zones_are_refused(zone: object) -> None:
    assert not is_time_zone(zone)


def test_subjects_become_topics_of_at_most_200_characters() -> None:
    assert meeting_topic("  Planning  ") == "Planning"
    assert meeting_topic("x" * 300) == "x" * 200
    assert meeting_topic("") == "Zoom meeting"
    assert meeting_topic(None) == "Zoom meeting"
