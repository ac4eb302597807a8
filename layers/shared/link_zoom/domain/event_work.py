"""Per-event work: how the calendar heals itself without a person.

Three kinds of work end up as one message per event, `{"user_id", "event_id", "attempt", "not_before"}`, on the
durable EventWorkQueue (14 days):
- a stream batch that failed every retry: Lambda's on-failure message (CalendarStreamDLQ) is consumed at once and
  turned into the keys of its records, read from the stream while it still holds them (24 hours);
- an event Zoom rate-limited (`rate_limited`): due again after Zoom's Retry-After (the daily limit: 00:00 UTC);
- an event of the post-connect sweep whose reconcile failed: retried on its own, not with the whole sweep.

Work is level-triggered, as the stream handler is: `reconcile_event` looks at the item as it is now. A failure is
retried with exponential back-off (SQS DelaySeconds, up to 15 minutes) until the event has its meeting or a final
status; after MAX_ATTEMPTS (about three days) the item gets `failed` with a sentence a person can act on, and
`EventsGivenUp` is counted. A due time beyond SQS's 15-minute delay is waited out by re-queueing.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from link_zoom.deadline import Deadline
from link_zoom.errors import ZoomRateLimited
from link_zoom.observability import count, logger

if TYPE_CHECKING:
    from link_zoom.domain.meetings import Meetings

MAX_DELAY_S = 900  # SQS's maximum DelaySeconds
MIN_WORK_S = 30.0  # an item is not started with less time left: it is re-queued at once instead
# Events waiting out a rate limit come due spread over up to this share of the wait (at most 15 minutes) after
# it, not all at the reset: the first ones use the new quota, the rest find it used up again at no cost.
RESET_SPREAD_SHARE = 0.25
MAX_RESET_SPREAD_S = 900.0
GIVE_UP_SENTENCE = (
    "Zoom could not be reached to update this meeting for several days; change the event in Link to try again."
)


def backoff_base_s() -> float:
    """The first retry's delay (doubling up to 15 minutes); the local stack and tests may shorten it."""
    return float(os.environ.get("EVENT_WORK_BACKOFF_BASE_S", "30"))


def reset_spread(retry_after_s: float) -> float:
    """A random extra wait after a rate limit's end (full jitter over a window that grows with the wait)."""
    return random.uniform(0.0, min(MAX_RESET_SPREAD_S, retry_after_s * RESET_SPREAD_SHARE))  # noqa: S311 - timing


def max_attempts() -> int:
    """30 s, 1, 2, 4, 8 minutes, then every 15 minutes: 300 attempts span about three days."""
    return int(os.environ.get("EVENT_WORK_MAX_ATTEMPTS", "300"))


@dataclass(frozen=True)
class WorkItem:
    user_id: str
    event_id: str
    attempt: int = 0  # failed attempts so far
    not_before: float = 0.0  # epoch seconds: not due before (a rate limit's Retry-After)

    def body(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> WorkItem | None:
        user_id, event_id = body.get("user_id"), body.get("event_id")
        attempt, not_before = body.get("attempt", 0), body.get("not_before", 0.0)
        if not (isinstance(user_id, str) and user_id and isinstance(event_id, str) and event_id):
            return None
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            return None
        if isinstance(not_before, bool) or not isinstance(not_before, int | float):
            return None
        return cls(user_id, event_id, attempt, float(not_before))


class WorkQueuePort(Protocol):
    def send(self, bodies: list[dict[str, Any]], delay_s: float = 0) -> None: ...


class FailedRecordsPort(Protocol):
    def keys_of(self, failure: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The (user_id, event_id) of the records a stream on-failure message names, read from the stream; empty
        when the message names none or the stream no longer holds them."""
        ...


class UnusableFailureMessage(Exception):
    """An on-failure message whose records cannot be read (not one, or no longer in the stream): it is failed,
    comes back, and after its last receive lands in EventWorkDLQ (alarmed) for a person."""


@dataclass
class EventWork:
    meetings: Meetings
    queue: WorkQueuePort
    failed_records: FailedRecordsPort | None = None
    clock: Callable[[], float] = time.time
    spread: Callable[[float], float] = reset_spread

    def handle_message(self, body: Mapping[str, Any], deadline: Deadline) -> str:
        """One SQS message of either queue; returns what was done (raises for a message to receive again)."""
        if "DDBStreamBatchInfo" in body:
            return f"queued {self.fan_out(body)}"
        item = WorkItem.from_body(body)
        if item is None:
            # Retrying cannot repair it: log and drop rather than cycle it into the DLQ.
            count("EventWorkUnusable")
            logger.error("unusable event work message")
            return "unusable"
        return self.work_on(item, deadline)

    def fan_out(self, body: Mapping[str, Any]) -> int:
        """A stream on-failure message: one work item per event its records name."""
        keys = sorted(set(self.failed_records.keys_of(body))) if self.failed_records is not None else []
        if not keys:
            count("StreamFailuresUnreadable")
            logger.error("a stream on-failure message names no records the stream still holds", extra=_batch_log(body))
            raise UnusableFailureMessage()
        self.queue.send([WorkItem(user_id, event_id).body() for user_id, event_id in keys])
        count("StreamFailuresQueued", len(keys))
        logger.info("stream failures turned into event work", extra={"events": len(keys)})
        return len(keys)

    def work_on(self, item: WorkItem, deadline: Deadline) -> str:
        now = self.clock()
        if item.not_before > now:
            self.queue.send([item.body()], item.not_before - now)  # not due yet: wait on in the queue
            return "waiting"
        if deadline.remaining() < MIN_WORK_S:
            self.queue.send([item.body()])
            return "deferred"
        try:
            return self.meetings.reconcile_event(item.user_id, item.event_id, deadline)
        except ZoomRateLimited as exc:
            self.wait_out(item, exc.retry_after_seconds)
            return "rate_limited"
        except Exception as exc:  # every failure is retried per event, then given up in writing
            return self._retry_or_give_up(item, exc)

    def wait_out(self, item: WorkItem, retry_after_s: int) -> None:
        """Queues the event to be reconciled again once Zoom's Retry-After has passed, plus a spread so that a
        user's waiting events do not all reach Zoom at the reset (the attempt count is kept: waiting is no failure)."""
        count("RateLimitedDeferrals")
        delay = retry_after_s + self.spread(retry_after_s)
        due = self.clock() + delay
        self.queue.send([replace(item, not_before=due).body()], delay)
        logger.info("event waits out Zoom's rate limit", extra={"event_id": item.event_id, "seconds": round(delay, 1)})

    def _retry_or_give_up(self, item: WorkItem, error: Exception) -> str:
        attempt = item.attempt + 1
        if attempt >= max_attempts():
            count("EventsGivenUp")
            logger.error(
                "event work given up",
                extra={"event_id": item.event_id, "attempts": attempt, "error": type(error).__name__},
            )
            self.meetings.give_up(item.user_id, item.event_id, GIVE_UP_SENTENCE)
            return "failed"
        delay = min(MAX_DELAY_S, backoff_base_s() * 2 ** (attempt - 1))
        count("EventWorkRetries")
        logger.warning(
            "event work failed; retrying",
            extra={"event_id": item.event_id, "attempt": attempt, "delay_s": delay, "error": type(error).__name__},
        )
        self.queue.send([replace(item, attempt=attempt).body()], delay)
        return "retrying"


def _batch_log(body: Mapping[str, Any]) -> dict[str, Any]:
    info = body.get("DDBStreamBatchInfo")
    if not isinstance(info, Mapping):
        return {"batch": "unreadable"}
    return {name: info.get(name) for name in ("shardId", "startSequenceNumber", "endSequenceNumber")}


def body_of(raw: str | None) -> Mapping[str, Any]:
    """An SQS message body as a JSON object ({} when it is not one)."""
    try:
        body = json.loads(raw or "")
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def job_key(body: Mapping[str, Any], message_id: str) -> Hashable:
    """Work items of one event run in order; everything else runs on its own."""
    item = WorkItem.from_body(body)
    return (item.user_id, item.event_id) if item else ("message", message_id)
