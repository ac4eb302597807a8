"""Zoom meetings: validating a create/update body the way Zoom does, and the meeting resource itself."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from .errors import invalid_field
from .recurrence import Occurrence, Recurrence, generate, invalid_recurrence, parse_recurrence

MEETING_TYPES = frozenset({1, 2, 3, 8})  # instant, scheduled, recurring (no fixed time), recurring (fixed time)
TIMED_TYPES = frozenset({2, 8})  # the types that have a start_time
DEFAULT_TOPIC = "Zoom Meeting"
DEFAULT_DURATION = 60
USER_TIMEZONE = "UTC"  # the emulated users' profile timezone
TOPIC_MAX = 200
AGENDA_MAX = 2000
LIST_AGENDA_MAX = 250  # "The length of agenda gets truncated to 250 characters" in a user's meeting list
# GET /users/{userId}/meetings `type`: scheduled (unexpired, live and upcoming scheduled meetings), live,
# upcoming and upcoming_meetings (upcoming, live included), previous_meetings.
LIST_TYPES = frozenset({"scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings"})
PASSWORD_RE = re.compile(r"[A-Za-z0-9@_*-]{1,10}")
# The only two start_time formats Zoom documents; anything else (offsets, fractions of a second) is
# "unparsable" and Zoom silently schedules the meeting for now.
START_TIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(Z?)")
DEFAULT_SETTINGS: dict[str, Any] = {
    "host_video": False,
    "participant_video": False,
    "join_before_host": False,
    "mute_upon_entry": False,
    "waiting_room": False,
    "approval_type": 2,
    "audio": "voip",
    "auto_recording": "none",
    "meeting_authentication": False,
    "use_pmi": False,
}


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class MeetingChanges:
    """The validated fields of a create or update request; None means "not given"."""

    topic: str | None = None
    type: int | None = None
    start_time: str | None = None
    duration: int | None = None
    timezone: str | None = None
    password: str | None = None
    agenda: str | None = None
    settings: dict[str, Any] | None = None
    recurrence: Recurrence | None = None

    def regenerates(self) -> bool:
        """Whether a series change must remake the occurrences (see recurrence.py)."""
        fields = (self.type, self.start_time, self.duration, self.timezone, self.recurrence)
        return any(value is not None for value in fields)


# The fields Zoom checks, in the order it checks them: (field, valid?, Zoom's message for code 300).
_FIELD_CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    (
        "topic",
        lambda v: isinstance(v, str) and len(v) <= TOPIC_MAX,
        f"Topic must be a string of at most {TOPIC_MAX} characters.",
    ),
    ("type", lambda v: _is_int(v) and v in MEETING_TYPES, "Meeting type must be 1, 2, 3 or 8."),
    ("start_time", lambda v: isinstance(v, str), "Start time must be a string."),
    ("duration", lambda v: _is_int(v) and v >= 0, "Duration must be a whole number of minutes."),
    ("timezone", lambda v: isinstance(v, str) and v in _timezones(), "Invalid field."),
    (
        "password",
        lambda v: isinstance(v, str) and PASSWORD_RE.fullmatch(v) is not None,
        "Passcode must be 1-10 characters of a-z, A-Z, 0-9, @ - _ *.",
    ),
    ("default_password", lambda v: isinstance(v, bool), "default_password must be a boolean."),
    (
        "agenda",
        lambda v: isinstance(v, str) and len(v) <= AGENDA_MAX,
        f"Agenda must be a string of at most {AGENDA_MAX} characters.",
    ),
    ("settings", lambda v: isinstance(v, dict), "Settings must be an object."),
)
_KEPT_FIELDS = ("topic", "type", "start_time", "duration", "timezone", "password", "agenda", "settings")


def parse_meeting_body(body: dict[str, Any]) -> MeetingChanges:
    """Checks the fields Zoom checks (code 300 on the first bad one); unknown fields are ignored, as at Zoom."""
    for name, valid, message in _FIELD_CHECKS:
        if name in body and not valid(body[name]):
            raise invalid_field(name, message)
    changes = MeetingChanges(**{name: body[name] for name in _KEPT_FIELDS if name in body})
    if "recurrence" in body:
        changes.recurrence = parse_recurrence(body["recurrence"])
    return changes


def parse_start_time(raw: str, timezone: str) -> datetime | None:
    """`yyyy-MM-ddTHH:mm:ssZ` is UTC; `yyyy-MM-ddTHH:mm:ss` is local time in `timezone`; else None."""
    match = START_TIME_RE.fullmatch(raw)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    if match.group(7):
        return naive.replace(tzinfo=UTC)
    return naive.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def zoom_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encrypted_password() -> str:
    # The `pwd` of a join URL: Zoom's encrypted form of the passcode, opaque to clients.
    return secrets.token_urlsafe(24)


def _numeric_passcode() -> str:
    return f"{secrets.randbelow(10**6):06d}"


@dataclass
class Meeting:
    """A meeting as Zoom keeps it; `start_time_replaced` is the emulator's note that Zoom ignored a start_time."""

    id: int
    host_id: str
    host_email: str
    join_base_url: str
    created_at: datetime
    start_time: datetime
    uuid: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(16)).decode())
    topic: str = DEFAULT_TOPIC
    type: int = 2
    duration: int = DEFAULT_DURATION
    timezone: str = USER_TIMEZONE
    agenda: str = ""
    # The emulated account requires passcodes (Zoom's default), so every meeting gets one.
    password: str = field(default_factory=_numeric_passcode)
    encrypted_password: str = field(default_factory=_encrypted_password)
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    start_time_replaced: bool = False
    recurrence: Recurrence | None = None
    occurrences: list[Occurrence] = field(default_factory=list)

    def apply(self, changes: MeetingChanges, now: datetime) -> None:
        """Applies a create or a whole-series update; a type 8 meeting's occurrences are remade when its
        times or rule change (Zoom's code 300 if the rule has no or too many occurrences)."""
        self._apply_fields(changes, now)
        if changes.recurrence is not None and self.type == 8:
            self.recurrence = changes.recurrence
        if self.type != 8:
            self.recurrence, self.occurrences = None, []
        elif self.recurrence is None:
            raise invalid_recurrence("a recurring meeting with a fixed time (type 8) needs a recurrence.")
        elif changes.regenerates() or not self.occurrences:
            self.occurrences = generate(self.recurrence, self.start_time, self.timezone, self.duration)
            self.start_time = self.occurrences[0].start_time

    def occurrence(self, occurrence_id: str) -> Occurrence | None:
        return next(
            (item for item in self.occurrences if item.occurrence_id == occurrence_id and item.status == "available"),
            None,
        )

    def last_end(self) -> datetime:
        """When the meeting's last available occurrence (or the meeting itself) ends."""
        available = [item for item in self.occurrences if item.status == "available"]
        if available:
            last = max(available, key=lambda item: item.start_time)
            return last.start_time + timedelta(minutes=last.duration)
        return self.start_time + timedelta(minutes=self.duration)

    def _apply_fields(self, changes: MeetingChanges, now: datetime) -> None:
        if changes.topic is not None:
            self.topic = changes.topic or DEFAULT_TOPIC
        if changes.type is not None:
            self.type = changes.type
        if changes.timezone is not None:  # before start_time: a local start_time is read in the new zone
            self.timezone = changes.timezone
        if changes.start_time is not None:
            parsed = parse_start_time(changes.start_time, self.timezone)
            self.start_time = parsed or now.replace(microsecond=0)
            self.start_time_replaced = parsed is None
        if changes.duration is not None:
            self.duration = changes.duration
        if changes.agenda is not None:
            self.agenda = changes.agenda
        if changes.password is not None:
            self.password = changes.password
            self.encrypted_password = _encrypted_password()
        if changes.settings is not None:
            self.settings = {**self.settings, **changes.settings}

    def to_api(self) -> dict[str, Any]:
        """The body of Zoom's create and get answers."""
        data: dict[str, Any] = {
            "uuid": self.uuid,
            "id": self.id,
            "host_id": self.host_id,
            "host_email": self.host_email,
            "topic": self.topic,
            "type": self.type,
            "status": "waiting",
            "duration": self.duration,
            "timezone": self.timezone,
            "created_at": zoom_time(self.created_at),
            "join_url": f"{self.join_base_url}/j/{self.id}?pwd={self.encrypted_password}",
            "password": self.password,
            "encrypted_password": self.encrypted_password,
            "settings": dict(self.settings),
            "pre_schedule": False,
        }
        if self.type in TIMED_TYPES:
            data["start_time"] = zoom_time(self.start_time)
        if self.agenda:
            data["agenda"] = self.agenda
        if self.type == 8 and self.recurrence is not None:
            data["recurrence"] = self.recurrence.to_api()
            data["occurrences"] = [item.to_api() for item in self.occurrences]
        return data

    def to_list_item(self) -> dict[str, Any]:
        """One entry of GET /users/{userId}/meetings: no passcode, the agenda cut to 250 characters."""
        data: dict[str, Any] = {
            "uuid": self.uuid,
            "id": self.id,
            "host_id": self.host_id,
            "topic": self.topic,
            "type": self.type,
            "duration": self.duration,
            "timezone": self.timezone,
            "created_at": zoom_time(self.created_at),
            "join_url": f"{self.join_base_url}/j/{self.id}?pwd={self.encrypted_password}",
        }
        if self.type in TIMED_TYPES:
            data["start_time"] = zoom_time(self.start_time)
        if self.agenda:
            data["agenda"] = self.agenda[:LIST_AGENDA_MAX]
        return data


def meeting_listed(meeting: Meeting, kind: str, now: datetime) -> bool:
    """Whether a list of `kind` shows the meeting (the emulator has no live state: a timed meeting is live
    between its start and its end; an instant meeting is never listed, as it is never scheduled)."""
    if meeting.type == 1:
        return False
    if meeting.type not in TIMED_TYPES:  # recurring without a fixed time: always upcoming
        return kind in ("scheduled", "upcoming", "upcoming_meetings")
    end = meeting.last_end()
    if kind == "live":
        return meeting.start_time <= now < end
    if kind in ("upcoming", "upcoming_meetings"):
        return end > now
    if kind == "previous_meetings":
        return end <= now
    return True  # scheduled
