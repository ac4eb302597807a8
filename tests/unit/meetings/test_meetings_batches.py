"""The Lambda glue: stream batches (partial failures), sweep messages, and replaying the stream's DLQ."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from link_zoom import composition
from link_zoom.adapters import stream_dead_letters
from link_zoom.adapters.stream_dead_letters import (
    DeadLetter,
    DeadLetterQueue,
    StreamBatch,
    StreamFunction,
    StreamReader,
)
from link_zoom.deadline import Deadline
from link_zoom.domain import calendar_events, stream_replay
from link_zoom.edge import batches
from link_zoom.errors import ZoomUnavailable
from tests.support.lambda_context import FakeLambdaContext
from tests.unit.meetings.fakes import OTHER_USER, USER, World, build_world, image, stream_record

CONTEXT = FakeLambdaContext(function_name="unit", aws_request_id="req-1", remaining_ms=60_000)

EVENT = {"subject": "Planning", "start": "2099-03-01T10:00:00+01:00", "end": "2099-03-01T11:00:00+01:00", "zoom": True}


@pytest.fixture
def world() -> Iterator[World]:
    made = build_world()
    with composition.override(meetings=made.meetings):
        yield made


def insert(world: World, event_id: str, sequence: int, user_id: str = USER, zoom: bool = True) -> dict[str, Any]:
    new = image(user_id, event_id, **{**EVENT, "zoom": zoom})
    world.calendar.put(new)
    return stream_record("INSERT", None, new, sequence)


def test_a_stream_batch_reports_the_failed_record_and_the_later_records_of_its_event(world: World) -> None:
    records = [insert(world, "a", 1), insert(world, "b", 2, zoom=False)]  # only "a" talks to Zoom
    later_a = dict(world.calendar.items[(USER, "a")])
    records.append(stream_record("MODIFY", records[0]["dynamodb"]["NewImage"], {**later_a, "subject": {"S": "x"}}, 3))
    world.zoom.fail_next("create", ZoomUnavailable())
    answer = batches.handle_stream_batch({"Records": records}, CONTEXT, composition.meetings)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "3"}]}
    assert world.zoom.count("create") == 1


@pytest.mark.parametrize(("marked", "reads"), [(False, 0), (True, 1)])
def test_a_batch_marked_as_replayed_reads_the_items(world: World, marked: bool, reads: int) -> None:
    event: dict[str, Any] = {"Records": [insert(world, "a", 1)]}
    if marked:
        event[calendar_events.REPLAYED_KEY] = True
    world.calendar.reads = 0
    assert batches.handle_stream_batch(event, CONTEXT, composition.meetings) == {"batchItemFailures": []}
    assert world.calendar.reads == reads


def test_a_clean_batch_reports_no_failures(world: World) -> None:
    answer = batches.handle_stream_batch({"Records": [insert(world, "a", 1)]}, CONTEXT, composition.meetings)
    assert answer == {"batchItemFailures": []}


def test_the_stream_handler_module_is_thin_and_works(world: World) -> None:
    from tests.support.functions import load_function

    handler = load_function("calendar_stream").handler
    assert handler({"Records": [insert(world, "a", 1)]}, CONTEXT) == {"batchItemFailures": []}
    assert len(world.zoom) == 1


def sqs_record(body: str, message_id: str = "m1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "r",
        "body": body,
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sweep",
        "awsRegion": "us-east-1",
    }


def test_the_sweep_handler_gives_waiting_events_their_meetings(world: World) -> None:
    from tests.support.functions import load_function

    calendar_events.process_records([insert(world, "a", 1, OTHER_USER)], Deadline(10), lambda: world.meetings)
    assert world.calendar.zoom_of(OTHER_USER, "a").status == "authorization_required"
    world.connection.connected.add(OTHER_USER)
    handler = load_function("connect_sweep").handler
    event = {"Records": [sqs_record(json.dumps({"user_id": OTHER_USER})), sqs_record("garbage", "m2")]}
    assert handler(event, CONTEXT) == {"batchItemFailures": []}
    assert world.calendar.zoom_of(OTHER_USER, "a").status == "scheduled"


def test_a_failing_sweep_is_reported_for_retry(world: World) -> None:
    calendar_events.process_records([insert(world, "a", 1, OTHER_USER)], Deadline(10), lambda: world.meetings)
    world.connection.connected.add(OTHER_USER)
    world.zoom.fail_next("create", ZoomUnavailable())
    event = {
        "Records": [sqs_record(json.dumps({"user_id": OTHER_USER})), sqs_record(json.dumps({"user_id": USER}), "m2")]
    }
    answer = batches.handle_sweep_batch(event, CONTEXT, composition.meetings)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


# ---------------------------------------------------------------- the DLQ replay, on fakes


class FakeQueue:
    def __init__(self, letters: list[DeadLetter]) -> None:
        self.waiting = list(letters)
        self.deleted: list[str] = []
        self.released: list[str] = []

    def receive(self, hide_for_s: int) -> list[DeadLetter]:
        taken, self.waiting = self.waiting[:10], self.waiting[10:]
        return taken

    def delete(self, letter: DeadLetter) -> None:
        self.deleted.append(letter.message_id)

    def release(self, letter: DeadLetter) -> None:
        self.released.append(letter.message_id)


class FakeStream:
    def __init__(self, records: dict[str, list[dict[str, Any]]]) -> None:
        self.by_start = records

    def records(self, batch: StreamBatch) -> list[dict[str, Any]]:
        if batch.start_sequence == "expired":
            raise stream_dead_letters.RecordsExpired()
        return self.by_start.get(batch.start_sequence, [])


class FakeFunction:
    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.seen: list[list[str]] = []

    def process(self, records: list[dict[str, Any]]) -> set[str]:
        numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        self.seen.append(numbers)
        return set(numbers) & self.failing


def letter(message_id: str, start: str | None, end: str | None = None) -> DeadLetter:
    batch = StreamBatch("arn:stream", "shard-1", start, end or start) if start else None
    return DeadLetter(message_id, f"receipt-{message_id}", batch)


def test_replay_deletes_only_messages_whose_records_all_succeed() -> None:
    queue = FakeQueue([letter("ok", "1", "2"), letter("bad", "3"), letter("junk", None), letter("old", "expired")])
    stream = FakeStream(
        {
            "1": [stream_record("INSERT", None, image(), 1), stream_record("INSERT", None, image(), 2)],
            "3": [stream_record("INSERT", None, image(), 3)],
        }
    )
    function = FakeFunction(failing={"3"})
    summary = stream_replay.replay_dead_letters(Deadline(120), queue, stream, function)
    assert summary.as_dict() == {
        "messages": 4,
        "replayed": 1,
        "kept": 1,
        "unreadable": 1,
        "expired": 1,
        "records": 3,
        "failed_records": 1,
    }
    assert queue.deleted == ["ok"] and sorted(queue.released) == ["bad", "junk", "old"]
    assert function.seen == [["1", "2"], ["3"]]


def test_replay_stops_starting_messages_near_its_deadline() -> None:
    queue = FakeQueue([letter("a", "1")])
    summary = stream_replay.replay_dead_letters(Deadline(5), queue, FakeStream({}), FakeFunction(set()))
    assert summary.messages == 0 and queue.waiting


# ---------------------------------------------------------------- the DLQ adapters, on moto


def test_on_failure_messages_are_parsed() -> None:
    body = {
        "DDBStreamBatchInfo": {
            "shardId": "s",
            "startSequenceNumber": "10",
            "endSequenceNumber": "12",
            "streamArn": "arn:x",
            "batchSize": 3,
        }
    }
    assert StreamBatch.from_message(body) == StreamBatch("arn:x", "s", "10", "12")
    assert StreamBatch.from_message({"DDBStreamBatchInfo": {"shardId": "s"}}) is None
    assert StreamBatch.from_message({}) is None


def test_the_stream_reader_reads_a_batch_back_in_lambdas_format(aws: dict[str, Any]) -> None:
    ddb = boto3.client("dynamodb")
    table = aws["CALENDAR_TABLE"]
    for n in range(5):
        ddb.put_item(TableName=table, Item=image(USER, f"e{n}", **EVENT))
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    all_records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    numbers = [r["dynamodb"]["SequenceNumber"] for r in all_records]
    records = StreamReader().records(StreamBatch(arn, shard, numbers[1], numbers[3]))
    assert [r["dynamodb"]["SequenceNumber"] for r in records] == numbers[1:4]
    first = records[0]
    assert first["eventName"] == "INSERT" and first["eventSourceARN"] == arn
    assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], float)
    json.dumps(records)  # what Lambda's Invoke API will carry
    assert calendar_events.decide(first).key == (USER, "e1")


def test_the_queue_adapter_receives_hides_deletes_and_releases(aws: dict[str, Any]) -> None:
    sqs = boto3.client("sqs")
    url = aws["CALENDAR_STREAM_DLQ_URL"]
    info = {
        "DDBStreamBatchInfo": {
            "shardId": "s",
            "startSequenceNumber": "1",
            "endSequenceNumber": "1",
            "streamArn": "arn:x",
        }
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(info))
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    queue = DeadLetterQueue()
    letters = queue.receive(60)
    assert sorted(letter.batch is not None for letter in letters) == [False, True]
    assert queue.receive(60) == []  # hidden while the replay runs
    good = next(letter for letter in letters if letter.batch)
    queue.delete(good)
    queue.release(next(letter for letter in letters if not letter.batch))
    again = queue.receive(60)
    assert [letter.batch for letter in again] == [None]


class FakeLambda:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.payloads.append(json.loads(Payload))
        return self.answer


@pytest.mark.parametrize(
    ("answer", "failed"),
    [
        ({"Payload": io.BytesIO(b'{"batchItemFailures": []}')}, set()),
        ({"Payload": io.BytesIO(b'{"batchItemFailures": [{"itemIdentifier": "2"}]}')}, {"2"}),
        ({"FunctionError": "Unhandled", "Payload": io.BytesIO(b"{}")}, {"1", "2"}),
        ({"Payload": io.BytesIO(b"nonsense")}, {"1", "2"}),
    ],
)
def test_the_stream_function_is_invoked_with_the_records(
    monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any], failed: set[str]
) -> None:
    fake = FakeLambda(answer)
    monkeypatch.setattr(stream_dead_letters, "_lambda_client", lambda region, endpoint: fake)
    records = [stream_record("INSERT", None, image(), 1), stream_record("INSERT", None, image(), 2)]
    assert StreamFunction("calendar-stream").process(records) == failed
    # Marked as replayed: the stream function then reads every item instead of trusting the records' images.
    assert fake.payloads == [{"Records": records, calendar_events.REPLAYED_KEY: True}]
