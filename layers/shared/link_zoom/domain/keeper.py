"""The token keeper, fanned out: a scheduled planner finds the connections due for a refresh and queues them; queue
workers refresh them one by one through `Connection.keep_fresh` (its one-refresh lock, rotated tokens stored
first, no refresh started without the time to store its answer).

Zoom refresh tokens live 90 days and rotate on use. A connection is due once its refresh token is older than
KEEPER_REFRESH_AGE (60 days): 30 days of margin, so many missed runs lose nothing (docs/deploy.md has the
arithmetic). The planner is idempotent: what was refreshed meanwhile is not due, and a queued message for a
connection refreshed since is a no-op (one read).
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Protocol

from link_zoom.deadline import Deadline
from link_zoom.domain.connection import KEEPER_REFRESH_AGE, ZoomOAuthPort, ZoomTokens, ZoomUser
from link_zoom.observability import count, logger

# A connection still due this long after it became due was not reached by the runs in between: alarmed.
NOT_REACHED_AFTER = timedelta(days=2)
PLAN_SEGMENTS = 8  # parallel scan segments of the connections table, each on a thread of its own
PLAN_RESERVE_MS = 30_000  # no new page is read with less than this left of the planner's invocation
SEND_BATCH = 10  # SQS SendMessageBatch's maximum
# Refreshes one worker sends a second at most. With TokenRefreshFunction's MaximumConcurrency (5) it is the keeper's
# ceiling at Zoom's token endpoint (50/s), whatever Zoom's latency (docs/deploy.md).
WORKER_REFRESHES_PER_S = 10.0


class DueConnectionsPort(Protocol):
    def refreshed_before(self, cutoff: float, segment: int, segments: int) -> Iterable[tuple[str, float]]:
        """(user id, refresh issued at) of the connections in one parallel-scan segment refreshed before `cutoff`."""
        ...


class RefreshQueuePort(Protocol):
    def send(self, bodies: Sequence[Mapping[str, Any]]) -> None:
        """Queues every body (at most SEND_BATCH), raising if any could not be queued."""
        ...


class KeepFreshPort(Protocol):
    def keep_fresh(self, user_id: str, cutoff: float, deadline: Deadline | None = None) -> str:
        """ "refreshed", "skipped" (not due any more), "lost" (connection gone) or "failed" (try again)."""
        ...


@dataclass(frozen=True)
class PlanSummary:
    due: int  # connections whose refresh token was older than the cut-off
    queued: int
    not_reached: int  # due for longer than NOT_REACHED_AFTER: earlier runs or their workers missed them
    stopped_early: bool  # the invocation's time ran low before every segment was read
    seconds: float

    def as_dict(self) -> dict[str, int | bool | float]:
        return asdict(self)


@dataclass(frozen=True)
class RefreshRequest:
    user_id: str
    cutoff: float  # refreshed before this epoch: still due

    def body(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "refreshed_before": self.cutoff}

    @classmethod
    def of(cls, body: str | None) -> RefreshRequest | None:
        """The request in a queue message, or None when the message is unusable (retrying cannot repair it)."""
        try:
            data = json.loads(body or "")
            user_id, cutoff = data["user_id"], float(data["refreshed_before"])
        except (ValueError, TypeError, KeyError):
            return None
        return cls(user_id, cutoff) if isinstance(user_id, str) and user_id else None


class RefreshFailed(Exception):
    """The refresh did not happen (Zoom or AWS failing, too little time left): the message comes back later."""


@dataclass(frozen=True)
class Keeper:
    connections: DueConnectionsPort
    queue: RefreshQueuePort

    def plan(
        self,
        remaining_ms: Callable[[], int],
        *,
        older_than: timedelta = KEEPER_REFRESH_AGE,
        segments: int = PLAN_SEGMENTS,
        reserve_ms: int = PLAN_RESERVE_MS,
    ) -> PlanSummary:
        """Queues every connection refreshed longer ago than `older_than`: the table read in `segments` parallel
        scan segments at once, each queueing in batches as it reads."""
        from concurrent.futures import ThreadPoolExecutor  # the planner's alone

        started = time.monotonic()
        now = time.time()
        cutoff = now - older_than.total_seconds()
        late = cutoff - NOT_REACHED_AFTER.total_seconds()
        with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="planner") as pool:
            runs = [
                pool.submit(
                    contextvars.copy_context().run,
                    self._plan_segment,
                    s,
                    segments,
                    cutoff,
                    late,
                    remaining_ms,
                    reserve_ms,
                )
                for s in range(segments)
            ]
            results = [run.result() for run in runs]
        summary = PlanSummary(
            due=sum(r.due for r in results),
            queued=sum(r.queued for r in results),
            not_reached=sum(r.not_reached for r in results),
            stopped_early=any(r.stopped_early for r in results),
            seconds=round(time.monotonic() - started, 3),
        )
        count("RefreshesQueued", summary.queued)
        count("ConnectionsNotReached", summary.not_reached)
        count("KeeperRunsCutShort", int(summary.stopped_early))
        logger.info("keeper plan finished", extra=summary.as_dict())
        return summary

    def _plan_segment(
        self,
        segment: int,
        segments: int,
        cutoff: float,
        late: float,
        remaining_ms: Callable[[], int],
        reserve_ms: int,
    ) -> PlanSummary:
        due = not_reached = queued = 0
        batch: list[dict[str, Any]] = []
        stopped_early = False
        for user_id, refreshed_at in self.connections.refreshed_before(cutoff, segment, segments):
            due += 1
            not_reached += refreshed_at < late
            batch.append(RefreshRequest(user_id, cutoff).body())
            if len(batch) == SEND_BATCH:
                queued += self._send(batch)
                batch = []
                if remaining_ms() < reserve_ms:
                    stopped_early = True
                    break
        queued += self._send(batch)
        return PlanSummary(due, queued, not_reached, stopped_early, 0.0)

    def _send(self, batch: list[dict[str, Any]]) -> int:
        if batch:
            self.queue.send(batch)
        return len(batch)


def refresh_one(connection: KeepFreshPort, body: str | None, deadline: Deadline) -> str:
    """A queue worker's message: refreshes the connection if still due. Raises RefreshFailed when the message
    should come back (the queue's redrive moves it to the DLQ after its last receive)."""
    request = RefreshRequest.of(body)
    if request is None:
        logger.error("unusable refresh message")
        return "unusable"
    outcome = connection.keep_fresh(request.user_id, request.cutoff, deadline)
    if outcome == "refreshed":
        count("ConnectionsRefreshed")
    elif outcome == "lost":
        count("ConnectionsLost")
    elif outcome == "failed":
        count("RefreshFailures")
        raise RefreshFailed(request.user_id)
    return outcome


class PacedRefreshes:
    """A ZoomOAuthPort whose refreshes start no closer together than `interval_s` in this process (the other
    calls pass straight through): the refresh worker's share of Zoom's token-endpoint rate."""

    def __init__(
        self,
        inner: ZoomOAuthPort,
        interval_s: float = 1.0 / WORKER_REFRESHES_PER_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._inner, self._interval, self._clock, self._sleep = inner, interval_s, clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def refresh(self, refresh_token: str) -> ZoomTokens:
        with self._lock:
            wait = self._next - self._clock()
            self._next = max(self._next, self._clock()) + self._interval
        if wait > 0:
            self._sleep(wait)
        return self._inner.refresh(refresh_token)

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> ZoomTokens:
        return self._inner.exchange_code(code, redirect_uri, code_verifier)

    def revoke(self, token: str) -> None:
        self._inner.revoke(token)

    def current_user(self, access_token: str) -> ZoomUser:
        return self._inner.current_user(access_token)
