"""A user's Zoom connection: consent (authorization code + PKCE), the one path to a valid access token,
refreshes under a lock, disconnecting, and the keeper that refreshes aging connections.

Zoom rotates refresh tokens (the old one dies on use), so two refreshes of one connection with the same
token lose it. Every refresh therefore runs under a conditional-write lock on the connection item: one
caller refreshes, the others poll the item and use its result.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar
from urllib.parse import urlencode

from link_zoom.deadline import Deadline
from link_zoom.domain.batch_reads import shared_connection_reads
from link_zoom.errors import (
    TokenKeyUnavailable,
    ZoomGrantRevoked,
    ZoomRateLimited,
    ZoomTokenRejected,
    ZoomUnavailable,
)
from link_zoom.observability import count, logger

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
# The keeper (domain/keeper.py) refreshes connections older than this; refresh tokens live 90 days.
KEEPER_REFRESH_AGE = timedelta(days=60)
# A refresh kills the old refresh token the moment Zoom answers: it starts only with time to receive the answer
# (Zoom's connect + read timeouts) and to store it (KMS, then DynamoDB with retries) before the function ends.
ZOOM_TOKEN_CALL_S = 11.05  # the OAuth adapter's connect (3.05 s) and read (8 s) timeouts
STORE_BUDGET_S = 6.0
REFRESH_NEEDS_S = ZOOM_TOKEN_CALL_S + STORE_BUDGET_S
STORE_ATTEMPTS = 4
STORE_BACKOFF_S = 0.25


# --- what the adapters hand over (they import these types from here)


@dataclass(frozen=True)
class Sealed:
    """What is stored: the KMS-encrypted data key, the AES-GCM nonce and the ciphertext (with its tag)."""

    encrypted_key: bytes
    nonce: bytes
    ciphertext: bytes


class SealBroken(Exception):
    """The sealed value does not open for this user: moved to another user, tampered with, or its key is gone."""


@dataclass(frozen=True)
class ConnectionRecord:
    user_id: str
    zoom_user_id: str
    zoom_account_id: str | None
    sealed: Sealed
    generation: str
    access_expires_at: float
    refresh_issued_at: float
    consented_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenPair:
    """Zoom's access and refresh token; left out of repr, so out of tracebacks and debug output."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)


@dataclass(frozen=True)
class ZoomTokens(TokenPair):
    expires_in: int


@dataclass(frozen=True)
class ZoomUser:
    id: str
    account_id: str | None


@dataclass(frozen=True)
class PendingAuthorization:
    user_id: str
    code_verifier: str
    redirect_uri: str
    expires_at: datetime


# --- ports (adapters/connections_store, oauth_states_store, preferences_store, zoom_oauth, crypto, sweep_queue)


class ConnectionStorePort(Protocol):
    def get(self, user_id: str) -> ConnectionRecord | None: ...

    def put(self, record: ConnectionRecord) -> None: ...

    def try_lock(self, user_id: str, generation: str, owner: str, now: float, until: float) -> bool:
        """Takes the refresh lock while the record is still `generation` and nobody holds an unexpired lock."""
        ...

    def write_tokens(
        self,
        user_id: str,
        *,
        owner: str,
        previous_generation: str,
        generation: str,
        sealed: Sealed,
        access_expires_at: float,
        refresh_issued_at: float,
    ) -> bool:
        """Stores refreshed tokens (and frees the lock) if `owner` still holds it on `previous_generation`."""
        ...

    def release_lock(self, user_id: str, owner: str) -> None: ...

    def delete(self, user_id: str, generation: str | None = None, consented_by: float | None = None) -> bool:
        """Deletes the connection, only if still `generation` / consented at or before epoch `consented_by`."""
        ...

    def user_ids_of_zoom_user(self, zoom_user_id: str) -> list[str]: ...


class OAuthStatesPort(Protocol):
    def put(self, state_hash: str, pending: PendingAuthorization) -> None: ...

    def take(self, state_hash: str) -> PendingAuthorization | None:
        """The pending authorization, deleted in the same step (a state is spent once), or None."""
        ...


class PreferenceRowsPort(Protocol):
    def upsert_preference(self, user_id: str, resource: str, tag: str) -> object: ...

    def delete_preference(self, user_id: str, resource: str, tag: str) -> bool: ...


class ZoomOAuthPort(Protocol):
    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> ZoomTokens: ...

    def refresh(self, refresh_token: str) -> ZoomTokens: ...

    def revoke(self, token: str) -> None: ...

    def current_user(self, access_token: str) -> ZoomUser: ...


class TokenSealPort(Protocol):
    def seal(self, user_id: str, plaintext: bytes) -> Sealed: ...

    def unseal(self, user_id: str, sealed: Sealed) -> bytes:
        """The plaintext; SealBroken when it provably is not this user's (another user's encryption context, a
        failed tag), TokenKeyUnavailable when KMS refuses the key (configuration: nothing is deleted for that)."""
        ...

    def reseal(self, user_id: str, previous: Sealed, plaintext: bytes) -> Sealed | None:
        """Seals under `previous`'s data key if this process still holds it (no KMS call); None if not."""
        ...


class SweepQueuePort(Protocol):
    def request_sweep(self, user_id: str) -> None: ...


# --- what the connection answers


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
class _Tokens(TokenPair):
    generation: str


# --- the connection service


@dataclass(frozen=True)
class Connection:
    """A user's Zoom connection, on its ports; `link_zoom.composition.connection()` wires the real adapters."""

    store: ConnectionStorePort
    states: OAuthStatesPort
    preferences: PreferenceRowsPort
    zoom_oauth: ZoomOAuthPort
    crypto: TokenSealPort
    sweeps: SweepQueuePort
    client_id: str
    oauth_base_url: str
    redirect_url: str | None = None  # ZOOM_REDIRECT_URL: the callback Zoom knows, when not derived from the API

    def connection_status(self, user_id: str) -> ConnectionStatus:
        record = self.store.get(user_id)
        if record is None or record.expires_at <= datetime.now(UTC):
            return ConnectionStatus(connected=False, reauthorize_after=None)
        return ConnectionStatus(connected=True, reauthorize_after=record.expires_at)

    def redirect_uri_for(self, base_url: str) -> str:
        return self.redirect_url or f"{base_url.rstrip('/')}/v1/zoom/callback"

    def start_authorization(self, user_id: str, redirect_uri: str) -> AuthorizationStart:
        """Zoom's authorize URL with a single-use state (10 minutes) bound to the user and a PKCE S256 challenge."""
        state = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(64)  # 86 characters of RFC 7636's unreserved set
        expires_at = datetime.now(UTC).replace(microsecond=0) + STATE_LIFETIME
        self.states.put(
            _state_hash(state),
            PendingAuthorization(user_id, code_verifier, redirect_uri, expires_at),
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "code_challenge": _s256(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        return AuthorizationStart(f"{self.oauth_base_url}/oauth/authorize?{query}", expires_at)

    def authorize_url_for(self, user_id: str, redirect_uri: str) -> str:
        """For `ZoomAuthorizationRequired(authorize_url)`: a URL the client can open at once."""
        return self.start_authorization(user_id, redirect_uri).authorize_url

    def complete_authorization(self, state: str | None, code: str | None, error: str | None) -> CompletedConnection:
        """The callback: spends the state, exchanges the code (with the state's PKCE verifier), stores the connection.

        Raises AuthorizationRefused (a 400 page), ZoomUnavailable (502: the exchange failed) or
        ConnectionNotStored (502: KMS or DynamoDB failed; the new tokens were revoked at Zoom).
        """
        pending = self.states.take(_state_hash(state)) if state else None  # spent whatever comes next
        if error == "access_denied":
            raise AuthorizationRefused("Zoom was not connected because access was declined.")
        if pending is None:
            raise AuthorizationRefused("This Zoom sign-in is not valid or was already used. Start again from Link.")
        if pending.expires_at <= datetime.now(UTC):
            raise AuthorizationRefused("This Zoom sign-in took longer than 10 minutes. Start again from Link.")
        if error or not code:
            raise AuthorizationRefused("Zoom did not complete the sign-in. Start again from Link.")
        try:
            tokens = self.zoom_oauth.exchange_code(code, pending.redirect_uri, pending.code_verifier)
        except ZoomGrantRevoked as exc:  # the code was spent, expired or its verifier did not match
            count("ZoomErrors")
            logger.warning("Zoom refused the authorization code")
            raise ZoomUnavailable() from exc
        except ZoomRateLimited as exc:  # the callback's pages know no 429: the exchange failed (the adapter logged it)
            raise ZoomUnavailable() from exc
        try:
            zoom_user = self.zoom_oauth.current_user(tokens.access_token)
        except (ZoomTokenRejected, ZoomUnavailable) as exc:
            self._revoke_quietly(tokens.access_token)  # not stored, so it must not stay alive at Zoom
            raise ZoomUnavailable() from exc
        try:
            return self._store_new_connection(pending.user_id, zoom_user.id, zoom_user.account_id, tokens)
        except Exception as exc:  # KMS or DynamoDB: nothing of the error names a token (the tokens' repr hides them)
            logger.exception("could not store the new Zoom connection", extra={"user_id": pending.user_id})
            self._revoke_quietly(tokens.access_token)  # not stored, so it must not stay alive at Zoom
            raise ConnectionNotStored() from exc

    def _store_new_connection(
        self, user_id: str, zoom_user_id: str, zoom_account_id: str | None, tokens: ZoomTokens
    ) -> CompletedConnection:
        now = time.time()
        consented_at = datetime.fromtimestamp(int(now), UTC)
        record = ConnectionRecord(
            user_id=user_id,
            zoom_user_id=zoom_user_id,
            zoom_account_id=zoom_account_id,
            sealed=self._seal(user_id, tokens),
            generation=uuid.uuid4().hex,
            access_expires_at=now + tokens.expires_in,
            refresh_issued_at=now,
            consented_at=consented_at,
            expires_at=consented_at + CONNECTION_LIFETIME,
        )
        self.store.put(record)
        try:
            self.preferences.upsert_preference(user_id, *PREFERENCE)
        except Exception:
            # The caller revokes these tokens: the record holding them must not stay (nor a previous row alone).
            try:
                self._remove(user_id, generation=record.generation)
            except Exception:
                logger.exception("could not remove a half-stored Zoom connection", extra={"user_id": user_id})
            raise
        count("ZoomConnected")
        logger.info("Zoom connected", extra={"user_id": user_id})
        try:
            self.sweeps.request_sweep(user_id)
        except Exception:
            # The connection stands; the waiting events get their meetings on their next change instead.
            logger.exception("could not queue the post-connect sweep", extra={"user_id": user_id})
        return CompletedConnection(user_id, record.expires_at)

    def disconnect(self, user_id: str) -> bool:
        """Revokes at Zoom (best effort), deletes the connection and its preference row; False if there was nothing."""
        record = self.store.get(user_id)
        if record is not None:
            self._revoke_at_zoom(record)
        removed = record is not None and self.store.delete(user_id)
        had_row = self.preferences.delete_preference(user_id, *PREFERENCE)
        if removed:
            count("ZoomDisconnected")
            logger.info("Zoom disconnected", extra={"user_id": user_id})
        return removed or had_row

    def _revoke_at_zoom(self, record: ConnectionRecord) -> None:
        """Best effort, as Zoom documents revoke: with the access token, refreshed first when it has expired."""
        try:
            tokens = self._unseal(record)
        except (SealBroken, TokenKeyUnavailable):
            # The user asked for the disconnect: it happens; Zoom's grant ends at the latest with its token.
            count("RevokesSkipped")
            logger.warning(
                "stored Zoom tokens unreadable; deleting without revoking", extra={"user_id": record.user_id}
            )
            return
        access_token = tokens.access_token
        if _access_expiring(record):
            try:
                # Not stored: the connection is deleted next, and these tokens die with the revoke.
                access_token = self.zoom_oauth.refresh(tokens.refresh_token).access_token
            except ZoomGrantRevoked:
                return  # the grant is already gone at Zoom: nothing left to revoke
            except (ZoomUnavailable, ZoomRateLimited):
                logger.warning("could not refresh the Zoom token to revoke it", extra={"user_id": record.user_id})
                return
        self._revoke_quietly(access_token)

    def forget_zoom_user(self, zoom_user_id: str, deauthorized_at: datetime) -> int:
        """Zoom's `app_deauthorized`: deletes the connections to that Zoom user consented at or before
        `deauthorized_at` (and their rows); a user who consented again since keeps the new connection.
        Returns how many were deleted.
        """
        before = deauthorized_at.timestamp()
        return sum(
            self._remove(user_id, consented_by=before) for user_id in self.store.user_ids_of_zoom_user(zoom_user_id)
        )

    # --- using a connection

    def call_zoom(self, user_id: str, operation: Callable[[str], T], deadline: Deadline | None = None) -> T:
        """Runs `operation` with a valid access token of the user: the one path to a user's Zoom token.

        An access token near its expiry is refreshed first. If Zoom rejects the token (`ZoomTokenRejected`), it is
        refreshed once and the operation retried; a second rejection means the app was removed at Zoom, so the
        connection is deleted and ConnectionGone raised (as when there is no connection at all). No refresh starts
        unless `deadline` leaves the time to receive and store its answer (ZoomUnavailable: try again later).
        """
        tokens = self._tokens_for(user_id, _access_expiring, deadline, shared=True)
        try:
            return operation(tokens.access_token)
        except ZoomTokenRejected:
            logger.info("Zoom rejected the access token; refreshing once", extra={"user_id": user_id})
        rejected = tokens.generation
        tokens = self._tokens_for(user_id, lambda record: record.generation == rejected, deadline)
        try:
            return operation(tokens.access_token)
        except ZoomTokenRejected:
            logger.info("Zoom rejected a fresh access token: the app was removed", extra={"user_id": user_id})
        self._remove(user_id, generation=tokens.generation)  # a newer consent made meanwhile is kept
        raise ConnectionGone()

    def _tokens_for(
        self,
        user_id: str,
        needs_refresh: Callable[[ConnectionRecord], bool],
        deadline: Deadline | None = None,
        shared: bool = False,
    ) -> _Tokens:
        record, fresh = self._refresh_if(user_id, needs_refresh, deadline, shared)
        return fresh or self._open(record)

    def _refresh_if(
        self,
        user_id: str,
        needs_refresh: Callable[[ConnectionRecord], bool],
        deadline: Deadline | None = None,
        shared: bool = False,
    ) -> tuple[ConnectionRecord, _Tokens | None]:
        """The current record and, if `needs_refresh` held for it, the tokens of the one refresh made for it.

        Whoever takes the lock refreshes; everyone else polls the item until `needs_refresh` no longer holds
        (the holder wrote new tokens) or the lock is theirs to take (the holder failed or died). `shared`: the
        first look may take the record the batch already read (domain/batch_reads.py); every later one reads.
        """
        give_up = time.monotonic() + WAIT_SECONDS
        while True:
            record = self._read(user_id, shared)
            shared = False
            if record is None:
                raise ConnectionGone()
            if record.expires_at <= datetime.now(UTC):
                self._remove(user_id, generation=record.generation)  # TTL deletes it only eventually; the row goes too
                raise ConnectionGone()
            if not needs_refresh(record):
                return record, None
            owner = uuid.uuid4().hex
            now = time.time()
            _ensure_time_to_refresh(user_id, deadline)
            if self.store.try_lock(user_id, record.generation, owner, now, now + LOCK_SECONDS):
                fresh = self._refresh_locked(record, owner)
                if fresh is not None:
                    return record, fresh
            if time.monotonic() >= give_up:
                logger.warning("gave up waiting for a Zoom token refresh", extra={"user_id": user_id})
                raise ZoomUnavailable()
            time.sleep(POLL_SECONDS)

    def _refresh_locked(self, record: ConnectionRecord, owner: str) -> _Tokens | None:
        """Refreshes with the lock held; None when the connection changed meanwhile (the caller looks again)."""
        user_id = record.user_id
        try:
            answer = self.zoom_oauth.refresh(self._open(record).refresh_token)
        except ZoomGrantRevoked:
            logger.info("Zoom refused the refresh token (invalid_grant): connection gone", extra={"user_id": user_id})
            if self._remove(user_id, generation=record.generation):
                raise ConnectionGone() from None
            self.store.release_lock(user_id, owner)
            return None
        except BaseException:
            self.store.release_lock(user_id, owner)
            raise
        # Zoom has rotated the refresh token: from here on only the answer is worth anything. It is stored
        # before anything else is done with it.
        generation = uuid.uuid4().hex
        try:
            written = self._store_rotated(record, owner, generation, answer)
        except BaseException:
            self.store.release_lock(user_id, owner)
            raise
        if not written:
            # Disconnected or connected anew while we refreshed: these tokens must not outlive that.
            self._revoke_quietly(answer.access_token)
            return None
        count("ZoomRefreshes")
        _forget_shared(user_id)  # the batch's shared record holds the tokens just replaced
        return _Tokens(answer.access_token, answer.refresh_token, generation)

    def _store_rotated(self, record: ConnectionRecord, owner: str, generation: str, answer: ZoomTokens) -> bool:
        """Seals and writes the rotated tokens, retrying; False when the connection changed meanwhile. A failure
        here loses the connection (Zoom killed the old refresh token), so it is counted and alarmed."""
        sealed = self._seal_rotated(record, answer)
        now = time.time()
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                return self.store.write_tokens(
                    record.user_id,
                    owner=owner,
                    previous_generation=record.generation,
                    generation=generation,
                    sealed=sealed,
                    access_expires_at=now + answer.expires_in,
                    refresh_issued_at=now,
                )
            except Exception as exc:
                if attempt == STORE_ATTEMPTS:
                    _lost_refresh(record.user_id, type(exc).__name__)
                    raise
                time.sleep(STORE_BACKOFF_S * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _seal_rotated(self, record: ConnectionRecord, answer: ZoomTokens) -> Sealed:
        """A fresh data key; if KMS cannot give one, the record's own data key (still in memory from reading it)."""
        try:
            return self._seal(record.user_id, answer)
        except TokenKeyUnavailable:
            resealed = self.crypto.reseal(record.user_id, record.sealed, _plaintext(answer))
            if resealed is None:
                _lost_refresh(record.user_id, "TokenKeyUnavailable")
                raise
            return resealed

    # --- the keeper

    def keep_fresh(self, user_id: str, cutoff: float, deadline: Deadline | None = None) -> str:
        """Refreshes the connection if its refresh token is still older than epoch `cutoff`: "refreshed", "skipped"
        (refreshed meanwhile: one read), "lost" (gone) or "failed" (Zoom or AWS failing, or too little time left)."""
        try:
            _, fresh = self._refresh_if(user_id, lambda record: record.refresh_issued_at < cutoff, deadline)
        except ConnectionGone:
            return "lost"
        except (ZoomUnavailable, ZoomRateLimited):  # the adapter logged it; the next run tries again
            return "failed"
        except Exception:  # one connection's AWS failure must not end the run for all the others
            logger.exception("keeper could not refresh a connection", extra={"user_id": user_id})
            return "failed"
        return "refreshed" if fresh is not None else "skipped"

    def _read(self, user_id: str, shared: bool) -> ConnectionRecord | None:
        """The user's record: the one this batch shares when `shared`, else read now (and then shared)."""
        reads = shared_connection_reads()
        if reads is None:
            return self.store.get(user_id)
        if shared:
            return reads.read(user_id, lambda: self.store.get(user_id))
        record = self.store.get(user_id)
        reads.replace(user_id, record)
        return record

    def _seal(self, user_id: str, tokens: ZoomTokens) -> Sealed:
        return self.crypto.seal(user_id, _plaintext(tokens))

    def _unseal(self, record: ConnectionRecord) -> _Tokens:
        data = json.loads(self.crypto.unseal(record.user_id, record.sealed))
        return _Tokens(data["access_token"], data["refresh_token"], record.generation)

    def _open(self, record: ConnectionRecord) -> _Tokens:
        """The record's tokens; a record that provably is not its user's (moved, tampered) is removed. A KMS or
        configuration fault (TokenKeyUnavailable) leaves it alone: the caller gets a 503; it works once fixed."""
        try:
            return self._unseal(record)
        except SealBroken:
            logger.warning(
                "stored Zoom tokens do not decrypt; removing the connection", extra={"user_id": record.user_id}
            )
            self._remove(record.user_id, generation=record.generation)
            raise ConnectionGone() from None

    def _remove(self, user_id: str, generation: str | None = None, consented_by: float | None = None) -> bool:
        """Deletes the connection (if still `generation`, or consented by epoch `consented_by`, when given) and its
        preference row."""
        if not self.store.delete(user_id, generation, consented_by=consented_by):
            return False
        _forget_shared(user_id)
        self.preferences.delete_preference(user_id, *PREFERENCE)
        count("ZoomDisconnected")
        return True

    def _revoke_quietly(self, access_token: str) -> None:
        """Best effort: Zoom being down must not keep a user from disconnecting (the adapter logs and counts it).
        Zoom documents revoke with the access token; its grant (refresh token included) ends with it."""
        try:
            self.zoom_oauth.revoke(access_token)
        except ZoomUnavailable:
            logger.warning("could not revoke a Zoom token")


# --- helpers


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _s256(code_verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).decode().rstrip("=")


def _access_expiring(record: ConnectionRecord) -> bool:
    return record.access_expires_at - REFRESH_MARGIN_SECONDS <= time.time()


def _plaintext(tokens: ZoomTokens) -> bytes:
    return json.dumps({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token}).encode()


def _ensure_time_to_refresh(user_id: str, deadline: Deadline | None) -> None:
    """A refresh cut off by the function's end would lose the connection: postpone it instead."""
    remaining = deadline.remaining() if deadline is not None else None
    if remaining is not None and remaining < REFRESH_NEEDS_S:
        count("RefreshesPostponed")
        logger.warning(
            "too little time left to refresh a Zoom token safely", extra={"user_id": user_id, "seconds": remaining}
        )
        raise ZoomUnavailable()


def _forget_shared(user_id: str) -> None:
    reads = shared_connection_reads()
    if reads is not None:
        reads.forget(user_id)


def _lost_refresh(user_id: str, error: str) -> None:
    count("RefreshNotStored")
    logger.error(
        "refreshed Zoom tokens could not be stored: the connection is lost", extra={"user_id": user_id, "error": error}
    )
