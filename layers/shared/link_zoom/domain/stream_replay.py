"""Replaying the calendar stream's dead letters (`make replay-dlq`, after the DLQ alarm).

Each message names a range of stream records; they are read from the stream again and handed to the
stream function exactly as its event source mapping would. A message is deleted only when every one of
its records succeeded; the others stay in the queue for the next replay. Replaying is safe at any time:
the stream processing is idempotent (the link claim, level-triggered reconciling).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from link_zoom.deadline import Deadline
from link_zoom.observability import logger

# No new message is started with less time than this left (the stream function's own run included).
MIN_REMAINING_S = 30.0


class RecordsExpired(Exception):
    """The stream no longer holds the records (older than its 24-hour retention)."""


@dataclass(frozen=True)
class StreamBatch:
    stream_arn: str
    shard_id: str
    start_sequence: str
    end_sequence: str

    @classmethod
    def from_message(cls, body: Mapping[str, Any]) -> StreamBatch | None:
        info = body.get("DDBStreamBatchInfo")
        if not isinstance(info, Mapping):
            return None
        fields = [info.get(name) for name in ("streamArn", "shardId", "startSequenceNumber", "endSequenceNumber")]
        if not all(isinstance(value, str) and value for value in fields):
            return None
        return cls(*(str(value) for value in fields))


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    batch: StreamBatch | None  # None: not a stream on-failure record


class DeadLetterQueuePort(Protocol):
    def receive(self, hide_for_s: int) -> list[DeadLetter]: ...

    def delete(self, letter: DeadLetter) -> None: ...

    def release(self, letter: DeadLetter) -> None: ...


class StreamReaderPort(Protocol):
    def records(self, batch: StreamBatch) -> list[dict[str, Any]]: ...


class StreamFunctionPort(Protocol):
    def process(self, records: list[dict[str, Any]]) -> set[str]: ...


@dataclass
class ReplaySummary:
    messages: int = 0
    replayed: int = 0  # messages whose records all succeeded: deleted
    kept: int = 0  # messages with a record that failed again: left for the next replay
    unreadable: int = 0  # not a stream on-failure record: left for a person to look at
    expired: int = 0  # records no longer in the stream (24-hour retention): left for a person to look at
    records: int = 0
    failed_records: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def replay_dead_letters(
    deadline: Deadline, queue: DeadLetterQueuePort, stream: StreamReaderPort, function: StreamFunctionPort
) -> ReplaySummary:
    summary = ReplaySummary()
    kept: list[DeadLetter] = []
    try:
        while deadline.remaining() > MIN_REMAINING_S:
            # Hidden for the whole run, so a kept message is not received twice by this replay.
            letters = queue.receive(int(deadline.remaining()) + 30)
            if not letters:
                break
            for letter in letters:
                summary.messages += 1
                if deadline.remaining() <= MIN_REMAINING_S:
                    summary.kept += 1
                    kept.append(letter)
                    continue
                if letter.batch is None:
                    summary.unreadable += 1
                    kept.append(letter)
                    continue
                try:
                    records = stream.records(letter.batch)
                except RecordsExpired:
                    records = []
                if not records:
                    summary.expired += 1
                    kept.append(letter)
                    continue
                failed = function.process(records)
                summary.records += len(records)
                summary.failed_records += len(failed)
                if failed:
                    summary.kept += 1
                    kept.append(letter)
                else:
                    queue.delete(letter)
                    summary.replayed += 1
    finally:
        for letter in kept:
            queue.release(letter)
    logger.info("calendar stream dead letters replayed", extra=summary.as_dict())
    return summary
