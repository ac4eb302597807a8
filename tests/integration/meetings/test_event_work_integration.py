"""The calendar heals itself (moto server, emulator, the functions' handlers): stream failures become per-event
work that is retried until the event has its meeting; Zoom's daily limit is waited out, not failed."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.zoom_emulator import EmulatorHandle
from tests.integration.meetings.conftest import Person, context
from tests.integration.meetings.stream_tap import CalendarTable

pytestmark = pytest.mark.integration

FUTURE = {
    "subject": "Heal drill",
    "start": "2099-06-01T10:00:00+02:00",
    "end": "2099-06-01T11:00:00+02:00",
    "time_zone": "Europe/Berlin",
}
CREATE = ("POST", "/v2/users/me/meetings")


def receive(local_aws: LocalResources, queue: str) -> list[dict[str, Any]]:
    """Every message of the queue as Lambda's SQS event records (delays honoured by SQS)."""
    sqs = local_aws.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=local_aws.queues[queue], MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            return [
                {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {}}
                for m in messages
            ]
        messages.extend(got)


def purge(local_aws: LocalResources, *queues: str) -> None:
    for queue in queues:
        for message in receive(local_aws, queue):
            local_aws.client("sqs").delete_message(
                QueueUrl=local_aws.queues[queue], ReceiptHandle=message["receiptHandle"]
            )


def on_failure_message(calendar: CalendarTable, sequence: str) -> dict[str, Any]:
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
        "version": "1.0",
        "timestamp": "2099-01-01T00:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": calendar.shard_id,
            "startSequenceNumber": sequence,
            "endSequenceNumber": sequence,
            "batchSize": 1,
            "streamArn": calendar.stream_arn,
        },
    }


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_WORK_BACKOFF_BASE_S", "0")


def test_zoom_down_beyond_the_streams_retries_heals_from_the_work_queue(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    local_aws: LocalResources,
    fast_backoff: None,
) -> None:
    purge(local_aws, "EventWorkQueue", "CalendarStreamDLQ")
    event_id = f"evt-{uuid.uuid4()}"
    zoom.add_fault(*CREATE, 503, times=1000)
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    records = calendar.new_records()
    failed = functions["calendar_stream"].handler({"Records": records}, context(120))["batchItemFailures"]
    sequence = failed[0]["itemIdentifier"]
    # Lambda's on-failure record after the last retry, consumed at once by the EventWorkFunction.
    local_aws.client("sqs").send_message(
        QueueUrl=local_aws.queues["CalendarStreamDLQ"], MessageBody=json.dumps(on_failure_message(calendar, sequence))
    )
    failures = receive(local_aws, "CalendarStreamDLQ")
    assert functions["event_work"].handler({"Records": failures}, context(120)) == {"batchItemFailures": []}
    work = receive(local_aws, "EventWorkQueue")
    assert [json.loads(m["body"])["event_id"] for m in work] == [event_id]
    for _ in range(3):  # Zoom still down: retried, never lost
        assert functions["event_work"].handler({"Records": work}, context(120)) == {"batchItemFailures": []}
        work = receive(local_aws, "EventWorkQueue")
        assert len(work) == 1
    assert json.loads(work[0]["body"])["attempt"] == 3
    assert "zoom_status" not in calendar.item(alice.user_id, event_id)
    zoom.clear_faults()  # Zoom is back
    functions["event_work"].handler({"Records": work}, context(120))
    item = calendar.item(alice.user_id, event_id)
    assert item["zoom_status"] == "scheduled"
    assert [m["id"] for m in zoom.state.meetings()] == [int(item["zoom_meeting_id"])]
    assert receive(local_aws, "EventWorkQueue") == []


def test_the_daily_limit_makes_rate_limited_then_scheduled_after_retry_after(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    local_aws: LocalResources,
) -> None:
    purge(local_aws, "EventWorkQueue")
    zoom.state.set_daily_limit(1, 4)
    try:
        time.sleep(4 - time.time() % 4 + 0.05)  # a fresh window
        first, second = f"evt-{uuid.uuid4()}", f"evt-{uuid.uuid4()}"
        calendar.put(alice.user_id, first, **FUTURE, zoom=True)
        calendar.put(alice.user_id, second, **FUTURE, zoom=True)
        answer = functions["calendar_stream"].handler({"Records": calendar.new_records()}, context(120))
        assert answer == {"batchItemFailures": []}, "a 429 never fails a stream record"
        statuses = {calendar.item(alice.user_id, e)["zoom_status"] for e in (first, second)}
        assert statuses == {"scheduled", "rate_limited"}
        waiting = next(e for e in (first, second) if calendar.item(alice.user_id, e)["zoom_status"] == "rate_limited")
        assert "automatically" in calendar.item(alice.user_id, waiting)["zoom_error"]
        assert receive(local_aws, "EventWorkQueue") == [], "delayed until Zoom's Retry-After"
        # Due after Zoom's Retry-After plus its spread (up to a quarter of the wait): not all at the reset.
        time.sleep(4.5)
        work = receive(local_aws, "EventWorkQueue")
        for _ in range(20):
            if work:
                break
            time.sleep(0.25)
            work = receive(local_aws, "EventWorkQueue")
        assert [json.loads(m["body"])["event_id"] for m in work] == [waiting]
        functions["event_work"].handler({"Records": work}, context(120))
        assert calendar.item(alice.user_id, waiting)["zoom_status"] == "scheduled"
        assert len(zoom.state.meetings()) == 2
    finally:
        zoom.state.set_daily_limit(100, 86400)


def test_150_waiting_events_get_the_daily_quota_now_and_the_rest_after_the_reset_with_one_429(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    local_aws: LocalResources,
) -> None:
    """150 stream INSERTs of one user, Zoom's quota at 100 a "day" (the emulator's day shortened to 30 s): the first
    100 are scheduled, ONE create is refused (429) and the other 49 wait without a call; after the reset the
    deferred events come back spread out and all 150 are scheduled, none failed, 150 meetings."""
    purge(local_aws, "EventWorkQueue")
    window = 30
    zoom.state.set_daily_limit(100, window)
    try:
        zoom.state.advance_clock(window - zoom.state.now() % window + 0.05)  # a fresh quota day starts now
        day_began = time.monotonic()
        events = [f"evt-{n:03}-{uuid.uuid4()}" for n in range(150)]
        for event_id in events:
            calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
        records = calendar.new_records()
        assert len(records) == 150
        for start in range(0, len(records), 100):  # the stream mapping's batch size
            answer = functions["calendar_stream"].handler({"Records": records[start : start + 100]}, context(120))
            assert answer == {"batchItemFailures": []}, "a 429 never fails a stream record"
        first_pass_s = time.monotonic() - day_began
        statuses = Counter(calendar.item(alice.user_id, e).get("zoom_status") for e in events)
        assert statuses == {"scheduled": 100, "rate_limited": 50}
        assert Counter(call["status"] for call in zoom.calls if (call["method"], call["path"]) == CREATE) == {
            201: 100,
            429: 1,
        }, "known limited after the first 429: the other 49 make no call"
        assert window - first_pass_s > 2, "the first pass must end within the emulator's day"

        reset_at = day_began + window
        waiting = set(events) - {e for e in events if calendar.item(alice.user_id, e)["zoom_status"] == "scheduled"}
        handled_at: list[float] = []
        while waiting and time.monotonic() < reset_at + window:
            work = receive(local_aws, "EventWorkQueue")
            if not work:
                time.sleep(0.5)
                continue
            assert functions["event_work"].handler({"Records": work}, context(120)) == {"batchItemFailures": []}
            for message in work:  # what Lambda's SQS mapping does with messages handled without failure
                local_aws.client("sqs").delete_message(
                    QueueUrl=local_aws.queues["EventWorkQueue"], ReceiptHandle=message["receiptHandle"]
                )
            if any(json.loads(message["body"]).get("event_id") in waiting for message in work):
                handled_at.append(time.monotonic())  # (another test's late message is not ours to time)
            waiting = {e for e in waiting if calendar.item(alice.user_id, e)["zoom_status"] != "scheduled"}
        all_scheduled_s = time.monotonic() - reset_at
        # The baseline of the same run: how long the first pass took per event Zoom was asked about.
        spread_s = (window - first_pass_s) * 0.25  # the deferred events' spread after the reset (event_work.py)
        print(
            f"150 events, quota 100: first pass {first_pass_s:.1f} s ({first_pass_s / 101 * 1000:.0f} ms per Zoom"
            f" call); after the reset all scheduled in {all_scheduled_s:.1f} s = {all_scheduled_s / spread_s:.2f}x"
            f" the {spread_s:.1f} s spread window, over {len(handled_at)} work batches"
        )
        assert not waiting, f"{len(waiting)} events still waiting"
        assert min(handled_at) >= reset_at - 1.0, "nothing came back before Zoom's reset"
        final = Counter(calendar.item(alice.user_id, e)["zoom_status"] for e in events)
        assert final == {"scheduled": 150}
        creates = Counter(call["status"] for call in zoom.calls if (call["method"], call["path"]) == CREATE)
        assert creates == {201: 150, 429: 1}
        assert len(zoom.state.meetings()) == 150
    finally:
        zoom.state.set_daily_limit(100, 86400)
