"""The organisation-wide Zoom switch (admins only) and what a client needs to know to show Zoom features."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from link_zoom.errors import Forbidden
from link_zoom.observability import logger


@dataclass(frozen=True)
class ZoomFeature:
    enabled: bool  # the organisation's switch
    connected: bool  # this user has a live Zoom connection
    reauthorize_after: datetime | None


def zoom_feature_for(user_id: str) -> ZoomFeature:
    from link_zoom.adapters import flag
    from link_zoom.domain.connection import connection_status

    status = connection_status(user_id)
    return ZoomFeature(
        enabled=flag.zoom_enabled(), connected=status.connected, reauthorize_after=status.reauthorize_after
    )


def read_zoom_switch(is_admin: bool) -> bool:
    from link_zoom.adapters import flag

    require_admin(is_admin)
    return flag.zoom_enabled()


def write_zoom_switch(is_admin: bool, user_id: str, enabled: bool) -> bool:
    from link_zoom.adapters import flag

    require_admin(is_admin)
    flag.set_zoom_enabled(enabled)
    # An audit line: who switched the feature for the whole organisation, and which way.
    logger.info("zoom feature switched", extra={"enabled": enabled, "by_user_id": user_id})
    return enabled


def require_admin(is_admin: bool) -> None:
    if not is_admin:
        raise Forbidden()
