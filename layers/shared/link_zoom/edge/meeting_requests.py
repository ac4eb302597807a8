"""The meetings routes' requests: bodies, the Idempotency-Key header and the path's event id, as domain values.

Each parser raises BadRequest (or InvalidTimeRange) with a message that says what is wrong (contract section 1).
"""

from __future__ import annotations

from typing import Any

from link_zoom.domain.meetings import DEFAULT_DURATION, ComposeLinkRequest
from link_zoom.domain.schedule import DEFAULT_TIME_ZONE, DEFAULT_TOPIC, TOPIC_MAX, Schedule, is_time_zone, parse_instant
from link_zoom.errors import BadRequest, InvalidTimeRange

IDEMPOTENCY_KEY_MAX = 255
DURATION_MAX = 1440
EVENT_ID_MAX = 512


def parse_compose_link(body: dict[str, Any]) -> ComposeLinkRequest:
    """The body of POST /v1/compose-link (every field optional)."""
    _only_fields(body, {"topic", "duration_minutes"})
    topic = _topic(body["topic"]) if "topic" in body else DEFAULT_TOPIC
    duration = body.get("duration_minutes", DEFAULT_DURATION)
    # bool is an int in Python, not in JSON: `true` is not a duration.
    if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= DURATION_MAX:
        raise BadRequest(f"duration_minutes must be a whole number from 1 to {DURATION_MAX}.")
    return ComposeLinkRequest(topic, duration)


def parse_event_meeting(body: dict[str, Any]) -> Schedule:
    """The body of PUT /v1/events/{event_id}/zoom as a Schedule (for a series: its first occurrence's)."""
    _only_fields(body, {"topic", "start", "end", "time_zone", "recurrence"})
    for name in ("topic", "start", "end"):
        if name not in body:
            raise BadRequest(f"{name} is required.")
    topic = _topic(body["topic"])
    if not isinstance(body["start"], str) or not isinstance(body["end"], str):
        raise BadRequest("start and end must be strings.")
    time_zone = body.get("time_zone", DEFAULT_TIME_ZONE)
    if not isinstance(time_zone, str) or not is_time_zone(time_zone):
        raise BadRequest("time_zone must be an IANA time zone name such as Europe/Berlin.")
    start, end = parse_instant(body["start"]), parse_instant(body["end"])
    if start is None or end is None or end <= start:
        raise InvalidTimeRange()
    return Schedule(topic, start, end, time_zone)


def parse_event_recurrence(body: dict[str, Any], schedule: Schedule) -> str | None:
    """The PUT body's `recurrence` (contract 3a), checked against its first occurrence; 400 when it does not
    parse or does not start at `start`."""
    if "recurrence" not in body:
        return None
    from link_zoom.domain.recurrence import InvalidRecurrence, parse_series  # dateutil only on this path

    try:
        parse_series(body["recurrence"], schedule)
    except InvalidRecurrence as exc:
        raise BadRequest(str(exc)) from exc
    return str(body["recurrence"])


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX or not all(" " <= ch <= "~" for ch in value):
        raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    return value


def event_id_of(value: str) -> str:
    """The path's event id, as the calendar table's sort key holds it."""
    if not 1 <= len(value) <= EVENT_ID_MAX or not value.isprintable():
        raise BadRequest(f"The event id must be 1 to {EVENT_ID_MAX} printable characters.")
    return value


def _only_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Unknown field: {unknown[0][:40]}.")


def _topic(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= TOPIC_MAX:
        raise BadRequest(f"topic must be a string of 1 to {TOPIC_MAX} characters.")
    return value
