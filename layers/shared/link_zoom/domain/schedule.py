"""When a meeting happens: ISO 8601 times with offsets, IANA zones, whole-minute durations, Zoom's time format."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

TOPIC_MAX = 200
DEFAULT_TIME_ZONE = "UTC"
DEFAULT_TOPIC = "Zoom meeting"


@cache
def _time_zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def is_time_zone(name: object) -> bool:
    """An IANA zone name as tzdata knows it (Zoom rejects anything else with code 300)."""
    return isinstance(name, str) and name in _time_zones()


def parse_instant(value: object) -> datetime | None:
    """An ISO 8601 time WITH an offset, as a UTC datetime in whole seconds; None when invalid or offset-less."""
    if not isinstance(value, str) or not 10 <= len(value) <= 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    # Convert before any arithmetic: aware datetimes sharing a tzinfo subtract as wall-clock times.
    try:
        return parsed.astimezone(UTC).replace(microsecond=0)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None


def zoom_time(moment: datetime) -> str:
    """Zoom's `start_time` format in UTC (`yyyy-MM-ddTHH:mm:ssZ`); any other format Zoom silently replaces by now."""
    # Not strftime: its %Y does not pad years before 1000 ("32-01-01..."), which nothing parses back.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def current_minute(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Schedule:
    """What Zoom is told about a meeting: topic, UTC start, end, and the zone it is shown in."""

    topic: str
    start: datetime
    end: datetime
    time_zone: str = DEFAULT_TIME_ZONE

    @classmethod
    def starting_now(cls, topic: str, duration_minutes: int, now: datetime | None = None) -> Schedule:
        start = current_minute(now)
        return cls(topic, start, start + timedelta(minutes=duration_minutes))

    @property
    def duration_minutes(self) -> int:
        """Whole minutes, rounded up (a 30 min 10 s event needs a 31-minute meeting)."""
        return max(1, math.ceil((self.end - self.start).total_seconds() / 60))

    @property
    def start_time(self) -> str:
        return zoom_time(self.start)

    @property
    def end_time(self) -> str:
        return zoom_time(self.end)


def meeting_topic(subject: object) -> str:
    """A calendar subject as a Zoom topic: at most 200 characters, never empty."""
    text = subject.strip() if isinstance(subject, str) else ""
    return text[:TOPIC_MAX] or DEFAULT_TOPIC
