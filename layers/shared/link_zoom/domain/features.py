"""The organisation-wide Zoom switch (admins only) and what a client needs to know to show Zoom features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from link_zoom.errors import Forbidden
from link_zoom.observability import logger

if TYPE_CHECKING:
    from link_zoom.domain.connection import ConnectionStatus


@dataclass(frozen=True)
class ZoomFeature:
    enabled: bool  # the organisation's switch
    connected: bool  # this user has a live Zoom connection
    reauthorize_after: datetime | None


class SwitchPort(Protocol):
    def zoom_enabled(self) -> bool: ...

    def set_zoom_enabled(self, enabled: bool) -> bool: ...


@dataclass(frozen=True)
class Features:
    switch: SwitchPort
    connection_status: Callable[[str], ConnectionStatus]

    def zoom_enabled(self) -> bool:
        """The organisation's switch, for the paths that need it on (connecting Zoom)."""
        return self.switch.zoom_enabled()

    def zoom_feature_for(self, user_id: str) -> ZoomFeature:
        status = self.connection_status(user_id)
        return ZoomFeature(
            enabled=self.switch.zoom_enabled(), connected=status.connected, reauthorize_after=status.reauthorize_after
        )

    def read_zoom_switch(self, is_admin: bool) -> bool:
        require_admin(is_admin)
        return self.switch.zoom_enabled()

    def write_zoom_switch(self, is_admin: bool, user_id: str, enabled: bool) -> bool:
        require_admin(is_admin)
        self.switch.set_zoom_enabled(enabled)
        # An audit line: who switched the feature for the whole organisation, and which way.
        logger.info("zoom feature switched", extra={"enabled": enabled, "by_user_id": user_id})
        return enabled


def require_admin(is_admin: bool) -> None:
    if not is_admin:
        raise Forbidden()
