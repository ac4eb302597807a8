"""The RRULE → Zoom mapping table, expansion in the event's zone (DST), and the rules that are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from link_zoom.domain.recurrence import InvalidRecurrence, Series, parse_exdates, parse_series
from link_zoom.domain.schedule import Schedule


def first(local: str, zone: str = "Europe/Berlin", minutes: int = 60) -> Schedule:
    """The first occurrence at a wall-clock time in `zone`."""
    start = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return Schedule("Team", start, start + timedelta(minutes=minutes), zone)


def local_times(series: Series, limit: int = 100) -> list[str]:
    zone = ZoneInfo(series.first.time_zone)
    return [start.astimezone(zone).strftime("%Y-%m-%d %H:%M") for start in series.occurrences(limit=limit)]


# Monday 2026-03-02 09:00 Berlin is the anchor of most rows.
MONDAY = "2026-03-02T09:00"

# (rule, first local start, Zoom recurrence object expected)
EXPRESSIBLE = [
    ("FREQ=DAILY;COUNT=5", MONDAY, {"type": 1, "repeat_interval": 1, "end_times": 5}),
    ("FREQ=DAILY;INTERVAL=99;COUNT=3", MONDAY, {"type": 1, "repeat_interval": 99, "end_times": 3}),
    (
        "FREQ=DAILY;UNTIL=20260305T235959Z",
        MONDAY,
        {"type": 1, "repeat_interval": 1, "end_date_time": "2026-03-05T08:00:00Z"},
    ),
    (
        "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=10",
        MONDAY,
        {"type": 2, "repeat_interval": 1, "weekly_days": "2,3,4,5,6", "end_times": 10},
    ),
    ("FREQ=WEEKLY;COUNT=10", MONDAY, {"type": 2, "repeat_interval": 1, "weekly_days": "2", "end_times": 10}),
    (
        "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10",
        MONDAY,
        {"type": 2, "repeat_interval": 1, "weekly_days": "2,4", "end_times": 10},
    ),
    (
        "FREQ=WEEKLY;INTERVAL=50;BYDAY=MO;COUNT=2",
        MONDAY,
        {"type": 2, "repeat_interval": 50, "weekly_days": "2", "end_times": 2},
    ),
    (
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SA;COUNT=4",
        MONDAY,
        {"type": 2, "repeat_interval": 2, "weekly_days": "2,7", "end_times": 4},
    ),
    (
        "FREQ=WEEKLY;BYDAY=SU,MO;COUNT=60",
        MONDAY,
        {"type": 2, "repeat_interval": 1, "weekly_days": "1,2", "end_times": 60},
    ),
    (
        "FREQ=WEEKLY;BYDAY=MO;UNTIL=20260330",
        MONDAY,
        {"type": 2, "repeat_interval": 1, "weekly_days": "2", "end_date_time": "2026-03-30T07:00:00Z"},
    ),
    ("FREQ=MONTHLY;COUNT=6", MONDAY, {"type": 3, "repeat_interval": 1, "monthly_day": 2, "end_times": 6}),
    (
        "FREQ=MONTHLY;BYMONTHDAY=2;INTERVAL=10;COUNT=2",
        MONDAY,
        {"type": 3, "repeat_interval": 10, "monthly_day": 2, "end_times": 2},
    ),
    (
        "FREQ=MONTHLY;BYMONTHDAY=28;COUNT=3",
        "2026-02-28T09:00",
        {"type": 3, "repeat_interval": 1, "monthly_day": 28, "end_times": 3},
    ),
    (
        "FREQ=MONTHLY;BYDAY=1MO;COUNT=6",
        MONDAY,
        {"type": 3, "repeat_interval": 1, "monthly_week": 1, "monthly_week_day": 2, "end_times": 6},
    ),
    (
        "FREQ=MONTHLY;BYDAY=4WE;COUNT=6",
        "2026-03-25T09:00",
        {"type": 3, "repeat_interval": 1, "monthly_week": 4, "monthly_week_day": 4, "end_times": 6},
    ),
    (
        "FREQ=MONTHLY;BYDAY=-1FR;COUNT=6",
        "2026-03-27T09:00",
        {"type": 3, "repeat_interval": 1, "monthly_week": -1, "monthly_week_day": 6, "end_times": 6},
    ),
]


@pytest.mark.parametrize(("rule", "local", "expected"), EXPRESSIBLE, ids=[row[0] for row in EXPRESSIBLE])
def test_rules_zoom_can_express_map_to_a_fixed_time_series(rule: str, local: str, expected: dict[str, object]) -> None:
    zoom = parse_series(rule, first(local)).zoom()
    assert zoom.meeting_type == 8
    assert zoom.recurrence == expected
    assert zoom.zoom_error is None


# (rule, first local start, words the reason must contain)
FALLBACKS = [
    ("FREQ=YEARLY;COUNT=3", MONDAY, "yearly"),
    ("FREQ=WEEKLY;BYDAY=MO", MONDAY, "no end"),
    ("FREQ=DAILY", MONDAY, "no end"),
    ("FREQ=DAILY;COUNT=61", MONDAY, "at most 60"),
    ("FREQ=DAILY;UNTIL=20260601T000000Z", MONDAY, "at most 60"),
    ("FREQ=DAILY;INTERVAL=100;COUNT=2", MONDAY, "every 99 days"),
    ("FREQ=WEEKLY;INTERVAL=51;COUNT=2", MONDAY, "every 50 weeks"),
    ("FREQ=MONTHLY;INTERVAL=11;COUNT=2", MONDAY, "every 10 months"),
    ("FREQ=MONTHLY;BYMONTHDAY=2,16;COUNT=4", MONDAY, "one day of the month"),
    ("FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=1;COUNT=4", MONDAY, "BYSETPOS"),
    ("FREQ=MONTHLY;BYDAY=1MO,3MO;COUNT=4", MONDAY, "one numbered weekday"),
    ("FREQ=MONTHLY;BYDAY=MO;COUNT=4", MONDAY, "one numbered weekday"),
    ("FREQ=MONTHLY;BYDAY=-2MO;COUNT=4", "2026-03-23T09:00", "1st to 4th or the last"),
    ("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4", "2026-03-31T09:00", "day 31"),
    ("FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4", "2026-03-31T09:00", "day -1"),
    ("FREQ=WEEKLY;BYMONTH=3;BYDAY=MO;COUNT=4", MONDAY, "BYMONTH"),
    ("FREQ=DAILY;BYHOUR=9,15;COUNT=4", MONDAY, "BYHOUR"),
    ("FREQ=DAILY;INTERVAL=2;BYDAY=MO,WE;COUNT=4", MONDAY, "every few days"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;COUNT=4", MONDAY, "start on Sunday"),
    ("FREQ=HOURLY;COUNT=3", MONDAY, "not hourly"),
]


@pytest.mark.parametrize(("rule", "local", "reason"), FALLBACKS, ids=[row[0] for row in FALLBACKS])
def test_rules_zoom_cannot_express_fall_back_to_one_meeting_without_fixed_times(
    rule: str, local: str, reason: str
) -> None:
    zoom = parse_series(rule, first(local)).zoom()
    assert (zoom.meeting_type, zoom.recurrence) == (3, None)
    assert zoom.zoom_error is not None and reason in zoom.zoom_error
    assert zoom.zoom_error.count(". ") == 0 and zoom.zoom_error.endswith(".")  # one sentence


def test_a_biweekly_rule_with_sunday_start_weeks_keeps_its_zoom_form() -> None:
    zoom = parse_series("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=SU;COUNT=4", first("2026-03-01T09:00")).zoom()
    assert zoom.recurrence == {"type": 2, "repeat_interval": 2, "weekly_days": "1,2", "end_times": 4}


@pytest.mark.parametrize(
    ("zone", "local", "dst_day"),
    [
        ("Europe/Berlin", "2026-03-23T09:00", "2026-03-30"),  # spring forward 29 March
        ("Europe/Berlin", "2026-10-19T09:00", "2026-10-26"),  # fall back 25 October
        ("America/New_York", "2026-03-02T09:00", "2026-03-09"),  # spring forward 8 March
        ("America/New_York", "2026-10-26T09:00", "2026-11-02"),  # fall back 1 November
        ("Australia/Sydney", "2026-03-30T09:00", "2026-04-06"),  # DST ends 5 April
        ("Australia/Sydney", "2026-09-28T09:00", "2026-10-05"),  # DST starts 4 October
    ],
)
def test_weekly_occurrences_keep_their_wall_clock_time_across_dst(zone: str, local: str, dst_day: str) -> None:
    series = parse_series("FREQ=WEEKLY;COUNT=3", first(local, zone))
    times = local_times(series)
    assert [time[11:] for time in times] == ["09:00"] * 3
    assert times[1][:10] == dst_day
    utc = series.occurrences()
    assert utc[1] - utc[0] != timedelta(weeks=1)  # the UTC gap is a week ± an hour: the offset changed


def test_the_31st_skips_months_without_it() -> None:
    series = parse_series("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4", first("2026-01-31T09:00"))
    assert [time[:10] for time in local_times(series)] == ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"]


def test_the_last_friday_of_each_month() -> None:
    series = parse_series("FREQ=MONTHLY;BYDAY=-1FR;COUNT=4", first("2026-01-30T09:00"))
    assert [time[:10] for time in local_times(series)] == ["2026-01-30", "2026-02-27", "2026-03-27", "2026-04-24"]


def test_exdates_are_removed_from_the_expansion() -> None:
    series = parse_series("FREQ=WEEKLY;COUNT=4", first(MONDAY))
    exdates = parse_exdates(["2026-03-09T09:00:00+01:00", "not a date", "2026-03-10T09:00:00+01:00"])
    assert [time[:10] for time in local_times(series)] == ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23"]
    kept = series.occurrences(exdates)
    assert [moment.date().isoformat() for moment in kept] == ["2026-03-02", "2026-03-16", "2026-03-23"]


def test_until_as_a_date_or_a_local_time_is_read_in_the_event_zone() -> None:
    as_date = parse_series("FREQ=DAILY;UNTIL=20260304", first(MONDAY))
    as_local = parse_series("FREQ=DAILY;UNTIL=20260304T090000", first(MONDAY))
    assert len(as_date.occurrences()) == len(as_local.occurrences()) == 3


def test_last_end_and_occurrence_membership() -> None:
    series = parse_series("FREQ=WEEKLY;COUNT=3", first(MONDAY, minutes=45))
    assert series.last_end() == datetime(2026, 3, 16, 8, 45, tzinfo=UTC)
    assert series.is_occurrence(datetime(2026, 3, 9, 8, 0, tzinfo=UTC))
    assert not series.is_occurrence(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))
    assert parse_series("FREQ=WEEKLY", first(MONDAY)).last_end() is None
    assert parse_series("FREQ=SECONDLY;COUNT=999999999", first(MONDAY)).last_end() is None  # bounded work


@pytest.mark.parametrize(
    ("rule", "local", "words"),
    [
        ("", MONDAY, "1 to"),
        (42, MONDAY, "1 to"),
        ("FREQ=WEEKLY;BYDAY=XX", MONDAY, "not a valid RRULE"),
        ("FREQ=FORTNIGHTLY", MONDAY, "not a valid RRULE"),
        ("FREQ=WEEKLY;COUNT=abc", MONDAY, "not a valid RRULE"),
        ("FREQ=WEEKLY;COUNT=0", MONDAY, "no occurrence"),
        ("BYDAY=MO;COUNT=3", MONDAY, "needs a FREQ"),
        ("FREQ=WEEKLY;FOO=1", MONDAY, "not an RRULE part"),
        ("FREQ=WEEKLY;COUNT=2;COUNT=3", MONDAY, "twice"),
        ("FREQ=WEEKLY;COUNT=2;UNTIL=20270101T000000Z", MONDAY, "not both"),
        ("FREQ=WEEKLY;UNTIL=yesterday", MONDAY, "not a valid RRULE"),
        ("FREQ=WEEKLY;BYDAY=TU;COUNT=3", MONDAY, "is not the event's start"),
        ("FREQ=MONTHLY;BYMONTHDAY=15;COUNT=3", MONDAY, "is not the event's start"),
    ],
)
def test_rules_that_do_not_parse_or_do_not_start_at_start_are_refused(rule: object, local: str, words: str) -> None:
    with pytest.raises(InvalidRecurrence) as refused:
        parse_series(rule, first(local))
    assert words in str(refused.value)
    assert str(refused.value).endswith(".")


def test_rrule_prefix_and_lower_case_are_accepted() -> None:
    series = parse_series("RRULE:freq=weekly;count=2", first(MONDAY))
    assert len(series.occurrences()) == 2
