"""A user's Zoom connection: consent (authorization code + PKCE), the one path to a valid access token,
refreshes under a lock, disconnecting, and the keeper that refreshes aging connections.

Zoom rotates refresh tokens (the old one dies on use), so two refreshes of one connection with the same
token lose it. Every refresh therefore runs under a conditional-write lock on the connection item: one
caller refreshes, the others poll the item and use its result.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlencode

from link_zoom.config import get_settings
from link_zoom.errors import ZoomGrantRevoked, ZoomRateLimited, ZoomTokenRejected, ZoomUnavailable
from link_zoom.observability import count, logger

if TYPE_CHECKING:
    from link_zoom.adapters.connections_store import ConnectionRecord
    from link_zoom.adapters.crypto import Sealed
    from link_zoom.adapters.zoom_oauth import ZoomTokens

T = TypeVar("T")

CONNECTION_LIFETIME = timedelta(days=365)
STATE_LIFETIME = timedelta(minutes=10)
PREFERENCE = ("Zoom", "oauth")  # the My Account row that stands for the connection
# Refresh this long before Zoom's expiry, so no call starts with an access token about to die.
REFRESH_MARGIN_SECONDS = 120
# Longer than a refresh can take (Zoom's connect + read timeouts, KMS, DynamoDB): a live holder keeps it.
LOCK_SECONDS = 25
# Waiters give up before an API function's timeout; a crashed holder's lock then runs out by itself.
WAIT_SECONDS = 14.0
POLL_SECONDS = 0.1
KEEPER_REFRESH_AGE = timedelta(days=60)  # refresh tokens live 90 days
KEEPER_WORKERS = 8
KEEPER_RESERVE_MS = 60_000  # no new refresh starts with less than this left of the invocation


@dataclass(frozen=True)
class ConnectionStatus:
    connected: bool
    reauthorize_after: datetime | None


@dataclass(frozen=True)
class AuthorizationStart:
    authorize_url: str
    expires_at: datetime


@dataclass(frozen=True)
class CompletedConnection:
    user_id: str
    reauthorize_after: datetime


@dataclass(frozen=True)
class KeeperSummary:
    candidates: int  # connections whose refresh token was older than the cut-off when scanned
    refreshed: int
    skipped: int  # refreshed by someone else meanwhile
    lost: int  # Zoom refused the refresh token (app removed) or the connection ended meanwhile
    failed: int  # Zoom or AWS failed; the connection is kept for the next run
    stopped_early: bool  # the invocation's time ran low before every candidate was handled
    seconds: float

    def as_dict(self) -> dict[str, int | bool | float]:
        return asdict(self)


class ConnectionGone(Exception):
    """The user has no usable Zoom connection (never connected, disconnected, revoked at Zoom, expired).

    Callers answer `403 zoom_authorization_required` (with `authorize_url_for(...)`) or mark the event
    `authorization_required`.
    """


class AuthorizationRefused(Exception):
    """The callback cannot connect Zoom: a bad, expired or reused state, or the user declined (400 page)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConnectionNotStored(Exception):
    """The callback got tokens from Zoom but could not store them (KMS or DynamoDB failed): a 502 page.

    The tokens were revoked at Zoom (best effort); the user starts again from Link.
    """


@dataclass(frozen=True)
class _Tokens:
    access_token: str
    refresh_token: str
    generation: str

    def __repr__(self) -> str:  # keeps tokens out of tracebacks and debug output
        return f"_Tokens(generation={self.generation!r})"


# --- status, consent and disconnect


def connection_status(user_id: str) -> ConnectionStatus:
    from link_zoom.adapters import connections_store

    record = connections_store.get(user_id)
    if record is None or record.expires_at <= datetime.now(UTC):
        return ConnectionStatus(connected=False, reauthorize_after=None)
    return ConnectionStatus(connected=True, reauthorize_after=record.expires_at)


def redirect_uri_for(base_url: str) -> str:
    return get_settings().zoom_redirect_url or f"{base_url.rstrip('/')}/v1/zoom/callback"


def start_authorization(user_id: str, redirect_uri: str) -> AuthorizationStart:
    """Zoom's authorize URL with a single-use state (10 minutes) bound to the user and a PKCE S256 challenge."""
    from link_zoom.adapters import oauth_states_store

    settings = get_settings()
    state = secrets.token_urlsafe(32)
    code_verifier = secrets.token_urlsafe(64)  # 86 characters of RFC 7636's unreserved set
    expires_at = datetime.now(UTC).replace(microsecond=0) + STATE_LIFETIME
    oauth_states_store.put(
        _state_hash(state),
        oauth_states_store.PendingAuthorization(user_id, code_verifier, redirect_uri, expires_at),
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.zoom_client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": _s256(code_verifier),
            "code_challenge_method": "S256",
        }
    )
    return AuthorizationStart(f"{settings.zoom_oauth_base_url}/oauth/authorize?{query}", expires_at)


def authorize_url_for(user_id: str, redirect_uri: str) -> str:
    """For `ZoomAuthorizationRequired(authorize_url)`: a URL the client can open at once."""
    return start_authorization(user_id, redirect_uri).authorize_url


def complete_authorization(state: str | None, code: str | None, error: str | None) -> CompletedConnection:
    """The callback: spends the state, exchanges the code (with the state's PKCE verifier), stores the connection.

    Raises AuthorizationRefused (a 400 page), ZoomUnavailable (502: the exchange failed) or
    ConnectionNotStored (502: KMS or DynamoDB failed; the new tokens were revoked at Zoom).
    """
    from link_zoom.adapters import oauth_states_store, zoom_oauth

    pending = oauth_states_store.take(_state_hash(state)) if state else None  # spent whatever comes next
    if error == "access_denied":
        raise AuthorizationRefused("Zoom was not connected because access was declined.")
    if pending is None:
        raise AuthorizationRefused("This Zoom sign-in is not valid or was already used. Start again from Link.")
    if pending.expires_at <= datetime.now(UTC):
        raise AuthorizationRefused("This Zoom sign-in took longer than 10 minutes. Start again from Link.")
    if error or not code:
        raise AuthorizationRefused("Zoom did not complete the sign-in. Start again from Link.")
    try:
        tokens = zoom_oauth.exchange_code(code, pending.redirect_uri, pending.code_verifier)
    except ZoomGrantRevoked as exc:  # the code was spent, expired or its verifier did not match
        count("ZoomErrors")
        logger.warning("Zoom refused the authorization code")
        raise ZoomUnavailable() from exc
    except ZoomRateLimited as exc:  # the callback's pages know no 429: the exchange failed (the adapter logged it)
        raise ZoomUnavailable() from exc
    try:
        zoom_user = zoom_oauth.current_user(tokens.access_token)
    except (ZoomTokenRejected, ZoomUnavailable) as exc:
        _revoke_quietly(tokens.refresh_token)  # not stored, so it must not stay alive at Zoom
        raise ZoomUnavailable() from exc
    try:
        return _store_new_connection(pending.user_id, zoom_user.id, zoom_user.account_id, tokens)
    except Exception as exc:  # KMS or DynamoDB: nothing of the error names a token (the tokens' repr hides them)
        logger.exception("could not store the new Zoom connection", extra={"user_id": pending.user_id})
        _revoke_quietly(tokens.refresh_token)  # not stored, so it must not stay alive at Zoom
        raise ConnectionNotStored() from exc


def _store_new_connection(
    user_id: str, zoom_user_id: str, zoom_account_id: str | None, tokens: ZoomTokens
) -> CompletedConnection:
    from botocore.exceptions import BotoCoreError, ClientError

    from link_zoom.adapters import connections_store, preferences_store, sweep_queue

    now = time.time()
    consented_at = datetime.fromtimestamp(int(now), UTC)
    record = connections_store.ConnectionRecord(
        user_id=user_id,
        zoom_user_id=zoom_user_id,
        zoom_account_id=zoom_account_id,
        sealed=_seal(user_id, tokens),
        generation=uuid.uuid4().hex,
        access_expires_at=now + tokens.expires_in,
        refresh_issued_at=now,
        consented_at=consented_at,
        expires_at=consented_at + CONNECTION_LIFETIME,
    )
    connections_store.put(record)
    try:
        preferences_store.upsert_preference(user_id, *PREFERENCE)
    except Exception:
        # The caller revokes these tokens: the record holding them must not stay (nor a previous row alone).
        try:
            _remove(user_id, generation=record.generation)
        except Exception:
            logger.exception("could not remove a half-stored Zoom connection", extra={"user_id": user_id})
        raise
    count("ZoomConnected")
    logger.info("Zoom connected", extra={"user_id": user_id})
    try:
        sweep_queue.request_sweep(user_id)
    except (BotoCoreError, ClientError):
        # The connection stands; the waiting events get their meetings on their next change instead.
        logger.exception("could not queue the post-connect sweep", extra={"user_id": user_id})
    return CompletedConnection(user_id, record.expires_at)


def disconnect(user_id: str) -> bool:
    """Revokes at Zoom (best effort), deletes the connection and its preference row; False if there was nothing."""
    from link_zoom.adapters import connections_store, preferences_store
    from link_zoom.adapters.crypto import SealBroken

    record = connections_store.get(user_id)
    if record is not None:
        try:
            _revoke_quietly(_unseal(record).refresh_token)
        except SealBroken:
            logger.warning("stored Zoom tokens do not decrypt; deleting without revoking", extra={"user_id": user_id})
    removed = record is not None and connections_store.delete(user_id)
    had_row = preferences_store.delete_preference(user_id, *PREFERENCE)
    if removed:
        count("ZoomDisconnected")
        logger.info("Zoom disconnected", extra={"user_id": user_id})
    return removed or had_row


def forget_zoom_user(zoom_user_id: str, deauthorized_at: datetime) -> int:
    """Zoom's `app_deauthorized`: deletes the connections to that Zoom user consented at or before
    `deauthorized_at` (and their rows); a user who consented again since keeps the new connection.
    Returns how many were deleted.
    """
    from link_zoom.adapters import connections_store

    before = deauthorized_at.timestamp()
    return sum(
        _remove(user_id, consented_by=before) for user_id in connections_store.user_ids_of_zoom_user(zoom_user_id)
    )


# --- using a connection


def call_zoom(user_id: str, operation: Callable[[str], T]) -> T:
    """Runs `operation` with a valid access token of the user: the one path to a user's Zoom token.

    An access token near its expiry is refreshed first. If Zoom rejects the token (`ZoomTokenRejected`), it is
    refreshed once and the operation retried; a second rejection means the app was removed at Zoom, so the
    connection is deleted and ConnectionGone raised (as when there is no connection at all).
    """
    tokens = _tokens_for(user_id, _access_expiring)
    try:
        return operation(tokens.access_token)
    except ZoomTokenRejected:
        logger.info("Zoom rejected the access token; refreshing once", extra={"user_id": user_id})
    rejected = tokens.generation
    tokens = _tokens_for(user_id, lambda record: record.generation == rejected)
    try:
        return operation(tokens.access_token)
    except ZoomTokenRejected:
        logger.info("Zoom rejected a fresh access token: the app was removed", extra={"user_id": user_id})
    _remove(user_id, generation=tokens.generation)  # a newer consent made meanwhile is kept
    raise ConnectionGone()


def _access_expiring(record: ConnectionRecord) -> bool:
    return record.access_expires_at - REFRESH_MARGIN_SECONDS <= time.time()


def _tokens_for(user_id: str, needs_refresh: Callable[[ConnectionRecord], bool]) -> _Tokens:
    record, fresh = _refresh_if(user_id, needs_refresh)
    return fresh or _open(record)


def _refresh_if(
    user_id: str, needs_refresh: Callable[[ConnectionRecord], bool]
) -> tuple[ConnectionRecord, _Tokens | None]:
    """The current record and, if `needs_refresh` held for it, the tokens of the one refresh made for it.

    Whoever takes the lock refreshes; everyone else polls the item until `needs_refresh` no longer holds
    (the holder wrote new tokens) or the lock is theirs to take (the holder failed or died).
    """
    from link_zoom.adapters import connections_store

    give_up = time.monotonic() + WAIT_SECONDS
    while True:
        record = connections_store.get(user_id)
        if record is None:
            raise ConnectionGone()
        if record.expires_at <= datetime.now(UTC):
            _remove(user_id, generation=record.generation)  # TTL deletes it only eventually; the row goes too
            raise ConnectionGone()
        if not needs_refresh(record):
            return record, None
        owner = uuid.uuid4().hex
        now = time.time()
        if connections_store.try_lock(user_id, record.generation, owner, now, now + LOCK_SECONDS):
            fresh = _refresh_locked(record, owner)
            if fresh is not None:
                return record, fresh
        if time.monotonic() >= give_up:
            logger.warning("gave up waiting for a Zoom token refresh", extra={"user_id": user_id})
            raise ZoomUnavailable()
        time.sleep(POLL_SECONDS)


def _refresh_locked(record: ConnectionRecord, owner: str) -> _Tokens | None:
    """Refreshes with the lock held; None when the connection changed meanwhile (the caller looks again)."""
    from link_zoom.adapters import connections_store, zoom_oauth

    user_id = record.user_id
    try:
        answer = zoom_oauth.refresh(_open(record).refresh_token)
    except ZoomGrantRevoked:
        logger.info("Zoom refused the refresh token (invalid_grant): connection gone", extra={"user_id": user_id})
        if _remove(user_id, generation=record.generation):
            raise ConnectionGone() from None
        connections_store.release_lock(user_id, owner)
        return None
    except BaseException:
        connections_store.release_lock(user_id, owner)
        raise
    # Zoom has rotated the refresh token: from here on only the answer is worth anything.
    generation = uuid.uuid4().hex
    now = time.time()
    try:
        written = connections_store.write_tokens(
            user_id,
            owner=owner,
            previous_generation=record.generation,
            generation=generation,
            sealed=_seal(user_id, answer),
            access_expires_at=now + answer.expires_in,
            refresh_issued_at=now,
        )
    except BaseException:
        connections_store.release_lock(user_id, owner)
        raise
    if not written:
        # Disconnected or connected anew while we refreshed: these tokens must not outlive that.
        _revoke_quietly(answer.refresh_token)
        return None
    count("ZoomRefreshes")
    return _Tokens(answer.access_token, answer.refresh_token, generation)


# --- the keeper


def refresh_aging_connections(
    remaining_ms: Callable[[], int],
    *,
    older_than: timedelta = KEEPER_REFRESH_AGE,
    workers: int = KEEPER_WORKERS,
    reserve_ms: int = KEEPER_RESERVE_MS,
) -> KeeperSummary:
    """Refreshes every connection whose refresh token is older than `older_than`, `workers` at a time,
    under the same lock as `call_zoom`, starting no new refresh once `remaining_ms()` drops below `reserve_ms`.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    from link_zoom.adapters import connections_store

    started = time.monotonic()
    cutoff = time.time() - older_than.total_seconds()
    outcomes: Counter[str] = Counter()
    candidates = 0
    stopped_early = False
    pending: set[Future[str]] = set()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keeper") as pool:
        for user_id in connections_store.user_ids_refreshed_before(cutoff):
            if remaining_ms() < reserve_ms:
                stopped_early = True
                break
            # A short queue: the time check above stays meaningful and the scan no faster than the work.
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                outcomes.update(future.result() for future in done)
            candidates += 1
            # In a copy of this context: context-bound state (locally, the acting function) follows the task.
            pending.add(pool.submit(contextvars.copy_context().run, _keep_fresh, user_id, cutoff))
        outcomes.update(future.result() for future in wait(pending).done)
    summary = KeeperSummary(
        candidates=candidates,
        refreshed=outcomes["refreshed"],
        skipped=outcomes["skipped"],
        lost=outcomes["lost"],
        failed=outcomes["failed"],
        stopped_early=stopped_early,
        seconds=round(time.monotonic() - started, 3),
    )
    count("ConnectionsRefreshed", summary.refreshed)
    count("RefreshFailures", summary.failed)
    count("ConnectionsLost", summary.lost)
    logger.info("keeper run finished", extra=summary.as_dict())
    return summary


def _keep_fresh(user_id: str, cutoff: float) -> str:
    try:
        _, fresh = _refresh_if(user_id, lambda record: record.refresh_issued_at < cutoff)
    except ConnectionGone:
        return "lost"
    except (ZoomUnavailable, ZoomRateLimited):  # the adapter logged it; the next run tries again
        return "failed"
    except Exception:  # one connection's AWS failure must not end the run for all the others
        logger.exception("keeper could not refresh a connection", extra={"user_id": user_id})
        return "failed"
    return "refreshed" if fresh is not None else "skipped"


# --- helpers


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _s256(code_verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).decode().rstrip("=")


def _seal(user_id: str, tokens: ZoomTokens) -> Sealed:
    from link_zoom.adapters import crypto

    plaintext = json.dumps({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token})
    return crypto.seal(user_id, plaintext.encode())


def _unseal(record: ConnectionRecord) -> _Tokens:
    from link_zoom.adapters import crypto

    data = json.loads(crypto.unseal(record.user_id, record.sealed))
    return _Tokens(data["access_token"], data["refresh_token"], record.generation)


def _open(record: ConnectionRecord) -> _Tokens:
    """The record's tokens; a record that does not decrypt for its user (moved, tampered) is removed."""
    from link_zoom.adapters.crypto import SealBroken

    try:
        return _unseal(record)
    except SealBroken:
        logger.warning("stored Zoom tokens do not decrypt; removing the connection", extra={"user_id": record.user_id})
        _remove(record.user_id, generation=record.generation)
        raise ConnectionGone() from None


def _remove(user_id: str, generation: str | None = None, consented_by: float | None = None) -> bool:
    """Deletes the connection (if still `generation`, or consented by epoch `consented_by`, when given) and its
    preference row."""
    from link_zoom.adapters import connections_store, preferences_store

    if not connections_store.delete(user_id, generation, consented_by=consented_by):
        return False
    preferences_store.delete_preference(user_id, *PREFERENCE)
    count("ZoomDisconnected")
    return True


def _revoke_quietly(refresh_token: str) -> None:
    """Best effort: Zoom being down must not keep a user from disconnecting (the adapter logs and counts it)."""
    from link_zoom.adapters import zoom_oauth

    try:
        zoom_oauth.revoke(refresh_token)
    except ZoomUnavailable:
        logger.warning("could not revoke a Zoom token")
