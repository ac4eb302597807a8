"""The caller's preference rows: listing them, and deleting one (deleting Zoom/oauth disconnects Zoom)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from link_zoom.errors import NotFound

ZOOM_CONNECTION = ("Zoom", "oauth")
# The service writes every row itself, with short plain names; anything else cannot name a row.
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class PreferenceRow:
    resource: str
    tag: str
    created_at: datetime
    updated_at: datetime


class PreferenceStorePort(Protocol):
    def list_preferences(self, user_id: str) -> list[PreferenceRow]: ...

    def delete_preference(self, user_id: str, resource: str, tag: str) -> bool: ...


@dataclass(frozen=True)
class Preferences:
    rows: PreferenceStorePort
    disconnect_zoom: Callable[[str], bool]  # revokes at Zoom (best effort), deletes the connection and its row

    def list_preferences(self, user_id: str) -> list[PreferenceRow]:
        return self.rows.list_preferences(user_id)

    def delete_preference(self, user_id: str, resource: str, tag: str) -> None:
        """Delete one of the caller's rows, or NotFound. The Zoom/oauth row is the Zoom connection itself."""
        if not (_NAME.fullmatch(resource) and _NAME.fullmatch(tag)):
            raise NotFound()
        disconnected = (resource, tag) == ZOOM_CONNECTION and self.disconnect_zoom(user_id)
        deleted = self.rows.delete_preference(user_id, resource, tag)
        if not (disconnected or deleted):
            raise NotFound()
