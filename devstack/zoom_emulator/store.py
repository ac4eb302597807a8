"""The emulator's in-memory state: users, OAuth codes and grants, meetings, faults and the call log.

Every public method holds the one lock while it checks and changes state, so the threaded server
can call them concurrently: that is what makes two refreshes with the same token end with exactly
one winner, as at Zoom.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devstack.settings import LOCAL_ZOOM

from .errors import ApiError, OAuthError, invalid_access_token, invalid_field, meeting_not_found
from .meetings import USER_TIMEZONE, Meeting, MeetingChanges, meeting_listed, parse_start_time
from .recurrence import Occurrence, invalid_occurrence

SCOPE = "meeting:write meeting:read user:read"
CODE_TTL = 600  # Zoom's authorization codes are good for 10 minutes
VERIFIER_RE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 section 4.1
FAULT_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE", "*"})


@dataclass
class EmulatorConfig:
    client_id: str = LOCAL_ZOOM.client_id
    client_secret: str = LOCAL_ZOOM.client_secret
    webhook_secret: str = LOCAL_ZOOM.webhook_secret
    # Allowed redirect URIs, matched exactly; empty allows any http://127.0.0.1 or http://localhost URL.
    redirect_uris: list[str] = field(default_factory=list)
    access_token_ttl: int = 3599
    refresh_token_ttl: int = 90 * 86400
    daily_meeting_limit: int = 100  # meeting create + update requests per user per UTC day
    # The "day" of that limit; tests shorten it, and then the 429 carries a Retry-After to the window's end
    # (Zoom itself sends none for its daily limit: the quota comes back at 00:00 UTC).
    daily_window_s: int = 86400
    # How many access tokens of one user and app are valid at once. Zoom's default is 1: a refresh
    # or a new consent ends the access token issued before it.
    token_tolerance: int = 1


@dataclass(frozen=True)
class User:
    id: str
    email: str
    first_name: str
    last_name: str
    account_id: str

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "display_name": f"{self.first_name} {self.last_name}".strip(),
            "email": self.email,
            "account_id": self.account_id,
            "type": 2,
            "status": "active",
            "timezone": USER_TIMEZONE,
        }


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    user: User
    code_challenge: str | None
    expires_at: float
    used: bool = False
    grant: Grant | None = None  # the grant its exchange created: revoked if the code is replayed


@dataclass
class Grant:
    """One user's authorization of one app: its refresh token and live access tokens (oldest first)."""

    user: User
    client_id: str
    refresh_token: str
    refresh_expires_at: float
    access_tokens: dict[str, float] = field(default_factory=dict)  # token -> expires_at


@dataclass
class Fault:
    """A canned answer for the next `times` requests matching method and path prefix."""

    method: str = "*"
    path: str = "/"
    status: int | None = None  # None: only delay, then answer normally
    retry_after: int | None = None
    body: str | None = None  # raw body (e.g. "not json"); None: a Zoom-like JSON body for the status
    delay_ms: int = 0
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    # True: the request is handled for real (a create makes its meeting), then its answer is replaced by
    # this fault's status and body, e.g. a 201 whose body cannot be read.
    after_handling: bool = False

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.method not in FAULT_METHODS:
            raise ValueError(f"method must be one of {sorted(FAULT_METHODS)}")
        if not self.path.startswith("/"):
            raise ValueError("path must start with /")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.delay_ms < 0 or self.times < 1:
            raise ValueError("delay_ms must not be negative and times must be at least 1")
        if self.after_handling and self.status is None:
            raise ValueError("after_handling needs a status to answer with")

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and path.startswith(self.path)


def _stable_id(kind: str, value: str) -> str:
    # Zoom-like 22-character ids, stable per email so a user keeps their id across emulator restarts.
    digest = hashlib.sha256(f"{kind}:{value}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def personal_meeting_id(user_id: str) -> int:
    """The user's PMI: 10 digits (generated meeting ids have 11), stable per user."""
    return 10**9 + int.from_bytes(hashlib.sha256(f"pmi:{user_id}".encode()).digest()[:8], "big") % (9 * 10**9)


def _new_token() -> str:
    # Opaque, long and unique, so tests can search logs and tables for them.
    return "eyJ" + secrets.token_urlsafe(96)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _names(email: str) -> tuple[str, str]:
    parts = [part.capitalize() for part in re.split(r"[._+-]+", email.split("@", 1)[0]) if part]
    return (parts[0] if parts else email), " ".join(parts[1:])


def _invalid_code() -> OAuthError:
    return OAuthError(400, "invalid_grant", "Invalid authorization code")


def _invalid_refresh_token() -> OAuthError:
    return OAuthError(400, "invalid_grant", "Invalid Token!")


class Store:
    """All emulator state; `base_url` is where the server listens (join URLs point there)."""

    def __init__(self, config: EmulatorConfig, base_url: str = "http://127.0.0.1") -> None:
        self.config = config
        self.base_url = base_url
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything but the configuration, as a fresh emulator."""
        with self._lock:
            self._clock_offset = 0.0
            self._users: dict[str, User] = {}
            self._codes: dict[str, AuthCode] = {}
            self._grants: dict[tuple[str, str], Grant] = {}  # (user id, client id) -> the one live grant
            self._by_access: dict[str, Grant] = {}
            self._by_refresh: dict[str, Grant] = {}
            self._meetings: dict[int, Meeting] = {}
            self._daily: dict[tuple[str, str], int] = {}  # (user id, UTC date) -> create/update requests
            self._use_pmi: set[str] = set()  # ids of users whose profile says "use Personal Meeting ID"
            self._faults: list[Fault] = []
            self._calls: list[dict[str, Any]] = []
            self._latency_ms = 0

    # --- clock: token lifetimes, codes and the daily limit follow it; tests move it forward.

    def now(self) -> float:
        return time.time() + self._clock_offset

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def advance_clock(self, seconds: float) -> float:
        with self._lock:
            self._clock_offset += seconds
            return self._clock_offset

    # --- users and OAuth

    def sign_in(self, email: str) -> User:
        """Any email signs in; the user is created on first sign-in."""
        key = email.strip().lower()
        with self._lock:
            user = self._users.get(key)
            if user is None:
                first, last = _names(key)
                user = User(_stable_id("user", key), key, first, last, _stable_id("account", key))
                self._users[key] = user
            return user

    def user_by_email(self, email: str) -> User | None:
        with self._lock:
            return self._users.get(email.strip().lower())

    def issue_code(self, user: User, client_id: str, redirect_uri: str, code_challenge: str | None) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = AuthCode(client_id, redirect_uri, user, code_challenge, self.now() + CODE_TTL)
        return code

    def exchange_code(self, client_id: str, code: str, redirect_uri: str, code_verifier: str | None) -> dict[str, Any]:
        with self._lock:
            record = self._codes.get(code)
            if record is None or record.client_id != client_id:
                raise _invalid_code()
            if record.used:
                # A replayed code means it leaked: revoke what it was exchanged for (RFC 6749 4.1.2).
                if record.grant is not None:
                    self._revoke(record.grant)
                raise _invalid_code()
            record.used = True  # any attempt spends the code, a failed one too
            if record.expires_at <= self.now():
                raise _invalid_code()
            if redirect_uri != record.redirect_uri:
                raise OAuthError(400, "invalid_request", "Redirect URI mismatch.")
            if record.code_challenge is not None and (
                code_verifier is None
                or not VERIFIER_RE.fullmatch(code_verifier)
                or not hmac.compare_digest(_s256(code_verifier), record.code_challenge)
            ):
                raise _invalid_code()
            # One authorization per user and app: a new consent ends the previous grant's tokens.
            previous = self._grants.get((record.user.id, client_id))
            if previous is not None:
                self._revoke(previous)
            grant = Grant(record.user, client_id, "", 0.0)
            self._grants[(record.user.id, client_id)] = grant
            record.grant = grant
            return self._issue_tokens(grant)

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        with self._lock:
            grant = self._by_refresh.get(refresh_token)
            if grant is None or grant.client_id != client_id or grant.refresh_expires_at <= self.now():
                raise _invalid_refresh_token()
            return self._issue_tokens(grant)

    def revoke(self, client_id: str, token: str) -> None:
        """Ends the grant of a live access token, the one token Zoom documents for /oauth/revoke.

        Strict where Zoom's documentation says nothing more: a refresh token, an expired or unknown access token
        or another app's token is 400 `Invalid Token!` and ends nothing (so a client must refresh first).
        """
        with self._lock:
            grant = self._by_access.get(token)
            if grant is None or grant.client_id != client_id or grant.access_tokens[token] <= self.now():
                raise OAuthError(400, "invalid_request", "Invalid Token!")
            self._revoke(grant)

    def authenticate(self, access_token: str) -> User:
        with self._lock:
            grant = self._by_access.get(access_token)
            if grant is None:
                raise invalid_access_token()
            if grant.access_tokens[access_token] <= self.now():
                raise ApiError(401, 124, "Access token is expired.")
            return grant.user

    def expire_access_tokens(self, email: str) -> int:
        """Makes the user's access tokens expired (refresh tokens still work); returns how many."""
        with self._lock:
            expired = self.now() - 1
            count = 0
            for grant in self._grants_of(email):
                for token in grant.access_tokens:
                    grant.access_tokens[token] = expired
                    count += 1
            return count

    def deauthorize(self, email: str) -> int:
        """The user removes the app at Zoom: all their grants end. Returns how many."""
        with self._lock:
            grants = self._grants_of(email)
            for grant in grants:
                self._revoke(grant)
            return len(grants)

    def _grants_of(self, email: str) -> list[Grant]:
        user = self.user_by_email(email)
        return [grant for grant in self._grants.values() if user is not None and grant.user == user]

    def _issue_tokens(self, grant: Grant) -> dict[str, Any]:
        now = self.now()
        self._by_refresh.pop(grant.refresh_token, None)  # rotation: the old refresh token dies at once
        grant.refresh_token = _new_token()
        grant.refresh_expires_at = now + self.config.refresh_token_ttl
        self._by_refresh[grant.refresh_token] = grant
        access_token = _new_token()
        grant.access_tokens[access_token] = now + self.config.access_token_ttl
        self._by_access[access_token] = grant
        while len(grant.access_tokens) > max(1, self.config.token_tolerance):
            oldest = next(iter(grant.access_tokens))
            del grant.access_tokens[oldest]
            self._by_access.pop(oldest, None)
        return {
            "access_token": access_token,
            "token_type": "bearer",
            "refresh_token": grant.refresh_token,
            "expires_in": self.config.access_token_ttl,
            "scope": SCOPE,
        }

    def _revoke(self, grant: Grant) -> None:
        self._by_refresh.pop(grant.refresh_token, None)
        for token in grant.access_tokens:
            self._by_access.pop(token, None)
        grant.access_tokens.clear()
        key = (grant.user.id, grant.client_id)
        if self._grants.get(key) is grant:
            del self._grants[key]

    # --- meetings

    def set_daily_limit(self, limit: int | None = None, window_s: int | None = None) -> None:
        with self._lock:
            if limit is not None:
                self.config.daily_meeting_limit = limit
            if window_s is not None:
                self.config.daily_window_s = window_s

    def count_meeting_request(self, user: User) -> None:
        """Zoom's daily limit on meeting creates and updates, counted per user and UTC day, invalid ones too."""
        with self._lock:
            window = self.config.daily_window_s
            now = self.now()
            key = (user.id, str(int(now // window)))
            if self._daily.get(key, 0) >= self.config.daily_meeting_limit:
                headers = {
                    "X-RateLimit-Type": "Daily-limit",
                    "X-RateLimit-Limit": str(self.config.daily_meeting_limit),
                    "X-RateLimit-Remaining": "0",
                }
                if window != 86400:
                    headers["Retry-After"] = str(math.ceil(window - now % window))
                raise ApiError(429, 429, "You have reached the maximum per day limit for this API.", headers=headers)
            self._daily[key] = self._daily.get(key, 0) + 1

    def set_use_pmi(self, user: User, use_pmi: bool) -> None:
        """The user's profile setting "use Personal Meeting ID when scheduling a meeting"."""
        with self._lock:
            (self._use_pmi.add if use_pmi else self._use_pmi.discard)(user.id)

    def create_meeting(self, user: User, changes: MeetingChanges) -> dict[str, Any]:
        with self._lock:
            now = self.utcnow().replace(microsecond=0)
            if self._takes_pmi(user, changes):
                # As at Zoom: the meeting IS the user's PMI, shared by every meeting scheduled with it.
                pmi = personal_meeting_id(user.id)
                meeting = self._meetings.get(pmi) or Meeting(
                    pmi, user.id, user.email, self.base_url, created_at=now, start_time=now
                )
                meeting.apply(changes, now)
                meeting.settings["use_pmi"] = True
                self._meetings[pmi] = meeting
                return meeting.to_api()
            meeting_id = secrets.randbelow(9 * 10**10) + 10**10  # 11 digits, like Zoom's
            while meeting_id in self._meetings:
                meeting_id = secrets.randbelow(9 * 10**10) + 10**10
            meeting = Meeting(meeting_id, user.id, user.email, self.base_url, created_at=now, start_time=now)
            meeting.apply(changes, now)
            self._meetings[meeting_id] = meeting
            return meeting.to_api()

    def _takes_pmi(self, user: User, changes: MeetingChanges) -> bool:
        return user.id in self._use_pmi and (changes.settings or {}).get("use_pmi") is not False

    def get_meeting(self, user: User, meeting_id: str) -> dict[str, Any]:
        with self._lock:
            return self._own_meeting(user, meeting_id).to_api()

    def update_meeting(self, user: User, meeting_id: str, changes: MeetingChanges) -> None:
        with self._lock:
            meeting = self._own_meeting(user, meeting_id)
            updated = copy.deepcopy(meeting)  # a refused change leaves the meeting as it was
            updated.apply(changes, self.utcnow())
            self._meetings[meeting.id] = updated

    def update_occurrence(self, user: User, meeting_id: str, occurrence_id: str, changes: MeetingChanges) -> None:
        """PATCH ?occurrence_id=: moves one occurrence (its id stays its original start)."""
        with self._lock:
            occurrence = self._own_occurrence(user, meeting_id, occurrence_id)
            if changes.start_time is not None:
                meeting = self._own_meeting(user, meeting_id)
                start = parse_start_time(changes.start_time, meeting.timezone)
                if start is None:
                    raise invalid_field("start_time", "Invalid start_time for the occurrence.")
                occurrence.start_time = start
            if changes.duration is not None:
                occurrence.duration = changes.duration
            if changes.agenda is not None:
                occurrence.agenda = changes.agenda
            if changes.settings is not None:
                occurrence.settings = {**occurrence.settings, **changes.settings}

    def delete_occurrence(self, user: User, meeting_id: str, occurrence_id: str) -> dict[str, Any]:
        """DELETE ?occurrence_id=: that occurrence only; returns the meeting as it is afterwards."""
        with self._lock:
            self._own_occurrence(user, meeting_id, occurrence_id).status = "deleted"
            return self._own_meeting(user, meeting_id).to_api()

    def _own_occurrence(self, user: User, meeting_id: str, occurrence_id: str) -> Occurrence:
        occurrence = self._own_meeting(user, meeting_id).occurrence(occurrence_id)
        if occurrence is None:
            raise invalid_occurrence(occurrence_id)
        return occurrence

    def delete_meeting(self, user: User, meeting_id: str) -> None:
        with self._lock:
            del self._meetings[self._own_meeting(user, meeting_id).id]

    def _own_meeting(self, user: User, meeting_id: str) -> Meeting:
        # Zoom answers 3001 for another user's meeting too, so ids cannot be probed.
        meeting = self._meetings.get(int(meeting_id)) if meeting_id.isascii() and meeting_id.isdigit() else None
        if meeting is None or meeting.host_id != user.id:
            raise meeting_not_found(meeting_id)
        return meeting

    def list_meetings(self, user: User, kind: str, offset: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the user's meetings of `kind` (LIST_TYPES), by start time, and how many there are in all."""
        with self._lock:
            now = self.utcnow()
            own = [meeting for meeting in self._meetings.values() if meeting.host_id == user.id]
            chosen = sorted(
                (meeting for meeting in own if meeting_listed(meeting, kind, now)),
                key=lambda meeting: (meeting.start_time, meeting.id),
            )
            return [meeting.to_list_item() for meeting in chosen[offset : offset + page_size]], len(chosen)

    def meetings(self) -> list[dict[str, Any]]:
        """Every meeting as Zoom shows it, plus the emulator's `start_time_replaced` note."""
        with self._lock:
            return [
                {**meeting.to_api(), "start_time_replaced": meeting.start_time_replaced}
                for meeting in self._meetings.values()
            ]

    def remove_meeting(self, meeting_id: int, occurrence_id: str | None = None) -> dict[str, Any] | None:
        """The host deletes the meeting (or one occurrence of it) in the Zoom app; returns the meeting as it
        was, or None if there was none (or no such occurrence)."""
        with self._lock:
            if occurrence_id is None:
                meeting = self._meetings.pop(meeting_id, None)
                return None if meeting is None else meeting.to_api()
            found = self._meetings.get(meeting_id)
            occurrence = found.occurrence(occurrence_id) if found is not None else None
            if found is None or occurrence is None:
                return None
            occurrence.status = "deleted"
            return found.to_api()

    # --- faults, latency and the call log

    def add_fault(
        self,
        method: str = "*",
        path: str = "/",
        status: int | None = None,
        *,
        retry_after: int | None = None,
        body: str | None = None,
        delay_ms: int = 0,
        times: int = 1,
        headers: dict[str, str] | None = None,
        after_handling: bool = False,
    ) -> Fault:
        fault = Fault(method, path, status, retry_after, body, delay_ms, times, dict(headers or {}), after_handling)
        with self._lock:
            self._faults.append(fault)
        return copy.deepcopy(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        with self._lock:
            return copy.deepcopy(self._faults)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first queued fault matching the request, used up by one."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return copy.deepcopy(fault)
            return None

    @property
    def latency_ms(self) -> int:
        with self._lock:
            return self._latency_ms

    def set_latency(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            self._latency_ms = ms

    def record_call(self, method: str, path: str, status: int, ts: float) -> None:
        with self._lock:
            self._calls.append({"method": method, "path": path, "status": status, "ts": ts})

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every request outside /_emulator, oldest first: method, path (no query), status, ts (epoch seconds)."""
        with self._lock:
            return [dict(call) for call in self._calls]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()
