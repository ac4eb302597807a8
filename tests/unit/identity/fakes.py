"""In-memory fakes of the identity ports (type-checked against them), and helpers the identity tests share."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from link_zoom.domain.identity import (
    AttemptCounter,
    Directory,
    DirectoryUser,
    Login,
    SessionRecord,
    SessionStore,
)
from link_zoom.errors import DirectoryUnavailable, InvalidCredentials
from link_zoom.observability import logger

ROOT = Path(__file__).resolve().parents[3]


class FakeDirectory:
    """Users by account name; remembers every bind it was asked for."""

    def __init__(self, users: dict[str, tuple[str, DirectoryUser]]) -> None:
        self.users = {name.casefold(): entry for name, entry in users.items()}
        self.binds: list[str] = []
        self.down = False

    def __len__(self) -> int:
        return len(self.binds)

    def authenticate(self, login: Login, password: str) -> DirectoryUser:
        self.binds.append(login.typed)
        if self.down:
            raise DirectoryUnavailable()
        entry = self.users.get(login.account.casefold())
        if entry is None or entry[0] != password:
            raise InvalidCredentials()
        return entry[1]


class FakeSessionStore:
    def __init__(self) -> None:
        self.sessions: dict[str, SessionRecord] = {}

    def __contains__(self, token_hash: object) -> bool:
        return token_hash in self.sessions

    def __len__(self) -> int:
        return len(self.sessions)

    def save(self, session: SessionRecord) -> None:
        self.sessions[session.token_hash] = session

    def find(self, token_hash: str) -> SessionRecord | None:
        return self.sessions.get(token_hash)

    def delete(self, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)


class FakeAttemptCounter:
    """The DynamoDB counter's rules in memory: a window starts at its first attempt and holds `limit`."""

    def __init__(self, limit: int = 5, window_seconds: int = 900) -> None:
        self.limit, self.window = limit, window_seconds
        self.windows: dict[str, tuple[float, int]] = {}

    def reserve(self, key: str, now: float) -> int:
        start, count = self.windows.get(key, (now, 0))
        if start + self.window <= now:
            start, count = now, 0
        if count >= self.limit:
            return max(1, int(start + self.window - now))
        self.windows[key] = (start, count + 1)
        return 0

    def release(self, key: str) -> None:
        start, count = self.windows.get(key, (0.0, 1))
        self.windows[key] = (start, max(0, count - 1))

    def clear(self, key: str) -> None:
        self.windows.pop(key, None)


# Checked by mypy: the fakes implement the ports.
_ports: tuple[Directory, SessionStore, AttemptCounter] = (
    FakeDirectory({}),
    FakeSessionStore(),
    FakeAttemptCounter(),
)

ADA = DirectoryUser("6cf7068e-7348-4e94-ad7b-9cf9002b11f5", "ada", "Ada Admin", True)
BOB = DirectoryUser("b6401320-29fc-4623-b990-0c01ae6bc694", "bob", "Bob User", False)


class FakeConnection:
    """Stands in for the Zoom connection (`composition.connection()`) where features and preferences use it."""

    def __init__(self) -> None:
        self.connected: dict[str, Any] = {}
        self.disconnects: list[str] = []

    def connection_status(self, user_id: str) -> Any:
        when = self.connected.get(user_id)
        return SimpleNamespace(connected=when is not None, reauthorize_after=when)

    def disconnect(self, user_id: str) -> bool:
        self.disconnects.append(user_id)
        return self.connected.pop(user_id, None) is not None


@contextlib.contextmanager
def logger_output() -> Iterator[io.StringIO]:
    """Everything the powertools logger writes meanwhile, exactly as it would reach CloudWatch."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)
