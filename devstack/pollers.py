"""Event sources of the template's functions, as Lambda's event source mappings run them.

- `Type: DynamoDB`: reads the table's stream through the dynamodbstreams API (DescribeStream,
  GetShardIterator, GetRecords) four times a second, batches (BatchSize, MaximumBatchingWindowInSeconds),
  delivers each shard's records in order, and handles failures as Lambda does: ReportBatchItemFailures
  (retry from the lowest failed sequence number), BisectBatchOnFunctionError, MaximumRetryAttempts,
  MaximumRecordAgeInSeconds and the on-failure destination (an SQS message in AWS's format).
- `Type: SQS`: receives (BatchSize), deletes what succeeded, leaves failures to come back after the
  visibility timeout (optionally scaled down locally) and to the queue's redrive policy (moto applies it).
- `Type: Schedule`: not on a timer; `scheduled_event()` builds what EventBridge would send.

Locally the shards of a mapping are read one after another by one thread (ParallelizationFactor is not
emulated), which keeps every shard's order and is more than a laptop's stream needs.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devstack.aws import aws_client
from devstack.functions import FunctionRegistry, FunctionSpec, Invocation
from devstack.template import Resolver

log = logging.getLogger("devstack.pollers")

POLL_INTERVAL_S = 0.25  # Lambda polls a stream's shards four times a second
DEFAULT_RETRY_DELAY_S = 0.2
MAX_RETRY_DELAY_S = 5.0
SQS_MAX_MESSAGES = 10  # per ReceiveMessage call


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before retry number n (1-based): short and growing, so local tests stay fast."""

    first_delay_s: float = DEFAULT_RETRY_DELAY_S
    max_delay_s: float = MAX_RETRY_DELAY_S

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class StreamMapping:
    function: str
    event: str
    stream_arn: str
    starting_position: str
    batch_size: int
    window_s: float
    report_item_failures: bool
    bisect: bool
    max_retries: int  # -1: until the record expires
    max_record_age_s: int  # -1: no limit
    on_failure_arn: str | None


@dataclass(frozen=True)
class QueueMapping:
    function: str
    event: str
    queue_arn: str
    batch_size: int
    window_s: float
    report_item_failures: bool


def _mapping_base(spec: FunctionSpec, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "function": spec.logical_id,
        "report_item_failures": "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        "window_s": float(props.get("MaximumBatchingWindowInSeconds", 0)),
    }


def stream_mappings(registry: FunctionRegistry, resolver: Resolver) -> list[StreamMapping]:
    found = []
    for spec in registry.specs.values():
        for name, raw in spec.events_of_type("DynamoDB").items():
            props = resolver.resolve(raw)
            destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            found.append(
                StreamMapping(
                    **_mapping_base(spec, props),
                    event=name,
                    stream_arn=str(props["Stream"]),
                    starting_position=str(props.get("StartingPosition", "LATEST")),
                    batch_size=int(props.get("BatchSize", 100)),
                    bisect=bool(props.get("BisectBatchOnFunctionError", False)),
                    max_retries=int(props.get("MaximumRetryAttempts", -1)),
                    max_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
                    on_failure_arn=str(destination) if destination else None,
                )
            )
    return found


def queue_mappings(registry: FunctionRegistry, resolver: Resolver) -> list[QueueMapping]:
    found = []
    for spec in registry.specs.values():
        for name, raw in spec.events_of_type("SQS").items():
            props = resolver.resolve(raw)
            found.append(
                QueueMapping(
                    **_mapping_base(spec, props),
                    event=name,
                    queue_arn=str(props["Queue"]),
                    batch_size=int(props.get("BatchSize", 10)),
                )
            )
    return found


def scheduled_event(registry: FunctionRegistry, logical: str, resolver: Resolver) -> dict[str, Any]:
    """What EventBridge sends for the function's (first) `Type: Schedule` event."""
    spec = registry.specs[logical]
    schedules = spec.events_of_type("Schedule")
    event_name = next(iter(schedules), "Schedule")
    rule = f"{resolver.stack_name}-{logical}{event_name}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": resolver.account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": resolver.region,
        "resources": [f"arn:aws:events:{resolver.region}:{resolver.account_id}:rule/{rule}"],
        "detail": {},
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _lambda_json(value: Any) -> Any:
    """boto3 hands binary attribute values as bytes; Lambda's event carries them base64-encoded."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _lambda_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lambda_json(v) for v in value]
    return value


class _Poller:
    """A daemon thread polling one event source until stop()."""

    def __init__(self, name: str) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                pause = self._poll_once()
                if pause > 0:
                    self._stopping.wait(pause)
            except Exception:
                # The moto server going away at shutdown, a bad iterator: log, wait, carry on.
                if not self._stopping.is_set():
                    log.exception("%s: poll failed; retrying", self._thread.name)
                    self._stopping.wait(1.0)
                    self._recover()

    def _poll_once(self) -> float:
        """Poll and deliver; return how long to wait before the next poll (0: at once)."""
        raise NotImplementedError

    def _recover(self) -> None:
        """Get back into a pollable state after an error."""


# ---------------------------------------------------------------- DynamoDB streams


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    last_sequence: str | None = None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    seen_at: list[float] = field(default_factory=list)  # when the poller first read each buffered record
    first_seen: float = 0.0


class StreamPoller(_Poller):
    """One DynamoDB stream event source mapping."""

    def __init__(
        self,
        mapping: StreamMapping,
        registry: FunctionRegistry,
        endpoint_url: str,
        retry: RetryPolicy = RetryPolicy(),
        keys: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(f"stream-{mapping.function}-{mapping.event}")
        self.mapping = mapping
        self.registry = registry
        self.retry = retry
        # As Lambda's event source mapping: it reads the stream and sends to the destination as the function's
        # role (`keys`, when the stack enforces IAM); looking a queue's URL up is the stack's own business.
        self._streams = aws_client("dynamodbstreams", endpoint_url, keys)
        self._sqs = aws_client("sqs", endpoint_url, keys)
        self._sqs_lookup = aws_client("sqs", endpoint_url)
        self._region = mapping.stream_arn.split(":")[3]
        self._shards: list[_Shard] = []

    def start(self) -> None:
        # Open the iterators before returning, so that a write right after start() is seen (LATEST).
        self._open_shards()
        super().start()

    def _open_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self.mapping.stream_arn)["StreamDescription"]
        known = {s.shard_id for s in self._shards}
        for shard in description.get("Shards") or []:
            if shard["ShardId"] in known:
                continue
            iterator = self._streams.get_shard_iterator(
                StreamArn=self.mapping.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType=self.mapping.starting_position,
            )["ShardIterator"]
            self._shards.append(_Shard(shard["ShardId"], iterator))

    def _recover(self) -> None:
        for shard in self._shards:
            kind = "AFTER_SEQUENCE_NUMBER" if shard.last_sequence else self.mapping.starting_position
            extra = {"SequenceNumber": shard.last_sequence} if shard.last_sequence else {}
            try:
                shard.iterator = self._streams.get_shard_iterator(
                    StreamArn=self.mapping.stream_arn, ShardId=shard.shard_id, ShardIteratorType=kind, **extra
                )["ShardIterator"]
            except Exception:
                log.warning("%s: cannot reopen shard %s yet", self._thread.name, shard.shard_id)

    def _poll_once(self) -> float:
        return min((self._poll_shard(shard) for shard in self._shards), default=POLL_INTERVAL_S)

    def _poll_shard(self, shard: _Shard) -> float:
        """Read what is new, deliver a batch when it is full or its window has passed; the pause until next."""
        mapping = self.mapping
        fetched = False
        if len(shard.buffer) < mapping.batch_size and shard.iterator:
            answer = self._streams.get_records(
                ShardIterator=shard.iterator, Limit=mapping.batch_size - len(shard.buffer)
            )
            shard.iterator = answer.get("NextShardIterator")
            records = answer.get("Records") or []
            if records:
                now = time.monotonic()
                if not shard.buffer:
                    shard.first_seen = now
                shard.buffer.extend(self._lambda_record(r) for r in records)
                shard.seen_at.extend([now] * len(records))
                shard.last_sequence = records[-1]["dynamodb"]["SequenceNumber"]
                fetched = True
        if not shard.buffer:
            return POLL_INTERVAL_S
        full = len(shard.buffer) >= mapping.batch_size
        window_left = shard.first_seen + mapping.window_s - time.monotonic()
        if not full and window_left > 0:
            return 0.0 if fetched else min(POLL_INTERVAL_S, window_left)
        batch, seen = shard.buffer[: mapping.batch_size], shard.seen_at[: mapping.batch_size]
        del shard.buffer[: mapping.batch_size], shard.seen_at[: mapping.batch_size]
        # The next batching window begins when this invocation completes.
        self._deliver(shard.shard_id, batch, seen)
        shard.first_seen = time.monotonic()
        return 0.0

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        ddb = _lambda_json(dict(record["dynamodb"]))
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            ddb["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self._region,
            "dynamodb": ddb,
            "eventSourceARN": self.mapping.stream_arn,
        }

    def _deliver(self, shard_id: str, records: list[dict[str, Any]], seen: list[float]) -> None:
        """Invoke until these records succeed, are bisected away, expire or exhaust their retries."""
        mapping = self.mapping
        attempt = invokes = 0
        while records and not self._stopping.is_set():
            if mapping.max_record_age_s >= 0:
                # Age is counted from when this poller first read a record: moto's creation time is naive.
                now = time.monotonic()
                expired = sum(1 for t in seen if now - t > mapping.max_record_age_s)
                if expired:
                    self._give_up(shard_id, records[:expired], "RecordAgeExceeded", invokes, None)
                    records, seen = records[expired:], seen[expired:]
                    continue
            invocation, failed_at = self._invoke(shard_id, records)
            invokes += 1
            if failed_at is None:
                return
            if invocation.error is not None and mapping.bisect and len(records) > 1:
                # Splitting does not count as a retry; each half gets the full retry quota.
                middle = len(records) // 2
                self._deliver(shard_id, records[:middle], seen[:middle])
                self._deliver(shard_id, records[middle:], seen[middle:])
                return
            records, seen = records[failed_at:], seen[failed_at:]
            attempt += 1
            if 0 <= mapping.max_retries < attempt:
                self._give_up(shard_id, records, "RetryAttemptsExhausted", invokes, invocation)
                return
            self._stopping.wait(self.retry.delay(attempt))

    def _invoke(self, shard_id: str, records: list[dict[str, Any]]) -> tuple[Invocation, int | None]:
        invocation = self.registry.invoke(self.mapping.function, {"Records": records})
        failed_at = self._failed_index(records, invocation)
        if invocation.error is not None:
            outcome = f"error {invocation.error.get('errorType')}"
        else:
            outcome = "ok" if failed_at is None else f"retry from record {failed_at + 1}"
        log.info(
            "%s <- %d record(s) from %s, sequence numbers %s..%s, request %s: %s",
            self.mapping.function,
            len(records),
            shard_id,
            records[0]["dynamodb"]["SequenceNumber"],
            records[-1]["dynamodb"]["SequenceNumber"],
            invocation.request_id,
            outcome,
        )
        return invocation, failed_at

    def _failed_index(self, records: list[dict[str, Any]], invocation: Invocation) -> int | None:
        """None: the batch succeeded; else the index to retry from (0: the whole batch)."""
        if invocation.error is not None:
            return 0
        if not self.mapping.report_item_failures or not isinstance(invocation.payload, dict):
            return None
        failures = invocation.payload.get("batchItemFailures")
        if not failures:
            return None
        order = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
        indexes = [order.get(f.get("itemIdentifier")) if isinstance(f, dict) else None for f in failures]
        # An identifier that names no record of the batch makes Lambda treat the whole batch as failed.
        if any(i is None for i in indexes):
            return 0
        return min(i for i in indexes if i is not None)

    def _give_up(
        self,
        shard_id: str,
        records: list[dict[str, Any]],
        condition: str,
        invokes: int,
        invocation: Invocation | None,
    ) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        log.warning(
            "%s: %s for %d record(s), sequence numbers %s..%s",
            self.mapping.function,
            condition,
            len(records),
            first["SequenceNumber"],
            last["SequenceNumber"],
        )
        if not self.mapping.on_failure_arn:
            return
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if invocation is not None and invocation.error is not None:
            response["functionError"] = "Unhandled"
        message = {
            "requestContext": {
                "requestId": invocation.request_id if invocation else str(uuid.uuid4()),
                "functionArn": self.registry.specs[self.mapping.function].arn,
                "condition": condition,
                "approximateInvokeCount": invokes,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime") or time.time()),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime") or time.time()),
                "batchSize": len(records),
                "streamArn": self.mapping.stream_arn,
            },
        }
        self._send_to(self.mapping.on_failure_arn, message)

    def _send_to(self, arn: str, message: dict[str, Any]) -> None:
        if arn.split(":")[2] != "sqs":
            log.error("%s: only SQS on-failure destinations run locally, not %s", self.mapping.function, arn)
            return
        url = self._sqs_lookup.get_queue_url(QueueName=arn.split(":")[5])["QueueUrl"]
        self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))


# ---------------------------------------------------------------- SQS


class QueuePoller(_Poller):
    """One SQS event source mapping."""

    def __init__(
        self,
        mapping: QueueMapping,
        registry: FunctionRegistry,
        endpoint_url: str,
        visibility_scale: float = 1.0,
        keys: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(f"sqs-{mapping.function}-{mapping.event}")
        self.mapping = mapping
        self.registry = registry
        self.visibility_scale = visibility_scale
        # Receives, deletes and returns messages as the function's role (`keys`), as Lambda's mapping does.
        self._sqs = aws_client("sqs", endpoint_url, keys)
        self._region = mapping.queue_arn.split(":")[3]
        setup = aws_client("sqs", endpoint_url)
        self._url = setup.get_queue_url(QueueName=mapping.queue_arn.split(":")[5])["QueueUrl"]
        attributes = setup.get_queue_attributes(QueueUrl=self._url, AttributeNames=["VisibilityTimeout"])
        self._visibility_s = int(attributes["Attributes"].get("VisibilityTimeout", 30))

    def _poll_once(self) -> float:
        mapping = self.mapping
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + mapping.window_s
        while len(messages) < mapping.batch_size:
            received = (
                self._sqs.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=min(SQS_MAX_MESSAGES, mapping.batch_size - len(messages)),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages")
                or []
            )
            messages.extend(received)
            if time.monotonic() >= deadline or (not received and not messages):
                break
            if not received:
                self._stopping.wait(POLL_INTERVAL_S)
        if not messages:
            return POLL_INTERVAL_S
        invocation = self.registry.invoke(mapping.function, {"Records": [self._record(m) for m in messages]})
        failed = self._failed_ids(messages, invocation)
        log.info(
            "%s <- %d message(s), request %s: %d failed",
            mapping.function,
            len(messages),
            invocation.request_id,
            len(failed),
        )
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), SQS_MAX_MESSAGES):
            chunk = done[start : start + SQS_MAX_MESSAGES]
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if failed and self.visibility_scale != 1.0:
            # Shorten the wait before a failed message comes back, so the local stack retries sooner.
            timeout = max(0, math.ceil(self._visibility_s * self.visibility_scale))
            for m in messages:
                if m["MessageId"] in failed:
                    self._sqs.change_message_visibility(
                        QueueUrl=self._url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=timeout
                    )
        return 0.0

    def _failed_ids(self, messages: list[dict[str, Any]], invocation: Invocation) -> set[str]:
        every = {m["MessageId"] for m in messages}
        if invocation.error is not None or invocation.timeout:
            return every
        if not self.mapping.report_item_failures or not isinstance(invocation.payload, dict):
            return set()
        failures = invocation.payload.get("batchItemFailures") or []
        ids = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
        # An unknown or empty identifier fails the whole batch, as in Lambda.
        if not ids <= every:
            return every
        return {i for i in ids if isinstance(i, str)}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            attributes[name] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": _lambda_json(value["BinaryValue"]) if "BinaryValue" in value else None,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            attributes[name] = {k: v for k, v in attributes[name].items() if v is not None}
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": message.get("Attributes") or {},
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.queue_arn,
            "awsRegion": self._region,
        }


# ---------------------------------------------------------------- all of them


@dataclass
class Pollers:
    streams: list[StreamPoller]
    queues: list[QueuePoller]

    def start(self) -> None:
        for poller in [*self.streams, *self.queues]:
            poller.start()

    def stop(self) -> None:
        # Signal all first, so they wind down together rather than one after another.
        for poller in [*self.streams, *self.queues]:
            poller.request_stop()
        for poller in [*self.streams, *self.queues]:
            poller.stop()


def build_pollers(
    registry: FunctionRegistry,
    resolver: Resolver,
    endpoint_url: str,
    *,
    retry: RetryPolicy = RetryPolicy(),
    visibility_scale: float = 1.0,
    keys: Mapping[str, tuple[str, str]] | None = None,
) -> Pollers:
    """A poller for every DynamoDB and SQS event of the template (not started); with `keys` ({function: access
    key}), each polls as its function."""
    keys = keys or {}
    return Pollers(
        streams=[
            StreamPoller(m, registry, endpoint_url, retry, keys.get(m.function))
            for m in stream_mappings(registry, resolver)
        ],
        queues=[
            QueuePoller(m, registry, endpoint_url, visibility_scale, keys.get(m.function))
            for m in queue_mappings(registry, resolver)
        ],
    )
