"""The Zoom connections table (one item per user): sealed tokens, the refresh lock and the keeper's clock.

Every write that changes tokens is conditional on the item's `generation` (a random id per token write),
so a refresh never overwrites a newer consent, a disconnect or another refresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from pynamodb.attributes import BinaryAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from link_zoom.adapters.dynamo import bind
from link_zoom.config import get_settings
from link_zoom.domain.connection import ConnectionRecord, Sealed

CONDITION_FAILED = "ConditionalCheckFailedException"


class ByZoomUser(GlobalSecondaryIndex["ZoomConnection"]):
    class Meta:
        index_name = "by_zoom_user"
        projection = KeysOnlyProjection()

    zoom_user_id = UnicodeAttribute(hash_key=True)


class ZoomConnection(Model):
    class Meta:
        table_name = "ZoomConnections"  # replaced by CONNECTIONS_TABLE in _model()

    user_id = UnicodeAttribute(hash_key=True)
    zoom_user_id = UnicodeAttribute()
    zoom_account_id = UnicodeAttribute(null=True)
    by_zoom_user = ByZoomUser()
    sealed_key = BinaryAttribute(legacy_encoding=False)
    sealed_nonce = BinaryAttribute(legacy_encoding=False)
    sealed_tokens = BinaryAttribute(legacy_encoding=False)
    generation = UnicodeAttribute()
    access_expires_at = NumberAttribute()  # epoch seconds
    refresh_issued_at = NumberAttribute()  # epoch seconds; the keeper refreshes the old ones
    consented_at = NumberAttribute()  # epoch seconds
    # The connection ends 365 days after consent; DynamoDB's TTL removes it after that.
    expires_at_epoch = TTLAttribute()
    refresh_lock_until = NumberAttribute(null=True)
    refresh_lock_owner = UnicodeAttribute(null=True)


def _model() -> type[ZoomConnection]:
    return bind(ZoomConnection, get_settings().connections_table)


def warm() -> None:
    """Binds the model to its table (with the shared DynamoDB client) now, before work fans out to threads."""
    _model()


def _record(item: ZoomConnection) -> ConnectionRecord:
    return ConnectionRecord(
        user_id=item.user_id,
        zoom_user_id=item.zoom_user_id,
        zoom_account_id=item.zoom_account_id,
        sealed=Sealed(item.sealed_key, item.sealed_nonce, item.sealed_tokens),
        generation=item.generation,
        access_expires_at=float(item.access_expires_at),
        refresh_issued_at=float(item.refresh_issued_at),
        consented_at=datetime.fromtimestamp(item.consented_at, UTC),
        expires_at=item.expires_at_epoch,
    )


def get(user_id: str) -> ConnectionRecord | None:
    """Read consistently: a disconnect or refresh on another device is seen at once."""
    model = _model()
    try:
        return _record(model.get(user_id, consistent_read=True))
    except DoesNotExist:
        return None


def put(record: ConnectionRecord) -> None:
    """A new connection (consent): replaces any previous one of the user, lock included."""
    _model()(
        user_id=record.user_id,
        zoom_user_id=record.zoom_user_id,
        zoom_account_id=record.zoom_account_id,
        sealed_key=record.sealed.encrypted_key,
        sealed_nonce=record.sealed.nonce,
        sealed_tokens=record.sealed.ciphertext,
        generation=record.generation,
        access_expires_at=record.access_expires_at,
        refresh_issued_at=record.refresh_issued_at,
        consented_at=int(record.consented_at.timestamp()),
        expires_at_epoch=record.expires_at,
    ).save()


def try_lock(user_id: str, generation: str, owner: str, now: float, until: float) -> bool:
    """Takes the refresh lock if nobody holds it (or theirs ran out) and the tokens are still `generation`."""
    model = _model()
    try:
        model(user_id).update(
            actions=[model.refresh_lock_until.set(until), model.refresh_lock_owner.set(owner)],
            condition=(model.generation == generation)
            & (model.refresh_lock_until.does_not_exist() | (model.refresh_lock_until < now)),
        )
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return False
        raise
    return True


def write_tokens(
    user_id: str,
    *,
    owner: str,
    previous_generation: str,
    generation: str,
    sealed: Sealed,
    access_expires_at: float,
    refresh_issued_at: float,
) -> bool:
    """Stores refreshed tokens and releases the lock; False if the lock or the tokens are no longer ours."""
    model = _model()
    try:
        model(user_id).update(
            actions=[
                model.sealed_key.set(sealed.encrypted_key),
                model.sealed_nonce.set(sealed.nonce),
                model.sealed_tokens.set(sealed.ciphertext),
                model.generation.set(generation),
                model.access_expires_at.set(access_expires_at),
                model.refresh_issued_at.set(refresh_issued_at),
                model.refresh_lock_until.remove(),
                model.refresh_lock_owner.remove(),
            ],
            condition=(model.refresh_lock_owner == owner) & (model.generation == previous_generation),
        )
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return False
        raise
    return True


def release_lock(user_id: str, owner: str) -> None:
    model = _model()
    try:
        model(user_id).update(
            actions=[model.refresh_lock_until.remove(), model.refresh_lock_owner.remove()],
            condition=model.refresh_lock_owner == owner,
        )
    except UpdateError as exc:
        if exc.cause_response_code != CONDITION_FAILED:
            raise


def delete(user_id: str, generation: str | None = None, consented_by: float | None = None) -> bool:
    """Deletes the connection (only if its tokens are still `generation`, and only if it was consented at or
    before epoch `consented_by`, when given); False if not deleted."""
    model = _model()
    condition = model.user_id.exists() if generation is None else model.generation == generation
    if consented_by is not None:
        # Checked by DynamoDB with the delete: a consent stored meanwhile is never removed.
        condition = condition & (model.consented_at <= consented_by)
    try:
        model(user_id).delete(condition=condition)
    except DeleteError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return False
        raise
    return True


def user_ids_of_zoom_user(zoom_user_id: str) -> list[str]:
    return [item.user_id for item in _model().by_zoom_user.query(zoom_user_id)]


def refreshed_before(cutoff: float, segment: int, segments: int, page_size: int = 1000) -> Iterator[tuple[str, float]]:
    """One segment of a parallel scan: (user id, refresh issued at) of the connections refreshed before `cutoff`."""
    model = _model()
    for item in model.scan(
        model.refresh_issued_at < cutoff,
        segment=segment,
        total_segments=segments,
        page_size=page_size,
        attributes_to_get=["user_id", "refresh_issued_at"],
    ):
        yield item.user_id, float(item.refresh_issued_at)
