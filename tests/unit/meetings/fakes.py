"""In-memory stand-ins for the meetings ports (Zoom, the connection, the link and calendar tables), type-checked
against them, with helpers that make assertions read well: `len(zoom)`, `meeting_id in zoom`, `zoom.calls`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from link_zoom.deadline import Deadline
from link_zoom.domain.calendar_events import WATCHED, CalendarItem, ZoomFields
from link_zoom.domain.meetings import (
    CalendarPort,
    ConnectionPort,
    FoundMeeting,
    MeetingLink,
    MeetingLinksPort,
    Meetings,
    NotConnected,
    OncePort,
    ZoomMeeting,
    ZoomMeetingsPort,
)
from link_zoom.domain.schedule import Schedule
from link_zoom.domain.zoom_quota import QuotaMarkersPort, ZoomQuota
from link_zoom.errors import IdempotencyKeyReused, ZoomMeetingNotFound, ZoomOutcomeUnknown

T = TypeVar("T")

USER = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER_USER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


@dataclass
class FakeZoom:
    """Zoom's meetings API: meetings by id, every call in order, queued failures, optional latency."""

    meetings: dict[str, Schedule] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, meeting id or "")
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # meeting id -> the claim reference in its agenda
    latency_s: float = 0.0
    _ids: Any = field(default_factory=lambda: itertools.count(81_000_000_001))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __len__(self) -> int:
        return len(self.meetings)

    def __contains__(self, meeting_id: object) -> bool:
        return meeting_id in self.meetings

    def fail_next(self, operation: str, error: BaseException, times: int = 1) -> None:
        self.failures.setdefault(operation, []).extend([error] * times)

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def _enter(self, operation: str, meeting_id: str) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            self.calls.append((operation, meeting_id))
            queued = self.failures.get(operation)
            if queued:
                raise queued.pop(0)

    def create(
        self, access_token: str, schedule: Schedule, deadline: Deadline, reference: str | None = None
    ) -> ZoomMeeting:
        assert access_token.startswith("token-")
        with self._lock:
            queued = self.failures.get("create")
            # A lost answer (ZoomOutcomeUnknown) comes after Zoom made the meeting; other failures before.
            lost_answer = bool(queued) and isinstance(queued[0], ZoomOutcomeUnknown)
            meeting_id = str(next(self._ids))
        if lost_answer:
            self._make(meeting_id, schedule, reference)
        self._enter("create", "")
        self._make(meeting_id, schedule, reference)
        return ZoomMeeting(meeting_id, f"https://zoom.example/j/{meeting_id}?pwd=abc", "123456")

    def _make(self, meeting_id: str, schedule: Schedule, reference: str | None) -> None:
        with self._lock:
            self.meetings[meeting_id] = schedule
            if reference is not None:
                self.references[meeting_id] = reference

    def find_created(self, access_token: str, reference: str, deadline: Deadline) -> list[FoundMeeting]:
        self._enter("find_created", "")
        with self._lock:
            return [
                FoundMeeting(
                    ZoomMeeting(meeting_id, f"https://zoom.example/j/{meeting_id}?pwd=abc", "123456"),
                    schedule.topic,
                    schedule.start_time,
                    schedule.duration_minutes,
                    schedule.time_zone,
                )
                for meeting_id, schedule in self.meetings.items()
                if self.references.get(meeting_id) == reference
            ]

    def update(self, access_token: str, meeting_id: str, schedule: Schedule, deadline: Deadline) -> None:
        self._enter("update", meeting_id)
        with self._lock:
            if meeting_id not in self.meetings:
                raise ZoomMeetingNotFound(meeting_id)
            self.meetings[meeting_id] = schedule

    def delete(self, access_token: str, meeting_id: str, deadline: Deadline) -> bool:
        self._enter("delete", meeting_id)
        with self._lock:
            return self.meetings.pop(meeting_id, None) is not None


@dataclass
class FakeConnection:
    """Connected users get a token; everyone else is NotConnected. `uses` counts every call_zoom."""

    connected: set[str] = field(default_factory=lambda: {USER})
    uses: int = 0

    def call_zoom(self, user_id: str, operation: Callable[[str], T], deadline: Deadline | None = None) -> T:
        self.uses += 1
        if user_id not in self.connected:
            raise NotConnected()
        return operation(f"token-{user_id}")


class FakeLinks:
    """The meeting links table with its conditional writes."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], MeetingLink] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, user_id: str, event_id: str) -> MeetingLink | None:
        with self._lock:
            return self.rows.get((user_id, event_id))

    def claim(
        self,
        user_id: str,
        event_id: str,
        claim_id: str,
        expires_at: float,
        *,
        replacing: str | None = None,
        ref: str | None = None,
        outcome_unknown: bool = False,
    ) -> bool:
        with self._lock:
            current = self.rows.get((user_id, event_id))
            if replacing is None and current is not None:
                return False
            if replacing is not None and (
                current is None or current.claim_id != replacing or current.meeting_id is not None
            ):
                return False
            self.rows[(user_id, event_id)] = MeetingLink(
                user_id,
                event_id,
                claim_id=claim_id,
                claim_expires_at=expires_at,
                claim_ref=ref,
                outcome_unknown=outcome_unknown,
            )
            return True

    def mark_unknown(self, user_id: str, event_id: str, claim_id: str) -> bool:
        with self._lock:
            current = self.rows.get((user_id, event_id))
            if current is None or current.claim_id != claim_id or current.meeting_id is not None:
                return False
            self.rows[(user_id, event_id)] = replace(current, outcome_unknown=True, claim_expires_at=0.0)
            return True

    def complete(
        self, user_id: str, event_id: str, claim_id: str, meeting: ZoomMeeting, schedule: Schedule
    ) -> MeetingLink | None:
        with self._lock:
            current = self.rows.get((user_id, event_id))
            if current is None or current.claim_id != claim_id:
                return None
            link = MeetingLink(user_id, event_id, meeting.meeting_id, meeting.join_url, meeting.password, schedule)
            self.rows[(user_id, event_id)] = link
            return link

    def release(self, user_id: str, event_id: str, claim_id: str) -> bool:
        with self._lock:
            current = self.rows.get((user_id, event_id))
            if current is None or current.claim_id != claim_id or current.meeting_id is not None:
                return False
            del self.rows[(user_id, event_id)]
            return True

    def reschedule(self, link: MeetingLink, schedule: Schedule) -> MeetingLink | None:
        with self._lock:
            current = self.rows.get((link.user_id, link.event_id))
            if current is None or current.meeting_id != link.meeting_id:
                return None
            moved = replace(current, schedule=schedule)
            self.rows[(link.user_id, link.event_id)] = moved
            return moved

    def remove(self, user_id: str, event_id: str, meeting_id: str) -> bool:
        with self._lock:
            current = self.rows.get((user_id, event_id))
            if current is None or current.meeting_id != meeting_id:
                return False
            del self.rows[(user_id, event_id)]
            return True

    def find_by_meeting(self, meeting_id: str) -> list[tuple[str, str]]:
        with self._lock:
            return [key for key, link in self.rows.items() if link.meeting_id == meeting_id]


def dynamo(value: object) -> dict[str, Any]:
    """A Python value in DynamoDB JSON (the types calendar items use)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, set | frozenset):
        return {"SS": sorted(value)}  # exdates
    raise TypeError(value)


def image(user_id: str = USER, event_id: str = "evt-1", **attributes: object) -> dict[str, dict[str, Any]]:
    """A calendar item in DynamoDB JSON; None values are left out."""
    return {
        "user_id": {"S": user_id},
        "event_id": {"S": event_id},
        **{name: dynamo(value) for name, value in attributes.items() if value is not None},
    }


class FakeCalendar:
    """The calendar table: items in DynamoDB JSON; write-backs honour the watched-attribute condition."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, ZoomFields]] = []
        self.refused_writes = 0
        self.reads = 0
        self._lock = threading.Lock()

    def put(self, attributes: Mapping[str, Any]) -> CalendarItem:
        item = CalendarItem.from_image(attributes)
        assert item is not None
        with self._lock:
            self.items[(item.user_id, item.event_id)] = dict(attributes)
        return item

    def delete(self, user_id: str, event_id: str) -> None:
        with self._lock:
            self.items.pop((user_id, event_id), None)

    def zoom_of(self, user_id: str, event_id: str) -> ZoomFields:
        item = self.get(user_id, event_id)
        assert item is not None
        return item.zoom_fields()

    def get(self, user_id: str, event_id: str) -> CalendarItem | None:
        with self._lock:
            self.reads += 1
            attributes = self.items.get((user_id, event_id))
            return CalendarItem(dict(attributes)) if attributes is not None else None

    def write_back(self, item: CalendarItem, fields: ZoomFields) -> bool:
        if item.already_shows(fields):
            return True
        with self._lock:
            current = self.items.get((item.user_id, item.event_id))
            if current is None or any(current.get(name) != item.attributes.get(name) for name in WATCHED):
                self.refused_writes += 1
                return False
            for name, text in fields.attributes().items():
                if text is None:
                    current.pop(name, None)
                else:
                    current[name] = {"S": text}
            self.writes.append((item.user_id, item.event_id, fields))
            return True

    def waiting_for_connection(self, user_id: str) -> Iterable[CalendarItem]:
        with self._lock:
            rows = [dict(attrs) for (owner, _), attrs in self.items.items() if owner == user_id]
        for attrs in rows:
            item = CalendarItem(attrs)
            if item.zoom and item.zoom_fields().status == "authorization_required":
                yield item

    def mark_deleted_at_zoom(self, user_id: str, event_id: str, meeting_id: str) -> bool:
        with self._lock:
            current = self.items.get((user_id, event_id))
            if current is None or current.get("zoom_meeting_id") != {"S": meeting_id}:
                return False
            current["zoom_status"] = {"S": "deleted_at_zoom"}
            for name in ("zoom_meeting_id", "zoom_join_url", "zoom_error"):
                current.pop(name, None)
            return True


class FakeOnce:
    """Kept answers by scope (the real one is powertools idempotency on DynamoDB, tested in the handler tests)."""

    def __init__(self) -> None:
        self.answers: dict[tuple[tuple[str, str], ...], tuple[dict[str, Any], dict[str, Any]]] = {}

    def run(
        self,
        scope: dict[str, str],
        request: dict[str, Any],
        compute: Callable[[], dict[str, Any]],
        deadline: Deadline,
    ) -> dict[str, Any]:
        key = tuple(sorted(scope.items()))
        if key not in self.answers:
            self.answers[key] = (request, compute())
        first_request, answer = self.answers[key]
        if first_request != request:
            raise IdempotencyKeyReused()
        return answer


@dataclass
class FakeQuotaMarkers:
    """The users' daily-limit markers: a later time only ever replaces an earlier one."""

    rows: dict[str, float] = field(default_factory=dict)
    reads: int = 0
    writes: int = 0
    failing: bool = False

    def limited_until(self, user_id: str) -> float | None:
        self.reads += 1
        if self.failing:
            raise RuntimeError("the table cannot be read")
        return self.rows.get(user_id)

    def limit_until(self, user_id: str, until: float) -> None:
        self.writes += 1
        if until > self.rows.get(user_id, 0.0):
            self.rows[user_id] = until


class Switch:
    def __init__(self, on: bool = True) -> None:
        self.on = on
        self.reads = 0

    def __call__(self) -> bool:
        self.reads += 1
        return self.on


@dataclass
class World:
    """The service on fakes, and the fakes to assert on."""

    zoom: FakeZoom
    connection: FakeConnection
    links: FakeLinks
    calendar: FakeCalendar
    switch: Switch
    meetings: Meetings
    markers: FakeQuotaMarkers = field(default_factory=FakeQuotaMarkers)


def build_world(clock: Callable[[], float] = time.time) -> World:
    zoom, connection, links, calendar, switch = FakeZoom(), FakeConnection(), FakeLinks(), FakeCalendar(), Switch()
    # Each fake is checked against its port by mypy here.
    ports: tuple[ZoomMeetingsPort, ConnectionPort, MeetingLinksPort, CalendarPort] = (zoom, connection, links, calendar)
    once: OncePort = FakeOnce()
    markers = FakeQuotaMarkers()
    marker_port: QuotaMarkersPort = markers
    meetings = Meetings(
        *ports,
        zoom_enabled=switch,
        once=once,
        clock=clock,
        sleep=lambda _: time.sleep(0.001),
        quota=ZoomQuota(marker_port, clock=clock),
    )
    return World(zoom, connection, links, calendar, switch, meetings, markers)


def stream_record(
    event_name: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    sequence: int = 1,
) -> dict[str, Any]:
    """A DynamoDB stream record as Lambda delivers it (NEW_AND_OLD_IMAGES)."""
    some = new or old
    assert some is not None
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": time.time(),
        "Keys": {"user_id": some["user_id"], "event_id": some["event_id"]},
        "SequenceNumber": str(sequence),
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        body["OldImage"] = dict(old)
    if new is not None:
        body["NewImage"] = dict(new)
    return {
        "eventID": f"id-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/calendar/stream/2026-01-01T00:00:00.000",
    }
