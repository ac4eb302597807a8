"""Recurring events: an RFC 5545 RRULE, expanded in the event's zone, and the Zoom form that expresses it.

Pure: no adapter, no I/O. python-dateutil's `rrule` parses and expands (the rule is never expanded by
hand); this module only decides whether Zoom's `recurrence` object can say the same thing.

Zoom can express (meeting `type` 8, fixed times): daily every 1-99 days; weekly every 1-50 weeks on a
set of weekdays; monthly every 1-10 months on one day 1-28 or on the 1st-4th or last weekday; ending
after at most 60 occurrences (COUNT) or at a date (UNTIL) that leaves at most 60. Everything else
(yearly, several month days, BYSETPOS, BYMONTH, days 29-31, no end, more than 60) becomes one meeting
with no fixed time (`type` 3): one join URL that works for every occurrence as long as it is used,
and a `zoom_error` sentence that says Zoom shows no dates for it. Why type 3 and not a fixed-time series
the service keeps extending: see docs/calendar-table.md ("Recurring events").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from link_zoom.domain.schedule import Schedule, parse_instant, zoom_time

if TYPE_CHECKING:
    from dateutil.rrule import rrule

RECURRENCE_MAX = 1000  # characters of an RRULE value a person would send
ZOOM_MAX_OCCURRENCES = 60
ZOOM_MAX_INTERVAL = {"DAILY": 99, "WEEKLY": 50, "MONTHLY": 10}
ZOOM_TYPE = {"DAILY": 1, "WEEKLY": 2, "MONTHLY": 3}
# Zoom numbers weekdays 1 = Sunday ... 7 = Saturday; RFC 5545 names them.
ZOOM_WEEKDAY = {"SU": 1, "MO": 2, "TU": 3, "WE": 4, "TH": 5, "FR": 6, "SA": 7}
RFC_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # datetime.weekday() order
# A Zoom monthly_day above 28 is missing from some months, and Zoom does not document what it does then
# (RFC 5545 skips those months): rather than risk occurrences the calendar does not have, no Zoom form.
ZOOM_SAFE_MONTH_DAY = 28
# Parts that only narrow or multiply what FREQ gives in ways Zoom has no field for.
UNEXPRESSIBLE_PARTS = ("BYSETPOS", "BYMONTH", "BYYEARDAY", "BYWEEKNO", "BYHOUR", "BYMINUTE", "BYSECOND")
KNOWN_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST", *UNEXPRESSIBLE_PARTS})
BYDAY_RE = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
UNTIL_DATE_RE = re.compile(r"\d{8}")
UNTIL_LOCAL_RE = re.compile(r"\d{8}T\d{6}")
# How far an open-ended rule is looked at (for "has the series ended?" and the no-fixed-time check).
OPEN_HORIZON = 1000
ENDED_HORIZON = 10_000

FALLBACK_SENTENCE = (
    "Zoom cannot repeat this meeting on the series' dates ({reason}), so it is one recurring meeting "
    "without fixed times: the same link works for every occurrence, but Zoom lists no dates for it."
)


@dataclass(frozen=True)
class ZoomOccurrence:
    """One occurrence as Zoom lists it: its id (its original start in epoch ms), start (UTC) and status."""

    occurrence_id: str
    start: datetime
    duration: int
    available: bool = True


class InvalidRecurrence(ValueError):
    """The rule does not parse, or does not describe the event; the message is one sentence for a person."""


@dataclass(frozen=True)
class ZoomRecurrence:
    """What Zoom is asked to create: `type` 8 with a `recurrence` object, or `type` 3 (recurrence None)."""

    meeting_type: int
    recurrence: dict[str, Any] | None = None
    fallback_reason: str | None = None

    @property
    def zoom_error(self) -> str | None:
        """The sentence the series item shows when Zoom could not take its dates."""
        return FALLBACK_SENTENCE.format(reason=self.fallback_reason) if self.fallback_reason else None


@dataclass(frozen=True)
class Series:
    """A parsed rule anchored at the first occurrence's start, with the first occurrence's length."""

    rule_text: str
    first: Schedule
    local_start: datetime  # the first start in the event's zone: the rule's anchor
    parts: dict[str, str]
    rule: rrule

    @property
    def duration(self) -> timedelta:
        return self.first.end - self.first.start

    def starts(self, limit: int = OPEN_HORIZON) -> list[datetime]:
        """The rule's occurrence starts in UTC (at most `limit`), exdates not removed."""
        return [moment.astimezone(UTC) for moment in islice(self.rule, limit)]

    def occurrences(self, exdates: Iterable[datetime] = (), limit: int = OPEN_HORIZON) -> list[datetime]:
        """The occurrence starts in UTC minus the cancelled ones."""
        cancelled = set(exdates)
        return [start for start in self.starts(limit) if start not in cancelled]

    def is_occurrence(self, moment: datetime) -> bool:
        """Whether `moment` (UTC) is one of the rule's original starts."""
        found = self.rule.after(moment.astimezone(self.local_start.tzinfo), inc=True)
        return found is not None and found.astimezone(UTC) == moment

    def last_end(self) -> datetime | None:
        """When the last occurrence ends; None when the rule never ends."""
        if "COUNT" not in self.parts and "UNTIL" not in self.parts:
            return None
        # Bounded: a rule with more occurrences than this counts as one that has not ended (it is no Zoom form).
        starts = list(islice(self.rule, ENDED_HORIZON + 1))
        if not starts or len(starts) > ENDED_HORIZON:
            return None
        return starts[-1].astimezone(UTC) + self.duration

    def zoom(self) -> ZoomRecurrence:
        return zoom_recurrence(self)


def parse_series(rule_text: object, first: Schedule) -> Series:
    """The series of an event whose first occurrence is `first` (its start/end in UTC, its zone).

    Raises InvalidRecurrence when the rule does not parse or its first occurrence is not `first.start`.
    """
    from zoneinfo import ZoneInfo

    from dateutil.rrule import rrulestr

    if not isinstance(rule_text, str) or not 1 <= len(rule_text) <= RECURRENCE_MAX:
        raise InvalidRecurrence(f"The recurrence must be an RRULE value of 1 to {RECURRENCE_MAX} characters.")
    zone = ZoneInfo(first.time_zone)
    parts = _parts(rule_text)
    if "UNTIL" in parts:
        parts["UNTIL"] = _until_in_utc(parts["UNTIL"], zone)
    text = ";".join(f"{name}={value}" for name, value in parts.items())
    dtstart = first.start.astimezone(zone)
    try:
        rule = rrulestr(text, dtstart=dtstart)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise InvalidRecurrence(f"The recurrence rule is not a valid RRULE ({_short(exc)}).") from exc
    series = Series(rule_text, first, dtstart, parts, rule)
    first_start = next(iter(rule), None)
    if first_start is None:
        raise InvalidRecurrence("The recurrence rule has no occurrence at all.")
    if first_start.astimezone(UTC) != first.start:
        raise InvalidRecurrence(
            f"The recurrence rule's first occurrence ({zoom_time(first_start)}) is not the event's start "
            f"({first.start_time}): the start must be the first occurrence."
        )
    return series


def _parts(rule_text: str) -> dict[str, str]:
    text = rule_text.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    parts: dict[str, str] = {}
    for chunk in text.split(";"):
        name, sep, value = chunk.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not sep or not value or name not in KNOWN_PARTS:
            raise InvalidRecurrence(f"The recurrence rule has a part that is not an RRULE part: {chunk[:40]!r}.")
        if name in parts:
            raise InvalidRecurrence(f"The recurrence rule names {name} twice.")
        parts[name] = value
    if "FREQ" not in parts:
        raise InvalidRecurrence("The recurrence rule needs a FREQ (for example FREQ=WEEKLY).")
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidRecurrence("The recurrence rule may have COUNT or UNTIL, not both.")
    return parts


def _until_in_utc(value: str, zone: Any) -> str:
    """RFC 5545 wants UNTIL in UTC when the start has a zone; calendars also send a date or a local time,
    which mean that day (inclusive) or that time in the event's zone."""
    if UNTIL_DATE_RE.fullmatch(value):
        local = datetime.strptime(value, "%Y%m%d").replace(hour=23, minute=59, second=59, tzinfo=zone)
    elif UNTIL_LOCAL_RE.fullmatch(value):
        local = datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
    else:
        return value  # UTC with Z, or something rrulestr rejects with its own reason
    return local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).rstrip(".")[:120]


# ------------------------------------------------------------------ Zoom's form of a rule


def zoom_recurrence(series: Series) -> ZoomRecurrence:
    """Zoom's `recurrence` object for the series, or the no-fixed-time fallback with its reason."""
    try:
        return ZoomRecurrence(8, _zoom_object(series))
    except _NoZoomForm as reason:
        return ZoomRecurrence(3, None, str(reason))


class _NoZoomForm(Exception):
    pass


def _zoom_object(series: Series) -> dict[str, Any]:
    parts = series.parts
    freq = parts["FREQ"]
    extra = [name for name in UNEXPRESSIBLE_PARTS if name in parts]
    if extra:
        raise _NoZoomForm(f"Zoom has no form for {extra[0]}")
    if freq not in ZOOM_TYPE:
        raise _NoZoomForm(f"Zoom repeats only daily, weekly or monthly, not {freq.lower()}")
    interval = int(parts.get("INTERVAL", "1"))
    days = _weekdays(parts.get("BYDAY"))
    if freq == "DAILY" and days is not None:
        # "Every weekday" arrives as DAILY;BYDAY=MO,...,FR: that is Zoom's weekly form.
        if interval != 1:
            raise _NoZoomForm("Zoom has no form for every few days on given weekdays")
        freq = "WEEKLY"
    limit = ZOOM_MAX_INTERVAL[freq]
    if interval > limit:
        raise _NoZoomForm(f"Zoom repeats at most every {limit} {_UNIT[freq]}")
    body: dict[str, Any] = {"type": ZOOM_TYPE[freq], "repeat_interval": interval}
    body.update(_days_part(series, freq, days))
    body.update(_end_part(series))
    return body


_UNIT = {"DAILY": "days", "WEEKLY": "weeks", "MONTHLY": "months"}


def _weekdays(byday: str | None) -> list[tuple[int | None, str]] | None:
    if byday is None:
        return None
    found = []
    for token in byday.split(","):
        match = BYDAY_RE.fullmatch(token)
        if match is None:  # rrulestr accepted it, so this only guards odd spellings
            raise _NoZoomForm(f"Zoom has no form for BYDAY={byday}")
        found.append((int(match.group(1)) if match.group(1) else None, match.group(2)))
    return found


def _days_part(series: Series, freq: str, days: list[tuple[int | None, str]] | None) -> dict[str, Any]:
    parts = series.parts
    local_start = series.local_start
    if freq == "DAILY":
        if "BYMONTHDAY" in parts:
            raise _NoZoomForm("Zoom has no form for a daily rule limited to days of the month")
        return {}
    if freq == "WEEKLY":
        if "BYMONTHDAY" in parts:
            raise _NoZoomForm("Zoom has no form for a weekly rule limited to days of the month")
        chosen = days or [(None, RFC_WEEKDAYS[local_start.weekday()])]
        if any(ordinal is not None for ordinal, _ in chosen):
            raise _NoZoomForm("Zoom has no form for numbered weekdays in a weekly rule")
        sunday_splits_weeks = len(chosen) > 1 and any(day == "SU" for _, day in chosen)
        if int(parts.get("INTERVAL", "1")) > 1 and sunday_splits_weeks and parts.get("WKST", "MO") != "SU":
            # Zoom's weeks start on Sunday; with weeks skipped, a Monday-start week groups the days differently.
            raise _NoZoomForm("Zoom's weeks start on Sunday, this rule's on Monday")
        numbers = sorted({ZOOM_WEEKDAY[day] for _, day in chosen})
        return {"weekly_days": ",".join(str(number) for number in numbers)}
    return _monthly_part(parts, days, local_start)


def _monthly_part(
    parts: dict[str, str], days: list[tuple[int | None, str]] | None, local_start: datetime
) -> dict[str, Any]:
    if days is not None:
        if "BYMONTHDAY" in parts:
            raise _NoZoomForm("Zoom has no form for weekdays and month days together")
        if len(days) != 1 or days[0][0] is None:
            raise _NoZoomForm("Zoom repeats monthly only on one numbered weekday, such as the 2nd Tuesday")
        ordinal, day = days[0]
        assert ordinal is not None
        if ordinal not in (1, 2, 3, 4, -1):
            raise _NoZoomForm("Zoom's monthly weekdays are the 1st to 4th or the last only")
        return {"monthly_week": ordinal, "monthly_week_day": ZOOM_WEEKDAY[day]}
    month_days = parts.get("BYMONTHDAY", str(local_start.day)).split(",")
    if len(month_days) != 1:
        raise _NoZoomForm("Zoom repeats monthly on one day of the month only")
    month_day = int(month_days[0])
    if not 1 <= month_day <= ZOOM_SAFE_MONTH_DAY:
        raise _NoZoomForm(f"Zoom cannot keep to day {month_day} of the month in months that lack it")
    return {"monthly_day": month_day}


def _end_part(series: Series) -> dict[str, Any]:
    parts = series.parts
    if "COUNT" not in parts and "UNTIL" not in parts:
        raise _NoZoomForm("the series has no end")
    starts = series.starts(ZOOM_MAX_OCCURRENCES + 1)
    if len(starts) > ZOOM_MAX_OCCURRENCES:
        raise _NoZoomForm(f"Zoom allows at most {ZOOM_MAX_OCCURRENCES} occurrences")
    if "COUNT" in parts:
        return {"end_times": len(starts)}
    # Zoom's end_date_time is the last moment an occurrence may start; the last one's start says it exactly.
    return {"end_date_time": zoom_time(starts[-1])}


# ------------------------------------------------------------------ instants the calendar sends


def parse_exdates(values: Iterable[object]) -> frozenset[datetime]:
    """The calendar's `exdates` as UTC instants; ones that are not ISO 8601 with an offset are ignored (they
    cannot name an occurrence)."""
    return frozenset(moment for value in values if (moment := parse_instant(value)) is not None)
