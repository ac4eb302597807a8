"""Signing in with Active Directory credentials, sessions, and what the authorizer checks on every request.

The directory, the session store and the attempt counter are ports: `link_zoom.composition.identity()` wires
the LDAP and DynamoDB adapters, tests pass in-memory fakes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from link_zoom.errors import DirectoryUnavailable, InvalidCredentials, TooManyAttempts
from link_zoom.observability import count, logger

MAX_FAILED_ATTEMPTS = 5
ATTEMPT_WINDOW_SECONDS = 15 * 60
# Password spraying (one password tried against many names) passes the per-name limit: one address gets 50.
MAX_FAILED_FROM_SOURCE = 50
# 32 random bytes = 256 bits; token_urlsafe gives 43 characters of [A-Za-z0-9_-], as the authorizer expects.
TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,200}")
# AD caps sAMAccountName at 20 and a UPN at 1024 characters, passwords at 256.
MAX_USERNAME_LENGTH = 256
MAX_PASSWORD_LENGTH = 1024
# Characters AD never allows in an account name. Control characters matter most: the directory truncates a
# bind name at NUL, so "bob@corp.example\0junk" would otherwise authenticate as bob.
_FORBIDDEN_IN_ACCOUNT = re.compile(r'[\x00-\x1f\x7f"/\\\[\]:;|=,+*?<>@]')

UsernameForm = Literal["upn", "down_level", "bare"]


@dataclass(frozen=True)
class Login:
    """A username as typed, split into its form: `alice@corp.example`, `CORP\\alice` or `alice`."""

    form: UsernameForm
    account: str  # sAMAccountName, or the UPN's local part
    domain: str | None  # the UPN suffix or the NetBIOS domain; None for a bare name
    typed: str

    @property
    def throttle_key(self) -> str:
        """One counter per person whatever form they type, and no raw (maybe mistyped-password) names stored."""
        return hashlib.sha256(self.account.casefold().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DirectoryUser:
    user_id: str  # objectGUID, canonical lower case
    username: str  # sAMAccountName
    display_name: str
    is_admin: bool


@dataclass(frozen=True)
class SessionRecord:
    token_hash: str
    user_id: str
    username: str
    display_name: str
    is_admin: bool
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    token: str  # handed to the client once; only its hash is kept
    session: SessionRecord


class Directory(Protocol):
    def authenticate(self, login: Login, password: str) -> DirectoryUser:
        """Bind as the user; raise InvalidCredentials or DirectoryUnavailable."""
        ...


class SessionStore(Protocol):
    def save(self, session: SessionRecord) -> None: ...

    def find(self, token_hash: str) -> SessionRecord | None: ...

    def delete(self, token_hash: str) -> None: ...


class AttemptCounter(Protocol):
    def reserve(self, key: str, now: float) -> int:
        """Count one attempt atomically; 0 when allowed, else the seconds until the window ends."""
        ...

    def release(self, key: str) -> None:
        """Give back a reserved attempt that was not a credential failure (the directory was down)."""
        ...

    def clear(self, key: str) -> None: ...


def parse_username(typed: str) -> Login:
    """The three forms the contract accepts; anything else (control characters, `*`, two separators) is refused."""
    name = typed.strip()
    if not name or len(name) > MAX_USERNAME_LENGTH:
        raise InvalidCredentials()
    form: UsernameForm
    if "\\" in name:
        domain, _, account = name.partition("\\")
        form = "down_level"
    elif "@" in name:
        account, _, domain = name.rpartition("@")
        form = "upn"
        domain = domain.lower()
    else:
        account, domain, form = name, "", "bare"
    if not account or _FORBIDDEN_IN_ACCOUNT.search(account) or _FORBIDDEN_IN_ACCOUNT.search(domain):
        raise InvalidCredentials()
    if form != "bare" and not domain:
        raise InvalidCredentials()
    return Login(form=form, account=account, domain=domain or None, typed=name)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Identity:
    directory: Directory
    sessions: SessionStore
    attempts: AttemptCounter
    session_ttl_seconds: int
    clock: Callable[[], float] = time.time
    source_attempts: AttemptCounter | None = None  # failed sign-ins per address (MAX_FAILED_FROM_SOURCE)

    def sign_in(self, username: str, password: str, source_ip: str | None = None) -> SignedIn:
        """`source_ip` is API Gateway's requestContext.identity.sourceIp: failures per address are counted too."""
        # An LDAP simple bind with an empty password is an anonymous bind that "succeeds": refuse it first.
        if not password or len(password) > MAX_PASSWORD_LENGTH:
            raise _refused("unusable_password")
        try:
            login = parse_username(username)
        except InvalidCredentials:
            raise _refused("unusable_username") from None
        clock = self.clock()
        throttle = _Throttle(
            self.attempts,
            login.throttle_key,
            self.source_attempts if source_ip else None,
            _source_key(source_ip) if source_ip else None,
        )
        throttle.reserve(clock)
        try:
            user = self.directory.authenticate(login, password)
        except InvalidCredentials:
            raise _refused("directory_refused", login.form) from None  # counted for the name and the address
        except DirectoryUnavailable:
            throttle.release()
            count("DirectoryUnavailable")
            raise
        throttle.succeeded()

        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = SessionRecord(
            token_hash=hash_token(token),
            user_id=user.user_id,
            username=user.username,
            display_name=user.display_name,
            is_admin=user.is_admin,
            expires_at=datetime.fromtimestamp(int(clock) + self.session_ttl_seconds, UTC),
        )
        self.sessions.save(session)
        count("SignIns")
        logger.info("signed in", extra={"user_id": user.user_id, "is_admin": user.is_admin})
        return SignedIn(token=token, session=session)

    def sign_out(self, session_id: str) -> None:
        """Revoke one session (the one the authorizer found for this request); the user's others live on."""
        self.sessions.delete(session_id)
        count("SignOuts")
        logger.info("signed out")

    def authorize_session(self, token: str | None) -> SessionRecord | None:
        """The live session a bearer token names, or None (missing, malformed, unknown, revoked or expired)."""
        if not token or not TOKEN_PATTERN.fullmatch(token):
            return None
        session = self.sessions.find(hash_token(token))
        # DynamoDB's TTL deletes expired items only eventually (up to days later): check the time ourselves.
        if session is None or session.expires_at.timestamp() <= self.clock():
            return None
        return session


@dataclass(frozen=True)
class _Throttle:
    """The per-name counter and, when the address is known, the per-address one: both count a failed sign-in."""

    names: AttemptCounter
    name_key: str
    sources: AttemptCounter | None
    source_key: str | None

    def reserve(self, now: float) -> None:
        if self.sources is not None and self.source_key is not None:
            retry_after = self.sources.reserve(self.source_key, now)
            if retry_after:
                raise _throttled("too_many_attempts_from_source", retry_after)
        retry_after = self.names.reserve(self.name_key, now)
        if retry_after:
            self._release_source()  # never reached the directory: not a failed sign-in of this address
            raise _throttled("too_many_attempts", retry_after)

    def release(self) -> None:
        """The attempt did not happen (the directory was down)."""
        self.names.release(self.name_key)
        self._release_source()

    def succeeded(self) -> None:
        # A success ends the name's window; for the address it only is not a failure (a spray may guess right).
        self.names.clear(self.name_key)
        self._release_source()

    def _release_source(self) -> None:
        if self.sources is not None and self.source_key is not None:
            self.sources.release(self.source_key)


def _throttled(reason: str, retry_after: int) -> TooManyAttempts:
    count("SignInsThrottled")
    logger.info("sign-in refused", extra={"reason": reason})
    return TooManyAttempts(retry_after)


def _source_key(source_ip: str) -> str:
    """Kept beside the names' counters (those are bare SHA-256 hex), hashed like them: no raw addresses stored."""
    return "source:" + hashlib.sha256(source_ip.strip().lower().encode("utf-8")).hexdigest()


def _refused(reason: str, username_form: str | None = None) -> InvalidCredentials:
    """One code and one message for every credential failure; the reason goes to the log only."""
    count("SignInFailures")
    logger.info("sign-in refused", extra={"reason": reason, "username_form": username_form})
    return InvalidCredentials()
