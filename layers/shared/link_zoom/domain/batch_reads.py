"""One read of a user's connection per batch, shared by the batch's worker threads.

A stream batch of one user's 100 events used to read that user's connection record 100 times, one read per
event, though all of them want the same record. Inside `connection_reads_shared()` the first worker to want a
user's record reads it and the others, waiting on that user's lock, take the same one. What is shared is only
ever a record that was read, never an absence (someone who connects meanwhile is seen at once), and a read
that must be fresh (after Zoom rejected a token, inside the refresh loop) bypasses it and replaces it.

A shared record can be as old as the batch. That is safe: Zoom refuses a revoked or rotated access token,
and `Connection.call_zoom` then reads the record afresh before it tries again.

The scope is a context variable: the fan-out (`calendar_events.run_per_key`) runs each task in a copy of the
caller's context, so the workers see the scope their batch opened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from link_zoom.domain.connection import ConnectionRecord

V = TypeVar("V")


class SharedReads(Generic[V]):
    """Values read once per key, the first reader reading while the others wait for it."""

    def __init__(self) -> None:
        self._values: dict[str, V] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.reads = 0  # reads made through `read` (what the tests count)

    def read(self, key: str, read: Callable[[], V | None]) -> V | None:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            found = self._values.get(key)
            if found is not None:
                return found
            self.reads += 1
            value = read()
            if value is not None:
                self._values[key] = value
            return value

    def replace(self, key: str, value: V | None) -> None:
        """What a fresh read found (None: forget what was shared)."""
        if value is None:
            self.forget(key)
        else:
            self._values[key] = value

    def forget(self, key: str) -> None:
        self._values.pop(key, None)


_connection_reads: ContextVar[SharedReads[ConnectionRecord] | None] = ContextVar("connection_reads", default=None)


def shared_connection_reads() -> SharedReads[ConnectionRecord] | None:
    """The open scope's shared reads, or None outside one."""
    return _connection_reads.get()


@contextmanager
def connection_reads_shared() -> Iterator[SharedReads[ConnectionRecord]]:
    """Within this block (and the worker threads it fans out to), each user's connection is read once."""
    reads: SharedReads[ConnectionRecord] = SharedReads()
    token = _connection_reads.set(reads)
    try:
        yield reads
    finally:
        _connection_reads.reset(token)
