"""The calendar stream's dead-letter queue, the stream records its messages point at, and the stream function.

A message is Lambda's on-failure record for a DynamoDB stream batch: it names the shard and the range of
sequence numbers (DDBStreamBatchInfo), not the records, which stay in the stream for 24 hours.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from link_zoom.adapters.aws import client
from link_zoom.config import get_settings
from link_zoom.domain.calendar_events import REPLAYED_KEY
from link_zoom.domain.stream_replay import DeadLetter, RecordsExpired, StreamBatch

RECEIVE_BATCH = 10  # SQS's maximum per ReceiveMessage
RECEIVE_WAIT_S = 2  # long polling, well inside the AWS clients' 5 s read timeout
RECORDS_PER_CALL = 1000  # GetRecords' maximum
MAX_EMPTY_PAGES = 3  # an open shard can answer empty pages before the records it still has
# The stream function may run for its whole timeout (120 s); the default client's read timeout is seconds.
INVOKE_READ_TIMEOUT_S = 150.0


class DeadLetterQueue:
    def __init__(self, queue_url: str | None = None) -> None:
        self._url = queue_url or get_settings().calendar_stream_dlq_url

    def receive(self, hide_for_s: int) -> list[DeadLetter]:
        answer = client("sqs").receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            VisibilityTimeout=max(30, hide_for_s),
            # Long polling: a short poll asks a sample of SQS's servers and may answer empty while messages remain.
            WaitTimeSeconds=RECEIVE_WAIT_S,
        )
        letters = []
        for message in answer.get("Messages", []):
            try:
                body = json.loads(message.get("Body") or "")
            except ValueError:
                body = None
            batch = StreamBatch.from_message(body) if isinstance(body, Mapping) else None
            letters.append(DeadLetter(message["MessageId"], message["ReceiptHandle"], batch))
        return letters

    def delete(self, letter: DeadLetter) -> None:
        client("sqs").delete_message(QueueUrl=self._url, ReceiptHandle=letter.receipt_handle)

    def release(self, letter: DeadLetter) -> None:
        """Visible again at once, for the next replay."""
        client("sqs").change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0
        )


class StreamReader:
    def records(self, batch: StreamBatch) -> list[dict[str, Any]]:
        """The batch's records, in Lambda's event format, read from the stream again."""
        streams = client("dynamodbstreams")
        try:
            iterator: str | None = streams.get_shard_iterator(
                StreamArn=batch.stream_arn,
                ShardId=batch.shard_id,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=batch.start_sequence,
            )["ShardIterator"]
        except (streams.exceptions.TrimmedDataAccessException, streams.exceptions.ResourceNotFoundException) as exc:
            raise RecordsExpired() from exc
        end = int(batch.end_sequence)
        records: list[dict[str, Any]] = []
        empty_pages = 0
        while iterator and empty_pages < MAX_EMPTY_PAGES:
            page = streams.get_records(ShardIterator=iterator, Limit=RECORDS_PER_CALL)
            empty_pages = 0 if page.get("Records") else empty_pages + 1
            for record in page.get("Records", []):
                if int(record["dynamodb"]["SequenceNumber"]) > end:
                    return records
                records.append(as_lambda_record(record, batch.stream_arn))
                if int(record["dynamodb"]["SequenceNumber"]) == end:
                    return records
            iterator = page.get("NextShardIterator")
        return records


class FailedRecordKeys:
    """The events a stream on-failure message names, read back from the stream (EventWork's FailedRecordsPort)."""

    def __init__(self, reader: StreamReader | None = None) -> None:
        self._reader = reader or StreamReader()

    def keys_of(self, failure: Mapping[str, Any]) -> list[tuple[str, str]]:
        batch = StreamBatch.from_message(failure)
        if batch is None:
            return []
        try:
            records = self._reader.records(batch)
        except RecordsExpired:
            return []
        keys = []
        for record in records:
            key = record["dynamodb"].get("Keys") or {}
            user_id, event_id = (key.get("user_id") or {}).get("S"), (key.get("event_id") or {}).get("S")
            if isinstance(user_id, str) and isinstance(event_id, str):
                keys.append((user_id, event_id))
        return keys


def as_lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it (epoch seconds, eventSourceARN)."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID"),
        "eventName": record.get("eventName"),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": record.get("eventSource", "aws:dynamodb"),
        "awsRegion": record.get("awsRegion", get_settings().region),
        "dynamodb": stream,
        "eventSourceARN": stream_arn,
    }


@cache
def _lambda_client(region: str, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=INVOKE_READ_TIMEOUT_S, retries={"max_attempts": 1})
    return boto3.client("lambda", region_name=region, endpoint_url=endpoint_url, config=config)


class StreamFunction:
    """The CalendarStreamFunction, invoked with records as its event source mapping would deliver them."""

    def __init__(self, function_name: str | None = None) -> None:
        self._name = function_name or get_settings().calendar_stream_function

    def process(self, records: list[dict[str, Any]]) -> set[str]:
        """The sequence numbers that failed again (all of them when the function itself failed)."""
        settings = get_settings()
        # The local stack serves Lambda's Invoke API apart from the other services (AWS_ENDPOINT_URL_LAMBDA).
        endpoint = os.environ.get("AWS_ENDPOINT_URL_LAMBDA") or settings.aws_endpoint_url
        answer = _lambda_client(settings.region, endpoint).invoke(
            FunctionName=self._name,
            Payload=json.dumps({"Records": records, REPLAYED_KEY: True}, default=str).encode(),
        )
        everything = {str(record["dynamodb"]["SequenceNumber"]) for record in records}
        if answer.get("FunctionError"):
            return everything
        try:
            payload = json.loads(answer["Payload"].read() or b"{}")
        except ValueError:
            return everything
        failures = payload.get("batchItemFailures") if isinstance(payload, dict) else None
        if not isinstance(failures, list):
            return everything
        return {str(failure.get("itemIdentifier")) for failure in failures if isinstance(failure, dict)}
