"""A user's preference rows (PreferencesTable): what the My Account page lists and lets them delete.

Rows name a resource and a tag (e.g. `Zoom`/`oauth` while Zoom is connected); they never hold token material.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError
from pynamodb.models import Model

from link_zoom.adapters import dynamo
from link_zoom.config import get_settings
from link_zoom.domain.preferences import PreferenceRow


class Preference(Model):
    class Meta:
        table_name = "PreferencesTable"  # replaced by dynamo.bind with the configured name

    user_id = UnicodeAttribute(hash_key=True)
    preference_key = UnicodeAttribute(range_key=True)  # f"{resource}#{tag}"
    resource = UnicodeAttribute()
    tag = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


def preference_key(resource: str, tag: str) -> str:
    return f"{resource}#{tag}"


def _model() -> type[Preference]:
    return dynamo.bind(Preference, get_settings().preferences_table)


def _row(item: Preference) -> PreferenceRow:
    return PreferenceRow(item.resource, item.tag, item.created_at, item.updated_at)


def list_preferences(user_id: str) -> list[PreferenceRow]:
    return [_row(item) for item in _model().query(user_id, consistent_read=True)]


def upsert_preference(user_id: str, resource: str, tag: str, now: datetime | None = None) -> PreferenceRow:
    """Create the row, or touch `updated_at` of the existing one (keeping when it was first created)."""
    model = _model()
    moment = now or datetime.now(UTC)
    item = model(user_id, preference_key(resource, tag))
    item.update(
        actions=[
            model.resource.set(resource),
            model.tag.set(tag),
            model.created_at.set(model.created_at | moment),
            model.updated_at.set(moment),
        ]
    )
    return _row(item)


def delete_preference(user_id: str, resource: str, tag: str) -> bool:
    """True when a row was deleted, False when there was none."""
    model = _model()
    try:
        model(user_id, preference_key(resource, tag)).delete(condition=model.user_id.exists())
    except DeleteError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True
