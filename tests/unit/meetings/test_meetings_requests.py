"""Request bodies of the meetings routes: strict, with the contract's codes."""

from __future__ import annotations

from typing import Any

import pytest

from link_zoom.edge.meeting_requests import event_id_of, parse_compose_link, parse_event_meeting, parse_idempotency_key
from link_zoom.errors import BadRequest, InvalidTimeRange


def test_an_empty_compose_body_means_thirty_minutes() -> None:
    request = parse_compose_link({})
    assert request.duration_minutes == 30
    assert request.topic


@pytest.mark.parametrize("duration", [1, 30, 1440])
def test_durations_from_1_to_1440_are_taken(duration: int) -> None:
    assert parse_compose_link({"duration_minutes": duration}).duration_minutes == duration


@pytest.mark.parametrize(
    "body",
    [
        {"duration_minutes": 0},
        {"duration_minutes": 1441},
        {"duration_minutes": True},  # JSON true is not a number, even if Python's bool is an int
        {"duration_minutes": 30.0},
        {"duration_minutes": "30"},
        {"duration_minutes": None},
        {"topic": ""},
        {"topic": "x" * 201},
        {"topic": 5},
        {"topic": None},
        {"topic": "ok", "start": "2026-01-01T00:00:00Z"},  # unknown fields are refused
    ],
)
def test_bad_compose_bodies_are_400(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_compose_link(body)


def test_a_200_character_topic_is_fine() -> None:
    assert parse_compose_link({"topic": "é" * 200}).topic == "é" * 200


EVENT = {"topic": "Review", "start": "2026-03-01T10:00:00+01:00", "end": "2026-03-01T11:00:00+01:00"}


def test_an_event_body_becomes_a_schedule_in_utc() -> None:
    schedule = parse_event_meeting({**EVENT, "time_zone": "Europe/Berlin"})
    assert (schedule.start_time, schedule.end_time) == ("2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z")
    assert schedule.time_zone == "Europe/Berlin"
    assert parse_event_meeting(EVENT).time_zone == "UTC"


@pytest.mark.parametrize(
    "change",
    [
        {"end": "2026-03-01T10:00:00+01:00"},  # end == start
        {"end": "2026-03-01T09:59:00+01:00"},  # end before start
        {"start": "2026-03-01T10:00:00"},  # no offset
        {"end": "next tuesday"},
    ],
)
def test_bad_time_ranges_are_invalid_time_range(change: dict[str, str]) -> None:
    with pytest.raises(InvalidTimeRange):
        parse_event_meeting({**EVENT, **change})


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in EVENT.items() if k != "topic"},
        {k: v for k, v in EVENT.items() if k != "start"},
        {**EVENT, "time_zone": "Mars/Olympus"},
        {**EVENT, "time_zone": None},
        {**EVENT, "start": 1767261600},
        {**EVENT, "topic": ""},
        {**EVENT, "zoom": True},
    ],
)
def test_bad_event_bodies_are_400(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_event_meeting(body)


@pytest.mark.parametrize("key", ["a", "x" * 255, "order-42 / retry #1", "~!@#$%^&*()_+"])
def test_idempotency_keys_of_printable_ascii_are_taken(key: str) -> None:
    assert parse_idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "née", "line\n"])
def test_other_idempotency_keys_are_400(key: str) -> None:
    with pytest.raises(BadRequest):
        parse_idempotency_key(key)


def test_no_idempotency_key_is_fine() -> None:
    assert parse_idempotency_key(None) is None


def test_event_ids_must_be_printable() -> None:
    assert event_id_of("evt-123") == "evt-123"
    with pytest.raises(BadRequest):
        event_id_of("a\x00b")
    with pytest.raises(BadRequest):
        event_id_of("x" * 513)
