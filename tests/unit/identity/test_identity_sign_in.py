"""Signing in, out, and the authorizer's session check, with in-memory fakes for the directory and stores."""

from __future__ import annotations

import hashlib
import re

import pytest

from link_zoom.domain import identity
from link_zoom.errors import DirectoryUnavailable, InvalidCredentials, TooManyAttempts
from tests.unit.identity.fakes import FakeAttemptCounter, FakeDirectory, FakeSessionStore

NOW = 1_750_000_000.0


def sign_in(
    directory: FakeDirectory,
    sessions: FakeSessionStore,
    attempts: FakeAttemptCounter,
    username: str = "bob",
    password: str = "bob-password",
    now: float = NOW,
) -> identity.SignedIn:
    return service(directory, sessions, attempts, now).sign_in(username, password)


def service(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter | None = None, now: float = NOW
) -> identity.Identity:
    return identity.Identity(directory, sessions, attempts or FakeAttemptCounter(), 12 * 3600, clock=lambda: now)


def test_sign_in_gives_a_random_256_bit_token_and_keeps_only_its_hash(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter
) -> None:
    first = sign_in(directory, sessions, attempts)
    second = sign_in(directory, sessions, attempts)

    assert first.token != second.token
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", first.token)  # 32 bytes of entropy, URL-safe
    assert hashlib.sha256(first.token.encode()).hexdigest() in sessions
    assert all(first.token not in repr(s) for s in sessions.sessions.values())
    assert first.session.user_id == "b6401320-29fc-4623-b990-0c01ae6bc694"
    assert (first.session.username, first.session.display_name, first.session.is_admin) == ("bob", "Bob User", False)
    assert first.session.expires_at.timestamp() == NOW + 12 * 3600


def test_admins_are_marked(directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter) -> None:
    assert sign_in(directory, sessions, attempts, "CORP\\ada", "ada-password").session.is_admin is True


@pytest.mark.parametrize("password", ["", None])
def test_an_empty_password_is_refused_before_any_bind(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter, password: str | None
) -> None:
    with pytest.raises(InvalidCredentials):
        sign_in(directory, sessions, attempts, password=password or "")
    assert len(directory) == 0
    assert len(sessions) == 0


def test_wrong_password_and_unknown_user_get_the_same_error(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter
) -> None:
    with pytest.raises(InvalidCredentials) as wrong:
        sign_in(directory, sessions, attempts, password="nope")
    with pytest.raises(InvalidCredentials) as unknown:
        sign_in(directory, sessions, attempts, username="mallory", password="nope")
    assert wrong.value.body() == unknown.value.body()
    assert len(sessions) == 0


def test_five_failures_in_fifteen_minutes_lock_the_name_in_every_form(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter
) -> None:
    for n, typed in enumerate(["bob", "BOB", "CORP\\bob", "bob@corp.example", "bob"]):
        with pytest.raises(InvalidCredentials):
            sign_in(directory, sessions, attempts, username=typed, password="nope", now=NOW + n)

    with pytest.raises(TooManyAttempts) as locked:
        sign_in(directory, sessions, attempts, now=NOW + 60)  # even the right password
    assert locked.value.status == 429
    assert locked.value.headers["Retry-After"] == str(900 - 60)
    assert len(directory) == 5  # the sixth never reached the directory

    assert sign_in(directory, sessions, attempts, now=NOW + 900).token  # the window is over


def test_a_successful_sign_in_forgets_earlier_failures(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter
) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            sign_in(directory, sessions, attempts, password="nope")
    sign_in(directory, sessions, attempts)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            sign_in(directory, sessions, attempts, password="nope")
    assert sign_in(directory, sessions, attempts).token


def test_directory_down_is_unavailable_and_not_a_failed_attempt(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter
) -> None:
    directory.down = True
    for _ in range(7):
        with pytest.raises(DirectoryUnavailable):
            sign_in(directory, sessions, attempts)
    directory.down = False
    assert sign_in(directory, sessions, attempts).token


def test_authorize_session_accepts_a_live_token_only(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter
) -> None:
    token = sign_in(directory, sessions, attempts).token
    assert service(directory, sessions, now=NOW + 1).authorize_session(token) is not None

    assert service(directory, sessions, now=NOW).authorize_session(None) is None
    assert service(directory, sessions, now=NOW).authorize_session("") is None
    assert service(directory, sessions, now=NOW).authorize_session("short") is None
    assert service(directory, sessions, now=NOW).authorize_session(token + "!") is None
    assert service(directory, sessions, now=NOW).authorize_session("A" * 43) is None
    assert service(directory, sessions, now=NOW + 12 * 3600).authorize_session(token) is None  # expired


def test_sign_out_revokes_that_session_only(
    directory: FakeDirectory, sessions: FakeSessionStore, attempts: FakeAttemptCounter
) -> None:
    phone = sign_in(directory, sessions, attempts)
    laptop = sign_in(directory, sessions, attempts)

    service(directory, sessions).sign_out(phone.session.token_hash)

    assert service(directory, sessions, now=NOW).authorize_session(phone.token) is None
    assert service(directory, sessions, now=NOW).authorize_session(laptop.token) is not None
