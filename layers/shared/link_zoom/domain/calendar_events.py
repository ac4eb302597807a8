"""The calendar table as the service sees it: items, stream records, and what a record asks the service to do.

`decide()` looks only at a record's old and new images, so a change Zoom does not care about (including
the service's own zoom_* write-backs) ends here: no read, no Zoom call, no KMS call. Records that need
work are reconciled by the meetings service; `process_records` runs different events concurrently and
the records of one event in order.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from link_zoom.deadline import Deadline
from link_zoom.domain.batch_reads import connection_reads_shared
from link_zoom.domain.schedule import DEFAULT_TIME_ZONE, Schedule, is_time_zone, meeting_topic, parse_instant
from link_zoom.errors import ZoomRateLimited
from link_zoom.observability import logger

if TYPE_CHECKING:
    from link_zoom.domain.event_work import EventWork
    from link_zoom.domain.meetings import Meetings

# Queues an event to be reconciled again after `retry_after` seconds: (user_id, event_id, retry_after).
Later = Callable[[str, str, int], None]

SCHEDULED = "scheduled"
AUTHORIZATION_REQUIRED = "authorization_required"
FEATURE_DISABLED = "feature_disabled"
DELETED_AT_ZOOM = "deleted_at_zoom"
RATE_LIMITED = "rate_limited"
FAILED = "failed"

# The Link server's attributes a meeting follows; a write-back applies only while they are unchanged.
# Recurring events (contract 3a): a series item's rule and cancelled dates, an exception item's series and
# the original start of the occurrence it replaces.
RECURRENCE_ATTRIBUTES = ("recurrence", "exdates", "series_id", "recurrence_id")
WATCHED = ("start", "end", "time_zone", "subject", "zoom", *RECURRENCE_ATTRIBUTES)
SCHEDULE_ATTRIBUTES = ("start", "end", "time_zone", "subject", *RECURRENCE_ATTRIBUTES)
# The only attributes the service ever writes to an item.
ZOOM_ATTRIBUTES = ("zoom_meeting_id", "zoom_join_url", "zoom_status", "zoom_error")

MAX_WORKERS = 16

# Set (true) in the stream function's event by the DLQ replay, which hands records over again out of the stream's
# order; an event source mapping never sends it.
REPLAYED_KEY = "linkZoomReplayed"

DynamoValue = Mapping[str, Any]  # one attribute in DynamoDB JSON, e.g. {"S": "..."}


@dataclass(frozen=True)
class ZoomFields:
    """The four attributes the service writes back; None means absent."""

    meeting_id: str | None = None
    join_url: str | None = None
    status: str | None = None
    error: str | None = None

    def with_status(self, status: str, error: str | None = None) -> ZoomFields:
        return replace(self, status=status, error=error)

    def attributes(self) -> dict[str, str | None]:
        return dict(zip(ZOOM_ATTRIBUTES, (self.meeting_id, self.join_url, self.status, self.error), strict=True))


@dataclass(frozen=True)
class CalendarItem:
    """One calendar event as stored (DynamoDB JSON), with typed views of the attributes the service reads."""

    attributes: Mapping[str, DynamoValue]
    # A stream record's image: its zoom_* attributes may be older than the item's, since the service's own
    # write-backs make no work and so no later record is reconciled after them.
    from_stream: bool = False

    @classmethod
    def from_image(cls, image: Mapping[str, DynamoValue] | None, *, from_stream: bool = False) -> CalendarItem | None:
        if not image or "S" not in (image.get("user_id") or {}) or "S" not in (image.get("event_id") or {}):
            return None
        return cls(dict(image), from_stream)

    def already_shows(self, fields: ZoomFields) -> bool:
        """Whether the item surely holds `fields` already (a write-back would change nothing)."""
        return not self.from_stream and self.zoom_fields() == fields

    @property
    def user_id(self) -> str:
        return str(self.attributes["user_id"]["S"])

    @property
    def event_id(self) -> str:
        return str(self.attributes["event_id"]["S"])

    def text(self, name: str) -> str | None:
        value = (self.attributes.get(name) or {}).get("S")
        return value if isinstance(value, str) else None

    @property
    def zoom(self) -> bool:
        return (self.attributes.get("zoom") or {}).get("BOOL") is True

    @property
    def series_id(self) -> str | None:
        """Set on an exception item: the event id of its series (which decides whether it has Zoom)."""
        return self.text("series_id")

    @property
    def follows_zoom(self) -> bool:
        """Whether a meeting concerns this item: its own toggle, or for an exception item its series'."""
        return self.zoom or self.series_id is not None

    def exdates(self) -> list[str]:
        value = (self.attributes.get("exdates") or {}).get("SS")
        return [text for text in value if isinstance(text, str)] if isinstance(value, list) else []

    def zoom_fields(self) -> ZoomFields:
        return ZoomFields(*(self.text(name) for name in ZOOM_ATTRIBUTES))

    def watched(self) -> dict[str, DynamoValue | None]:
        return {name: self.attributes.get(name) for name in WATCHED}

    def without_zoom_fields(self) -> dict[str, DynamoValue]:
        return {name: value for name, value in self.attributes.items() if name not in ZOOM_ATTRIBUTES}

    def schedule(self) -> Schedule | None:
        """The meeting this event asks for; None when its times are unusable (no offset, end not after start)."""
        start, end = parse_instant(self.text("start")), parse_instant(self.text("end"))
        if start is None or end is None or end <= start:
            return None
        zone = self.text("time_zone")
        # A zone Zoom would refuse is only a display preference: the UTC times stay exact.
        time_zone = zone if zone is not None and is_time_zone(zone) else DEFAULT_TIME_ZONE
        return Schedule(meeting_topic(self.text("subject")), start, end, time_zone)


@dataclass(frozen=True)
class Change:
    """A stream record, reduced to whose event it is and whether the service must look at it."""

    user_id: str
    event_id: str
    sequence_number: str
    event_name: str
    needs_reconcile: bool
    reason: str
    # The item as this record left it (INSERT, MODIFY); None for REMOVE.
    image: CalendarItem | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.user_id, self.event_id)


def decide(record: Mapping[str, Any]) -> Change:
    """What a stream record (Lambda's DynamoDB stream format) asks for, from its images alone."""
    stream = record.get("dynamodb") or {}
    keys = stream.get("Keys") or {}
    user_id = (keys.get("user_id") or {}).get("S")
    event_id = (keys.get("event_id") or {}).get("S")
    if not isinstance(user_id, str) or not isinstance(event_id, str):
        raise ValueError("the stream record has no user_id/event_id keys")
    name = str(record.get("eventName", ""))
    sequence = str(stream.get("SequenceNumber", ""))

    old = CalendarItem.from_image(stream.get("OldImage"), from_stream=True)
    new = CalendarItem.from_image(stream.get("NewImage"), from_stream=True) if name != "REMOVE" else None

    def change(needs: bool, reason: str) -> Change:
        return Change(user_id, event_id, sequence, name, needs, reason, new)

    if name == "REMOVE":
        # Also an event whose meeting came from PUT /v1/events/{id}/zoom: the link record knows.
        return change(True, "event removed")
    if new is None:
        return change(True, "no new image")
    if name == "INSERT" or old is None:
        return change(new.follows_zoom, "new event with zoom" if new.follows_zoom else "new event without zoom")
    return change(*_modified(old, new))


def _modified(old: CalendarItem, new: CalendarItem) -> tuple[bool, str]:
    """Whether a MODIFY needs the service, and why."""
    if old.without_zoom_fields() == new.without_zoom_fields():
        return False, "only zoom_* attributes changed"
    if old.follows_zoom != new.follows_zoom:
        return True, "zoom switched on" if new.follows_zoom else "zoom switched off"
    if not new.follows_zoom:
        return False, "zoom is off"
    if any(old.attributes.get(attr) != new.attributes.get(attr) for attr in SCHEDULE_ATTRIBUTES):
        return True, "schedule or subject changed"
    if new.zoom_fields().meeting_id is None:
        return True, "waiting for a meeting"
    return False, "nothing a meeting follows changed"


class SkippedAfterFailure(Exception):
    """Not processed: an earlier record of the same event failed, and records of one event stay in order."""


def run_per_key(
    jobs: Sequence[tuple[Hashable, Callable[[], object]]], max_workers: int = MAX_WORKERS
) -> list[BaseException | None]:
    """Runs jobs of different keys concurrently and those of one key in order; returns each job's error."""
    results: list[BaseException | None] = [None] * len(jobs)
    groups: dict[Hashable, list[int]] = {}
    for index, (key, _) in enumerate(jobs):
        groups.setdefault(key, []).append(index)

    def run_group(indexes: list[int]) -> None:
        for position, index in enumerate(indexes):
            try:
                jobs[index][1]()
            except Exception as exc:
                results[index] = exc
                for later in indexes[position + 1 :]:
                    results[later] = SkippedAfterFailure()
                return

    if len(groups) <= 1 or max_workers <= 1:
        for indexes in groups.values():
            run_group(indexes)
    else:
        with ThreadPoolExecutor(max_workers=min(max_workers, len(groups)), thread_name_prefix="event") as pool:
            # Each task runs in a copy of the caller's context, so context-bound state (locally: which function
            # is acting, for its IAM identity and log) follows the work into the pool's threads.
            tasks = [pool.submit(contextvars.copy_context().run, run_group, indexes) for indexes in groups.values()]
            for task in tasks:
                task.result()
    return results


def process_records(
    records: Sequence[Mapping[str, Any]],
    deadline: Deadline,
    meetings_service: Callable[[], Meetings],
    max_workers: int = MAX_WORKERS,
    later: Later | None = None,
    replayed: bool = False,
) -> list[BaseException | None]:
    """Handles a batch of stream records; returns, per record, None or the error that failed it.

    `meetings_service` is asked for the service only when a record needs it (most records need nothing). An event
    Zoom rate-limits is handed to `later` (the per-event work queue) and its record succeeds: the service waits
    the limit out itself, never through the stream's retries and its DLQ (without `later`, the record fails).

    An event's last record in the batch is reconciled with the item as its newest record left it, without
    reading the item again: the stream delivers an item's records in order, so a later change has a later record
    that is reconciled after this one (and the write-back applies only while the item still is what the record
    says).
    Records handed over again out of that order (`replayed`: the DLQ replay, possibly long after) are not
    trusted so: each reconcile reads the item as it is now. Each user's connection is read once for the whole
    batch (domain/batch_reads.py)."""
    changes = [_decided(record) for record in records]
    meetings = meetings_service() if any(change and change.needs_reconcile for change in changes) else None
    trusted = {} if replayed else _images_to_trust(changes)
    jobs: list[tuple[Hashable, Callable[[], object]]] = []
    for number, change in enumerate(changes):
        if change is None:
            jobs.append((("", str(number)), _nothing))
        elif change.needs_reconcile and meetings is not None:
            jobs.append((change.key, partial(_reconcile, meetings, change, deadline, later, trusted.get(number))))
        else:
            jobs.append((change.key, _nothing))  # still in its event's order: a failure before it skips it
    with connection_reads_shared():
        results = run_per_key(jobs, max_workers)
    for change, error in zip(changes, results, strict=True):
        if error is not None and change is not None and not isinstance(error, SkippedAfterFailure):
            logger.warning(
                "calendar stream record failed",
                extra={
                    "event_id": change.event_id,
                    "sequence_number": change.sequence_number,
                    "error": type(error).__name__,
                },
            )
    return results


def _images_to_trust(changes: Sequence[Change | None]) -> dict[int, CalendarItem]:
    """Which records are reconciled from an image instead of a read, by position: each event's last record in
    the batch, with the image of the event's newest record (the highest sequence number). An event with a record
    whose sequence number is not a number is read."""
    last: dict[tuple[str, str], int] = {}
    newest: dict[tuple[str, str], Change | None] = {}  # None: not ordered, read the item
    for number, change in enumerate(changes):
        if change is None:
            continue
        last[change.key] = number
        known = newest.get(change.key, change)
        if known is not None and known.sequence_number.isdigit() and change.sequence_number.isdigit():
            newest[change.key] = max(known, change, key=lambda found: int(found.sequence_number))
        else:
            newest[change.key] = None
    return {number: found.image for key, number in last.items() if (found := newest[key]) and found.image}


def _decided(record: Mapping[str, Any]) -> Change | None:
    try:
        return decide(record)
    except ValueError:
        # Retrying cannot repair a record without keys: log it and let the shard move on.
        logger.error("unusable calendar stream record", extra={"event_name": record.get("eventName")})
        return None


def _nothing() -> None:
    return None


def _reconcile(
    meetings: Meetings, change: Change, deadline: Deadline, later: Later | None, seen: CalendarItem | None
) -> None:
    try:
        outcome = meetings.reconcile_event(change.user_id, change.event_id, deadline, seen)
    except ZoomRateLimited as exc:
        if later is None:
            raise
        later(change.user_id, change.event_id, exc.retry_after_seconds)
        outcome = RATE_LIMITED
    logger.info(
        "calendar event reconciled",
        extra={"event_id": change.event_id, "reason": change.reason, "outcome": outcome},
    )


def sweep_after_connect(user_id: str, deadline: Deadline, meetings: Meetings, work: EventWork | None = None) -> int:
    """Gives the user's not-yet-ended events waiting with authorization_required their meetings. With `work`, each
    event is work of its own: one that fails or is rate-limited goes on the per-event work queue (retried by
    itself, after Zoom's Retry-After for a limit), so the sweep succeeds unless that queue cannot be reached."""
    items = meetings.sweep_candidates(user_id)
    jobs: list[tuple[Hashable, Callable[[], object]]] = [
        (item.event_id, _sweep_job(meetings, work, item.user_id, item.event_id, deadline)) for item in items
    ]
    with connection_reads_shared():
        errors = [error for error in run_per_key(jobs) if error is not None]
    logger.info("sweep after connect", extra={"events": len(items), "failed": len(errors)})
    if errors:
        raise errors[0]
    return len(items)


def _sweep_job(
    meetings: Meetings, work: EventWork | None, user_id: str, event_id: str, deadline: Deadline
) -> Callable[[], object]:
    if work is None:
        return partial(meetings.reconcile_event, user_id, event_id, deadline)
    from link_zoom.domain.event_work import WorkItem

    return partial(work.work_on, WorkItem(user_id, event_id), deadline)
