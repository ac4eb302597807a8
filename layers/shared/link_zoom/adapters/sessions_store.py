"""Sessions and failed sign-in counters in DynamoDB (SessionsTable, LoginAttemptsTable of template.yaml)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from pynamodb.attributes import BooleanAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError
from pynamodb.models import Model

from link_zoom.adapters import dynamo
from link_zoom.config import get_settings
from link_zoom.domain.identity import SessionRecord


class Session(Model):
    """One signed-in device. Keyed by the SHA-256 of the token: the token itself is never stored."""

    class Meta:
        table_name = "SessionsTable"  # replaced by dynamo.bind with the configured name

    token_hash = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    username = UnicodeAttribute()
    display_name = UnicodeAttribute()
    is_admin = BooleanAttribute()
    expires_at_epoch = TTLAttribute()


class LoginAttempt(Model):
    """Sign-in attempts for one (hashed, normalised) username within the current window."""

    class Meta:
        table_name = "LoginAttemptsTable"

    username_key = UnicodeAttribute(hash_key=True)
    attempts = NumberAttribute()
    window_start_epoch = NumberAttribute()
    expires_at_epoch = TTLAttribute()


def _sessions() -> type[Session]:
    return dynamo.bind(Session, get_settings().sessions_table)


def _attempts() -> type[LoginAttempt]:
    return dynamo.bind(LoginAttempt, get_settings().login_attempts_table)


def _conditional_check_failed(error: UpdateError | DeleteError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


class DynamoSessionStore:
    def save(self, session: SessionRecord) -> None:
        _sessions()(
            session.token_hash,
            user_id=session.user_id,
            username=session.username,
            display_name=session.display_name,
            is_admin=session.is_admin,
            expires_at_epoch=session.expires_at,
        ).save()

    def find(self, token_hash: str) -> SessionRecord | None:
        try:
            # Strongly consistent: a session deleted by sign-out is refused from the very next request.
            item = _sessions().get(token_hash, consistent_read=True)
        except DoesNotExist:
            return None
        return SessionRecord(
            token_hash=item.token_hash,
            user_id=item.user_id,
            username=item.username,
            display_name=item.display_name,
            is_admin=bool(item.is_admin),
            expires_at=item.expires_at_epoch.astimezone(UTC),
        )

    def delete(self, token_hash: str) -> None:
        _sessions()(token_hash).delete()


class DynamoAttemptCounter:
    """A fixed window per username that starts at its first attempt; every change is one conditional update,
    so concurrent sign-ins cannot get more than `limit` binds through in one window."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        self._limit = limit
        self._window = window_seconds

    def reserve(self, key: str, now: float) -> int:
        model = _attempts()
        floor = math.floor(now) - self._window
        for _ in range(3):  # a window may roll over between the two conditional updates: try again
            try:
                # No window, or an old one: start a new window with this attempt.
                model(key).update(
                    actions=[
                        model.attempts.set(1),
                        model.window_start_epoch.set(math.floor(now)),
                        model.expires_at_epoch.set(datetime.fromtimestamp(math.floor(now) + self._window, UTC)),
                    ],
                    condition=model.username_key.does_not_exist() | (model.window_start_epoch <= floor),
                )
                return 0
            except UpdateError as exc:
                if not _conditional_check_failed(exc):
                    raise
            try:
                # A current window with room left.
                model(key).update(
                    actions=[model.attempts.add(1)],
                    condition=(model.window_start_epoch > floor) & (model.attempts < self._limit),
                )
                return 0
            except UpdateError as exc:
                if not _conditional_check_failed(exc):
                    raise
            try:
                current = model.get(key, consistent_read=True)
            except DoesNotExist:
                continue
            window_end = int(current.window_start_epoch) + self._window
            if current.attempts >= self._limit and window_end > now:
                return max(1, math.ceil(window_end - now))
        return 1  # still contended after three rounds: refuse this one rather than count nothing

    def release(self, key: str) -> None:
        model = _attempts()
        try:
            model(key).update(actions=[model.attempts.add(-1)], condition=model.attempts > 0)
        except UpdateError as exc:
            if not _conditional_check_failed(exc):
                raise

    def clear(self, key: str) -> None:
        _attempts()(key).delete()
