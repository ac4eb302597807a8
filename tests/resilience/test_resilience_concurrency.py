"""Concurrency: a thousand stream records with duplicates and re-deliveries make exactly the right meetings;
requests that find an expired access token at the same moment make one refresh.

The stream records are the calendar table's own (read from the moto server's stream) and reach the stream
handler in batches built as the poller builds them (Lambda's record format, BatchSize 100, shard order),
while a second deliverer re-sends earlier records concurrently (a retry after a partial failure, a DLQ
replay), with duplicates inside batches.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.zoom_emulator import EmulatorHandle
from link_zoom.domain.calendar_events import REPLAYED_KEY
from tests.integration.connection.zoom_flow import Person, connect, new_person
from tests.integration.meetings.stream_tap import CalendarTable
from tests.resilience.harness import ApiUser, invoke_api
from tests.support.lambda_context import FakeLambdaContext

USERS = 8
EVENTS_PER_USER = 25  # 200 events; each user stays below Zoom's 100 creates and updates a day
BATCH_SIZE = 100  # the template's BatchSize
SEED = 20261125


def _event(day: int, hour: int, minutes: int, subject: str) -> dict[str, str]:
    start = f"2099-08-{day:02d}T{hour:02d}:00:00+02:00"
    end_hour, end_minute = divmod(hour * 60 + minutes, 60)
    return {
        "subject": subject,
        "start": start,
        "end": f"2099-08-{day:02d}T{end_hour:02d}:{end_minute:02d}:00+02:00",
        "time_zone": "Europe/Berlin",
    }


def _batches(records: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """Batches of BATCH_SIZE in shard order, one in ten records delivered twice within its batch."""
    batches = []
    for start in range(0, len(records), BATCH_SIZE):
        batch = list(records[start : start + BATCH_SIZE])
        for record in list(batch):
            if rng.random() < 0.1:
                batch.insert(rng.randrange(batch.index(record), len(batch) + 1), record)
        batches.append(batch)
    return batches


class Deliveries:
    """The stream handler, invoked as Lambda invokes it; counts what it was given and what failed."""

    def __init__(self, functions: dict[str, Any]) -> None:
        self._handler = functions["calendar_stream"].handler
        self.records = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, batch: list[dict[str, Any]], replayed: bool = False) -> None:
        """`replayed`: records handed over again out of the stream's order, as only the DLQ replay does (it
        marks them: the stream function then reads every item instead of trusting the records' images)."""
        event: dict[str, Any] = {"Records": batch}
        if replayed:
            event[REPLAYED_KEY] = True
        answer = self._handler(event, FakeLambdaContext(function_name="calendar-stream", remaining_ms=120_000))
        with self._lock:
            self.records += len(batch)
            self.failures += [f["itemIdentifier"] for f in answer["batchItemFailures"]]


def test_a_thousand_records_with_duplicates_and_redeliveries_make_exactly_the_right_meetings(
    zoom: EmulatorHandle, functions: dict[str, Any], local_aws: LocalResources
) -> None:
    rng = random.Random(SEED)
    calendar = CalendarTable(local_aws)
    people: list[Person] = [new_person("load") for _ in range(USERS)]
    for person in people:
        connect(functions["zoom_oauth"], person)
    ours = {p.user_id for p in people}
    zoom.set_latency(5)  # Zoom is not instantaneous: creates and moves overlap
    zoom.clear_calls()
    deliver = Deliveries(functions)
    seen: list[dict[str, Any]] = []  # every record of ours, for the re-deliveries

    def new_records() -> list[dict[str, Any]]:
        found = [r for r in calendar.new_records() if r["dynamodb"]["Keys"]["user_id"]["S"] in ours]
        seen.extend(found)
        return found

    def run_phase() -> None:
        """This phase's records in order, and concurrently a replay of earlier ones, shuffled."""
        fresh = _batches(new_records(), rng)
        replay = _batches(rng.sample(seen, k=min(len(seen), 120)), rng) if seen else []

        def deliver_all(batches: list[list[dict[str, Any]]], replayed: bool) -> None:
            for batch in batches:
                deliver(batch, replayed)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for running in [pool.submit(deliver_all, fresh, False), pool.submit(deliver_all, replay, True)]:
                running.result()

    events = {
        (p.user_id, f"load-{n:02d}-{uuid.uuid4().hex[:6]}"): _event(1 + n % 28, 8 + n % 10, 30, f"Plan {n}")
        for p in people
        for n in range(EVENTS_PER_USER)
    }
    wanted = {key: True for key in events}
    keys = list(events)
    late_starters = set(rng.sample(keys, 20))

    # Phase 1: the Link server creates 200 events; 20 without Zoom for now.
    for key, event in events.items():
        wanted[key] = key not in late_starters
        calendar.put(*key, **event, zoom=wanted[key])
    run_phase()

    # Phase 2: every event moves by an hour; the 20 get Zoom switched on.
    _move_all_and_switch_on(calendar, events, wanted, late_starters)
    run_phase()

    # Phase 3: renames, Zoom switched off, deletions, and edits a meeting does not follow.
    rest = [k for k in keys if k not in late_starters]
    rng.shuffle(rest)
    _rename_switch_off_remove_and_touch(calendar, events, wanted, rest)
    run_phase()

    # Much later, a replay of a sample of everything (the DLQ replay).
    late = _batches(rng.sample(seen, k=200), rng)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda batch: deliver(batch, replayed=True), late))
    new_records()  # the last write-backs' records, for the count only

    assert deliver.failures == []
    assert deliver.records >= 1000, deliver.records
    live = {str(m["id"]): m for m in zoom.state.meetings() if m["host_email"] in {p.email.lower() for p in people}}
    by_event = _meetings_by_event(calendar, events, wanted, live)
    assert len(by_event) == sum(wanted.values()) == 170
    assert sorted(live) == sorted(by_event.values()), "no meeting without its event, none twice"
    calls = Counter((c["method"], c["path"].split("/")[2], c["status"]) for c in zoom.calls)
    # One create per event that wanted Zoom at its first delivery: 180 at once, the 20 late starters later.
    assert calls[("POST", "users", 201)] == 200 and sum(n for k, n in calls.items() if k[0] == "POST") == 200, calls
    # Switched off or removed: each deleted once. A re-delivery racing the first delivery of the same REMOVE
    # may ask again, and Zoom's 404 (3001) for it counts as done.
    assert calls[("DELETE", "meetings", 204)] == 30, calls
    assert {k for k in calls if k[0] == "DELETE"} <= {("DELETE", "meetings", 204), ("DELETE", "meetings", 404)}
    # 180 moves in phase 2 and 30 renames; a racing re-delivery of the same change may move a meeting to the
    # same place twice (harmless, but it spends one of the user's 100 daily Zoom updates).
    assert calls[("PATCH", "meetings", 204)] >= 210, calls
    print(f"stream load: {deliver.records} records delivered, Zoom calls {dict(calls)}")


Key = tuple[str, str]


def _move_all_and_switch_on(
    calendar: CalendarTable, events: dict[Key, dict[str, Any]], wanted: dict[Key, bool], late_starters: set[Key]
) -> None:
    for key, event in events.items():
        event["end"] = _shift_end(event["end"], 60)
        changes: dict[str, Any] = {"end": event["end"]}
        if key in late_starters:
            changes["zoom"] = True
        calendar.update(*key, **changes)
        wanted[key] = True


def _rename_switch_off_remove_and_touch(
    calendar: CalendarTable, events: dict[Key, dict[str, Any]], wanted: dict[Key, bool], rest: list[Key]
) -> None:
    renamed, switched_off, removed, unrelated = rest[:30], rest[30:50], rest[50:60], rest[60:100]
    for key in renamed:
        events[key]["subject"] += " (renamed)"
        calendar.update(*key, subject=events[key]["subject"])
    for key in switched_off:
        calendar.update(*key, zoom=False)
        wanted[key] = False
    for key in removed:
        calendar.delete(*key)
        wanted[key] = False
    for key in unrelated:
        calendar.update(*key, location="Room 4")


def _meetings_by_event(
    calendar: CalendarTable, events: dict[Key, dict[str, Any]], wanted: dict[Key, bool], live: dict[str, Any]
) -> dict[Key, str]:
    """Each event that wants Zoom has its own scheduled meeting at the event's time; the others have none."""
    by_event: dict[Key, str] = {}
    for key, event in events.items():
        item = calendar.item(*key)
        if not wanted[key]:
            assert "zoom_meeting_id" not in item, (key, item)
            continue
        assert item["zoom_status"] == "scheduled", (key, item)
        meeting = live[item["zoom_meeting_id"]]
        assert (meeting["topic"], meeting["start_time"], meeting["duration"], meeting["timezone"]) == (
            event["subject"],
            _utc(event["start"]),
            90,
            "Europe/Berlin",
        ), (key, meeting)
        by_event[key] = item["zoom_meeting_id"]
    return by_event


def _shift_end(end: str, minutes: int) -> str:
    from datetime import datetime, timedelta

    moved = datetime.fromisoformat(end) + timedelta(minutes=minutes)
    return moved.isoformat()


def _utc(moment: str) -> str:
    from datetime import UTC, datetime

    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- one refresh for many


@pytest.mark.parametrize("expired_at", ["zoom", "our record"])
def test_concurrent_requests_after_expiry_make_one_refresh(
    expired_at: str, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, local_aws: LocalResources
) -> None:
    if expired_at == "zoom":
        zoom.state.expire_access_tokens(person.email)  # Zoom answers 401 (code 124)
    else:
        local_aws.client("dynamodb").update_item(
            TableName=local_aws.tables["ZoomConnectionsTable"],
            Key={"user_id": {"S": person.user_id}},
            UpdateExpression="SET access_expires_at = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 10)}},
        )
    zoom.set_latency(100)  # a refresh that takes a moment, as Zoom's does
    zoom.clear_calls()
    barrier = threading.Barrier(8)

    def compose(_: int) -> int:
        barrier.wait()
        return invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {}).status

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(compose, range(8)))
    assert statuses == [201] * 8
    refreshes = [c for c in zoom.calls if c["path"] == "/oauth/token"]
    assert [c["status"] for c in refreshes] == [200], "exactly one refresh, and it worked"
    assert invoke_api(functions, "GET", "/v1/features", person.authorizer).json()["zoom"]["connected"]


def test_concurrent_requests_over_http_after_expiry_make_one_refresh(
    bob_connected: ApiUser, zoom_on: EmulatorHandle
) -> None:
    zoom_on.state.expire_access_tokens(bob_connected.upn)
    zoom_on.set_latency(100)
    zoom_on.clear_calls()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: bob_connected.call("POST", "/v1/compose-link", {}), range(8)))
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert [c["status"] for c in zoom_on.calls if c["path"] == "/oauth/token"] == [200]
    assert bob_connected.connected()
