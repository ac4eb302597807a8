"""The stream and queue functions' glue: powertools' BatchProcessor reports the records that failed."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from link_zoom.config import get_settings
from link_zoom.deadline import Deadline
from link_zoom.domain.batch_reads import connection_reads_shared
from link_zoom.domain.calendar_events import REPLAYED_KEY, process_records, run_per_key, sweep_after_connect
from link_zoom.domain.event_work import WorkItem, body_of, job_key
from link_zoom.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from link_zoom.domain.event_work import EventWork
    from link_zoom.domain.keeper import KeepFreshPort
    from link_zoom.domain.meetings import Meetings


def handle_stream_batch(
    event: Mapping[str, Any],
    context: Any,
    meetings_service: Callable[[], Meetings],
    work_service: Callable[[], EventWork] | None = None,
) -> dict[str, Any]:
    """The stream Lambda's work: process concurrently, then report failures the powertools way. An event Zoom
    rate-limits goes to the per-event work queue (`work_service`) instead of failing its record."""
    records: list[Mapping[str, Any]] = list(event.get("Records") or [])
    if not records:
        return {"batchItemFailures": []}

    def later(user_id: str, event_id: str, retry_after: int) -> None:
        assert work_service is not None
        work_service().wait_out(WorkItem(user_id, event_id), retry_after)

    workers = get_settings().stream_workers
    results = process_records(
        records,
        Deadline.from_context(context),
        meetings_service,
        max_workers=workers,
        later=later if work_service else None,
        replayed=event.get(REPLAYED_KEY) is True,
    )
    failed = {
        str((record.get("dynamodb") or {}).get("SequenceNumber")): error
        for record, error in zip(records, results, strict=True)
        if error is not None
    }

    def record_handler(record: DynamoDBRecord) -> None:
        _raise_failure(failed, str(record.dynamodb.sequence_number if record.dynamodb else None))

    return _report_per_record(event, context, "DynamoDBStreams", record_handler)


def handle_sweep_batch(
    event: Mapping[str, Any],
    context: Any,
    meetings_service: Callable[[], Meetings],
    work_service: Callable[[], EventWork] | None = None,
) -> dict[str, Any]:
    """The sweep Lambda's work: one `{"user_id"}` message per connect, failures reported per message."""
    if not event.get("Records"):
        return {"batchItemFailures": []}
    deadline = Deadline.from_context(context)

    def record_handler(record: SQSRecord) -> None:
        user_id = sweep_user_id(record.body)
        if user_id is None:
            # Retrying cannot repair it: log and drop rather than cycle it into the DLQ.
            logger.error("unusable sweep message", extra={"message_id": record.message_id})
            return
        sweep_after_connect(user_id, deadline, meetings_service(), work_service() if work_service else None)

    return _report_per_record(event, context, "SQS", record_handler)


def _report_per_record(
    event: Mapping[str, Any],
    context: Any,
    event_type: Literal["DynamoDBStreams", "SQS"],
    record_handler: Callable[[Any], None],
) -> dict[str, Any]:
    """powertools' partial batch response. Every record's outcome is reported, also when all failed: a stream
    retries from the lowest failed record, SQS gives the failed messages again."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType[event_type], raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=dict(event), record_handler=record_handler, processor=processor, context=context)
    )


def _raise_failure(failed: Mapping[str, BaseException], key: str) -> None:
    """Hands a record's error from the concurrent pass over to the BatchProcessor, which reports it."""
    error = failed.get(key)
    if error is not None:
        raise error


def sweep_user_id(body: str | None) -> str | None:
    """The user of a sweep message `{"user_id": ...}`, or None when the message names none."""
    try:
        user_id = json.loads(body or "").get("user_id")
    except (ValueError, AttributeError):
        return None
    return user_id if isinstance(user_id, str) and user_id else None


def handle_event_work_batch(
    event: Mapping[str, Any], context: Any, work_service: Callable[[], EventWork]
) -> dict[str, Any]:
    """The EventWorkFunction: messages of both its queues (stream on-failure records, per-event work), different
    events at once and one event's in order, failures reported per message."""
    records: list[Mapping[str, Any]] = list(event.get("Records") or [])
    if not records:
        return {"batchItemFailures": []}
    work = work_service()
    deadline = Deadline.from_context(context)
    jobs: list[tuple[Hashable, Callable[[], object]]] = []
    for record in records:
        body = body_of(record.get("body"))
        jobs.append((job_key(body, str(record.get("messageId"))), partial(work.handle_message, body, deadline)))
    with connection_reads_shared():
        results = run_per_key(jobs)
    failed = {
        str(record.get("messageId")): error for record, error in zip(records, results, strict=True) if error is not None
    }
    for message_id, error in failed.items():
        logger.warning("event work message failed", extra={"message_id": message_id, "error": type(error).__name__})

    def record_handler(record: SQSRecord) -> None:
        _raise_failure(failed, record.message_id)

    return _report_per_record(event, context, "SQS", record_handler)


def handle_refresh_batch(
    event: Mapping[str, Any], context: Any, connection: Callable[[], KeepFreshPort]
) -> dict[str, Any]:
    """The TokenRefreshFunction: one connection per message, one after another (the event source's maximum
    concurrency then bounds the refreshes in flight at Zoom), failures reported per message."""
    from link_zoom.domain.keeper import refresh_one

    if not event.get("Records"):
        return {"batchItemFailures": []}
    deadline = Deadline.from_context(context)

    def record_handler(record: SQSRecord) -> None:
        refresh_one(connection(), record.body, deadline)

    return _report_per_record(event, context, "SQS", record_handler)
