"""The caller's preference rows: listing them, and deleting one (deleting Zoom/oauth disconnects Zoom)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from link_zoom.errors import NotFound

if TYPE_CHECKING:
    from link_zoom.adapters.preferences_store import PreferenceRow

ZOOM_CONNECTION = ("Zoom", "oauth")
# The service writes every row itself, with short plain names; anything else cannot name a row.
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def list_preferences(user_id: str) -> list[PreferenceRow]:
    from link_zoom.adapters.preferences_store import list_preferences as stored_rows

    return stored_rows(user_id)


def delete_preference(user_id: str, resource: str, tag: str) -> None:
    """Delete one of the caller's rows, or NotFound. The Zoom/oauth row is the Zoom connection itself."""
    from link_zoom.adapters.preferences_store import delete_preference as delete_row

    if not (_NAME.fullmatch(resource) and _NAME.fullmatch(tag)):
        raise NotFound()
    disconnected = False
    if (resource, tag) == ZOOM_CONNECTION:
        from link_zoom.domain.connection import disconnect

        # Revokes at Zoom (best effort) and deletes the connection together with its row.
        disconnected = disconnect(user_id)
    deleted = delete_row(user_id, resource, tag)
    if not (disconnected or deleted):
        raise NotFound()
