"""Zoom's recurring meetings: the `recurrence` object checked as Zoom checks it, and occurrences generated
as Zoom generates them (in the meeting's timezone, so the wall-clock time holds across DST; each
occurrence's id is its original start in epoch milliseconds).

Written independently of the service's RRULE code on purpose: the service checks its expansion against
what this produces. Where Zoom's documentation is silent the emulator picks one reading and says so:
a `monthly_day` missing from a month falls on that month's last day; a series change of the start, the
duration, the zone, the type or the recurrence regenerates every occurrence (deleted and moved ones
come back as the rule says).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .errors import ApiError

MAX_OCCURRENCES = 60
MAX_INTERVAL = {1: 99, 2: 50, 3: 10}  # days, weeks, months
DAILY, WEEKLY, MONTHLY = 1, 2, 3
RECURRENCE_FIELDS = frozenset(
    {
        "type",
        "repeat_interval",
        "weekly_days",
        "monthly_day",
        "monthly_week",
        "monthly_week_day",
        "end_times",
        "end_date_time",
    }
)
# What one occurrence's PATCH may change (Zoom: "only start_time, duration, agenda and settings").
OCCURRENCE_FIELDS = frozenset({"start_time", "duration", "agenda", "settings"})


def invalid_recurrence(detail: str) -> ApiError:
    """Zoom's answer to a recurrence it cannot take: code 300 naming the field."""
    return ApiError(400, 300, f"Invalid recurrence: {detail}")


def invalid_occurrence(occurrence_id: str) -> ApiError:
    return ApiError(400, 300, f"Invalid occurrence_id: {occurrence_id[:40]}.")


@dataclass(frozen=True)
class Recurrence:
    type: int
    repeat_interval: int = 1
    weekly_days: tuple[int, ...] = ()
    monthly_day: int | None = None
    monthly_week: int | None = None
    monthly_week_day: int | None = None
    end_times: int | None = None
    end_date_time: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "repeat_interval": self.repeat_interval}
        if self.weekly_days:
            data["weekly_days"] = ",".join(str(day) for day in self.weekly_days)
        for name in ("monthly_day", "monthly_week", "monthly_week_day", "end_times"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.end_date_time is not None:
            data["end_date_time"] = self.end_date_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        return data


def _whole(value: object, low: int, high: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_recurrence(f"{name} must be a whole number from {low} to {high}.")
    return value


def parse_recurrence(raw: object) -> Recurrence:
    """The `recurrence` of a create or update body, or Zoom's code 300."""
    if not isinstance(raw, dict):
        raise invalid_recurrence("recurrence must be an object.")
    unknown = sorted(set(raw) - RECURRENCE_FIELDS)
    if unknown:
        raise invalid_recurrence(f"unknown field {unknown[0][:40]}.")
    kind = _whole(raw.get("type"), 1, 3, "type")
    interval = _whole(raw.get("repeat_interval", 1), 1, MAX_INTERVAL[kind], "repeat_interval")
    recurrence = Recurrence(kind, interval, **_days(kind, raw), **_end(raw))
    return recurrence


def _days(kind: int, raw: dict[str, Any]) -> dict[str, Any]:
    if kind == DAILY:
        return {}
    if kind == WEEKLY:
        text = raw.get("weekly_days")
        parts = text.split(",") if isinstance(text, str) else []
        if not parts or not all(part.strip().isdigit() and 1 <= int(part) <= 7 for part in parts):
            raise invalid_recurrence('weekly_days must list days 1 (Sunday) to 7 (Saturday), such as "2,4".')
        return {"weekly_days": tuple(sorted({int(part) for part in parts}))}
    if "monthly_day" in raw:
        if "monthly_week" in raw or "monthly_week_day" in raw:
            raise invalid_recurrence("monthly_day cannot be used with monthly_week.")
        return {"monthly_day": _whole(raw["monthly_day"], 1, 31, "monthly_day")}
    week = raw.get("monthly_week")
    if isinstance(week, bool) or week not in (-1, 1, 2, 3, 4):
        raise invalid_recurrence("monthly_week must be -1 (last) or 1 to 4, or monthly_day must be given.")
    return {"monthly_week": week, "monthly_week_day": _whole(raw.get("monthly_week_day"), 1, 7, "monthly_week_day")}


def _end(raw: dict[str, Any]) -> dict[str, Any]:
    if "end_times" in raw and "end_date_time" in raw:
        raise invalid_recurrence("end_times and end_date_time cannot be used together.")
    if "end_date_time" in raw:
        text = raw["end_date_time"]
        try:
            moment = (
                datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if isinstance(text, str) else None
            )
        except ValueError:
            moment = None
        if moment is None:
            raise invalid_recurrence("end_date_time must be yyyy-MM-ddTHH:mm:ssZ.")
        return {"end_date_time": moment}
    # Zoom's documented default: end_times 1.
    return {"end_times": _whole(raw.get("end_times", 1), 1, MAX_OCCURRENCES, "end_times")}


# --- occurrences


@dataclass
class Occurrence:
    occurrence_id: str
    start_time: datetime
    duration: int
    status: str = "available"
    agenda: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "occurrence_id": self.occurrence_id,
            "start_time": self.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": self.duration,
            "status": self.status,
        }


def generate(recurrence: Recurrence, start: datetime, timezone: str, duration: int) -> list[Occurrence]:
    """The occurrences Zoom makes: from the start's local date on, at the start's local time in `timezone`."""
    zone = ZoneInfo(timezone)
    local = start.astimezone(zone)
    starts: list[datetime] = []
    for day in _dates(recurrence, local.date()):
        moment = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=zone).astimezone(UTC)
        if recurrence.end_date_time is not None and moment > recurrence.end_date_time:
            break
        starts.append(moment)
        if recurrence.end_times is not None and len(starts) == recurrence.end_times:
            break
        if len(starts) > MAX_OCCURRENCES:
            raise invalid_recurrence(f"a recurring meeting can have at most {MAX_OCCURRENCES} occurrences.")
    if not starts:
        raise invalid_recurrence("the recurrence has no occurrence.")
    return [Occurrence(str(int(moment.timestamp() * 1000)), moment, duration) for moment in starts]


def _dates(recurrence: Recurrence, first: date) -> Any:
    step = recurrence.repeat_interval
    if recurrence.type == DAILY:
        day = first
        while True:
            yield day
            day += timedelta(days=step)
    elif recurrence.type == WEEKLY:
        # Zoom's weeks start on Sunday (its day 1).
        week_start = first - timedelta(days=(first.weekday() + 1) % 7)
        while True:
            for number in recurrence.weekly_days:
                day = week_start + timedelta(days=number - 1)
                if day >= first:
                    yield day
            week_start += timedelta(weeks=step)
    else:
        year, month = first.year, first.month
        while True:
            day = _month_day(recurrence, year, month)
            if day >= first:
                yield day
            month += step
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


def _month_day(recurrence: Recurrence, year: int, month: int) -> date:
    last = calendar.monthrange(year, month)[1]
    if recurrence.monthly_day is not None:
        return date(year, month, min(recurrence.monthly_day, last))
    assert recurrence.monthly_week is not None and recurrence.monthly_week_day is not None
    python_weekday = (recurrence.monthly_week_day - 2) % 7  # Zoom 1 = Sunday; Python 0 = Monday
    if recurrence.monthly_week == -1:
        day = date(year, month, last)
        return day - timedelta(days=(day.weekday() - python_weekday) % 7)
    day = date(year, month, 1)
    day += timedelta(days=(python_weekday - day.weekday()) % 7)
    return day + timedelta(weeks=recurrence.monthly_week - 1)
