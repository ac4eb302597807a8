"""The stream and queue functions' glue: powertools' BatchProcessor reports the records that failed."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from link_zoom.config import get_settings
from link_zoom.deadline import Deadline
from link_zoom.domain.calendar_events import process_records, sweep_after_connect
from link_zoom.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from link_zoom.domain.meetings import Meetings


def handle_stream_batch(
    event: Mapping[str, Any], context: Any, meetings_service: Callable[[], Meetings]
) -> dict[str, Any]:
    """The stream Lambda's work: process concurrently, then report failures the powertools way."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    records: list[Mapping[str, Any]] = list(event.get("Records") or [])
    if not records:
        return {"batchItemFailures": []}
    workers = get_settings().stream_workers
    results = process_records(records, Deadline.from_context(context), meetings_service, max_workers=workers)
    failed = {
        str((record.get("dynamodb") or {}).get("SequenceNumber")): error
        for record, error in zip(records, results, strict=True)
        if error is not None
    }

    def record_handler(record: DynamoDBRecord) -> None:
        error = failed.get(str(record.dynamodb.sequence_number if record.dynamodb else None))
        if error is not None:
            raise error

    # Every record's outcome is reported, also when all failed: Lambda retries from the lowest failed one.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=dict(event), record_handler=record_handler, processor=processor, context=context)
    )


def handle_sweep_batch(
    event: Mapping[str, Any], context: Any, meetings_service: Callable[[], Meetings]
) -> dict[str, Any]:
    """The sweep Lambda's work: one `{"user_id"}` message per connect, failures reported per message."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    if not event.get("Records"):
        return {"batchItemFailures": []}
    deadline = Deadline.from_context(context)

    def record_handler(record: SQSRecord) -> None:
        user_id = sweep_user_id(record.body)
        if user_id is None:
            # Retrying cannot repair it: log and drop rather than cycle it into the DLQ.
            logger.error("unusable sweep message", extra={"message_id": record.message_id})
            return
        sweep_after_connect(user_id, deadline, meetings_service())

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=dict(event), record_handler=record_handler, processor=processor, context=context)
    )


def sweep_user_id(body: str | None) -> str | None:
    """The user of a sweep message `{"user_id": ...}`, or None when the message names none."""
    try:
        user_id = json.loads(body or "").get("user_id")
    except (ValueError, AttributeError):
        return None
    return user_id if isinstance(user_id, str) and user_id else None
