"""The user's daily Zoom quota: once Zoom says it is used up, no create or update is sent until it resets.

Zoom allows each user 100 meeting creates and updates a day (UTC); over it, every further call is a 429. Without
memory, each waiting event of a limited user would spend one call to learn that again. So the first daily-limit
429 is remembered for the user until the time Zoom gave for it (its Retry-After, else 00:00 UTC), in this
container at once and in a small marker row every container reads (one conditional write that only ever moves
the time later). While the marker holds, a create or update for the user is refused here, as Zoom would refuse
it, and its event waits (`rate_limited`) for the reset. The marker never outlives Zoom's own reset time, so a
stale one cannot block a user beyond that. Deletes do not count against the quota and are never held back.

Calls already on their way when Zoom starts refusing each get a 429 of their own. So once this container has
sent a user SINGLE_FILE_AFTER creates and updates since the quota last reset, that user's next ones go one at
a time: the one that meets the limit is the only one Zoom refuses, and the others find it remembered. Below
that, a user's calls run as concurrently as the work does, so a batch of up to a whole day's quota (100 events
written at once) is not slowed down. The price comes where the user spent part of the quota outside this
container: the calls in flight when Zoom starts refusing (at most the batch's workers) each get a 429, which
costs no quota and is remembered as one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from link_zoom.errors import ZoomRateLimited
from link_zoom.observability import count, logger

T = TypeVar("T")

# How long this container trusts "not limited" before reading the marker again: another container's 429 costs
# at most this long of calls that Zoom refuses.
NOT_LIMITED_FRESH_S = 5.0
DAILY_QUOTA = 100  # Zoom's meeting creates and updates per user and UTC day
SINGLE_FILE_AFTER = DAILY_QUOTA  # this container's calls for a user before they go one at a time
DAY_S = 86400
DRAIN_TIMEOUT_S = 30.0  # a Zoom call's own timeouts end it well before this


class QuotaMarkersPort(Protocol):
    def limited_until(self, user_id: str) -> float | None:
        """Epoch seconds until which the user's daily Zoom quota is known to be used up (None: no marker)."""
        ...

    def limit_until(self, user_id: str, until: float) -> None:
        """Records `until` unless a later time is already recorded (one conditional write)."""
        ...


@dataclass
class ZoomQuota:
    markers: QuotaMarkersPort
    clock: Callable[[], float] = time.time
    not_limited_fresh_s: float = NOT_LIMITED_FRESH_S
    single_file_after: int = SINGLE_FILE_AFTER
    calls_avoided: int = 0  # in this container, for the log line
    _limited: dict[str, float] = field(default_factory=dict, repr=False)
    # Per user: (the quota period the count belongs to, creates and updates this container sent in it).
    _sent: dict[str, tuple[float, int]] = field(default_factory=dict, repr=False)
    _single_file: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _read_at: dict[str, float] = field(default_factory=dict, repr=False)
    # Per user: calls started before the single file began and not finished yet.
    _in_flight: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._drained = threading.Condition(self._lock)

    def call(self, user_id: str, operation: Callable[[], T]) -> T:
        """Runs a create or update for the user unless their quota is known to be used up; learns from its 429."""
        self.check(user_id)
        with self._in_turn(user_id):
            try:
                return operation()
            except ZoomRateLimited as exc:
                self.note(user_id, exc)
                raise

    @contextmanager
    def _in_turn(self, user_id: str) -> Iterator[None]:
        """Near the quota, one call at a time for the user, each checking again once it is its turn. Counted as
        sent when it starts, so no more than `single_file_after` ever run side by side."""
        with self._lock:
            period, sent = self._period(user_id), self._sent_in_period(user_id)
            self._sent[user_id] = (period, sent + 1)
            turn = self._single_file.setdefault(user_id, threading.Lock()) if sent >= self.single_file_after else None
            if turn is None:
                self._in_flight[user_id] = self._in_flight.get(user_id, 0) + 1
        if turn is None:
            try:
                yield
            finally:
                with self._drained:
                    self._in_flight[user_id] -= 1
                    self._drained.notify_all()
            return
        with turn:
            # The first in line waits for the calls still on their way: one of them may be the one Zoom refuses.
            with self._drained:
                self._drained.wait_for(lambda: not self._in_flight.get(user_id), timeout=DRAIN_TIMEOUT_S)
            self.check(user_id)
            yield

    def _period(self, user_id: str) -> float:
        """Where the user's current quota period began: 00:00 UTC, or the end of a limit remembered since."""
        now = self.clock()
        day = now - now % DAY_S
        ended = self._limited.get(user_id)
        return max(day, ended) if ended is not None and ended <= now else day

    def _sent_in_period(self, user_id: str) -> int:
        period, sent = self._sent.get(user_id, (0.0, 0))
        return sent if period == self._period(user_id) else 0

    def check(self, user_id: str) -> None:
        """Raises ZoomRateLimited (until the reset), without a call to Zoom, while the user is known limited."""
        until = self._until(user_id)
        now = self.clock()
        if until is None or until <= now:
            return
        with self._lock:
            self.calls_avoided += 1
            avoided = self.calls_avoided
        count("ZoomCallsAvoided")
        wait = math.ceil(until - now)
        logger.info(
            "zoom call not made: the user's daily Zoom limit is used up",
            extra={"retry_after_s": wait, "calls_avoided": avoided},
        )
        raise ZoomRateLimited(wait, daily_limit=True)

    def note(self, user_id: str, error: ZoomRateLimited) -> None:
        """Remembers a daily-limit 429 until the reset Zoom gave; other 429s are waited out where they happen."""
        if not error.daily_limit:
            return
        until = self.clock() + error.retry_after_seconds
        with self._lock:
            self._limited[user_id] = max(until, self._limited.get(user_id, 0.0))
        count("ZoomDailyLimitReached")
        logger.info(
            "the user's daily Zoom limit is used up",
            extra={"until": datetime.fromtimestamp(until, UTC).isoformat()},
        )
        try:
            self.markers.limit_until(user_id, until)
        except Exception:
            # This container remembers it anyway; another one pays one 429 to learn it.
            logger.exception("could not record the user's Zoom limit")

    def _until(self, user_id: str) -> float | None:
        now = self.clock()
        with self._lock:
            known = self._limited.get(user_id)
            read_at = self._read_at.get(user_id)
        if known is not None and known > now:
            return known
        if read_at is not None and now - read_at < self.not_limited_fresh_s:
            return None
        try:
            until = self.markers.limited_until(user_id)
        except Exception:
            # Unknown is not limited: at worst Zoom answers one 429, which is then remembered.
            logger.exception("could not read the user's Zoom limit")
            return None
        with self._lock:
            self._read_at[user_id] = now
            if until is not None and until > now:
                self._limited[user_id] = max(until, self._limited.get(user_id, 0.0))
            elif known is not None and self._limited.get(user_id) == known:
                del self._limited[user_id]  # past: forget it (unless a newer limit came meanwhile)
        return until
