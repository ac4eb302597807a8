"""The one place where the domain meets the adapters: each service built once per container, on first use.

Handlers ask here for what they need (`composition.meetings()`); nothing else imports both `link_zoom.domain`
and `link_zoom.adapters`. Every import of an adapter (and of the heavy libraries behind it) happens inside a
factory, so importing a handler stays cheap and a path pays only for the adapters it uses.

Tests swap a factory's product instead of patching modules:

    with composition.override(meetings=fake_meetings):
        handler(event, context)

`reset()` forgets every built service (a fresh container): tests call it when they change the environment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from link_zoom.domain.meetings import Meetings
    from link_zoom.domain.webhook import Webhook

T = TypeVar("T")

_overrides: dict[str, Any] = {}
_built: dict[str, Callable[[], Any]] = {}


def _factory(build: Callable[[], T]) -> Callable[[], T]:
    """`build` cached (one product per container) and overridable by its name."""
    name = build.__name__
    cached = functools.cache(build)
    _built[name] = cached

    @functools.wraps(build)
    def product() -> T:
        if name in _overrides:
            return _overrides[name]
        return cached()

    return product


@contextmanager
def override(**products: Any) -> Iterator[None]:
    """Within the block, `composition.NAME()` returns `products[NAME]` (a fake) instead of building the real one."""
    unknown = sorted(set(products) - set(_built))
    if unknown:
        raise ValueError(f"no factory named {unknown[0]!r}; there are {sorted(_built)}")
    previous = dict(_overrides)
    _overrides.update(products)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(previous)


def reset() -> None:
    """Forgets every built product, as a fresh container would (the environment is read again)."""
    for cached in _built.values():
        cached.cache_clear()  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the Zoom connection


@_factory
def connection() -> Any:
    from link_zoom.domain import connection

    return connection


# ------------------------------------------------------------------ meetings


class _ZoomConnection:
    """The Zoom connection as the meetings' ConnectionPort: its ConnectionGone becomes NotConnected."""

    def call_zoom(self, user_id: str, operation: Callable[[str], T]) -> T:
        from link_zoom.domain.connection import ConnectionGone
        from link_zoom.domain.meetings import NotConnected

        try:
            return connection().call_zoom(user_id, operation)
        except ConnectionGone as exc:
            raise NotConnected() from exc


@_factory
def meetings() -> Meetings:
    from link_zoom.adapters.calendar_store import CalendarStore
    from link_zoom.adapters.flag import zoom_enabled
    from link_zoom.adapters.idempotency_store import IdempotencyStore
    from link_zoom.adapters.meeting_links_store import MeetingLinksStore
    from link_zoom.adapters.zoom_meetings import ZoomMeetingsApi
    from link_zoom.config import get_settings
    from link_zoom.domain.meetings import IDEMPOTENCY_EXPIRY_S, Meetings
    from link_zoom.domain.series import RecurringMeetings

    settings = get_settings()
    zoom = ZoomMeetingsApi(settings.zoom_api_base_url)
    links = MeetingLinksStore(settings.meeting_links_table)
    calendar = CalendarStore(settings.calendar_table)
    service = Meetings(
        zoom=zoom,
        connection=_ZoomConnection(),
        links=links,
        calendar=calendar,
        zoom_enabled=zoom_enabled,
        once=IdempotencyStore(settings.idempotency_table, IDEMPOTENCY_EXPIRY_S),
    )
    # Recurring events reuse the single events' claim, connection and switch.
    service.recurring = RecurringMeetings(meetings=service, zoom=zoom, links=links, calendar=calendar)
    return service


# ------------------------------------------------------------------ Zoom's webhook


@_factory
def webhook() -> Webhook:
    from link_zoom.adapters import flag
    from link_zoom.config import get_settings
    from link_zoom.domain.webhook import Webhook

    def secret() -> str:
        settings = get_settings()
        return flag.configured_secret(
            settings.zoom_webhook_secret, settings.zoom_webhook_secret_parameter, "ZOOM_WEBHOOK_SECRET"
        )

    return Webhook(
        secret=secret,
        zoom_client_id=get_settings().zoom_client_id,
        forget_zoom_user=lambda zoom_user_id, before: connection().forget_zoom_user(zoom_user_id, before),
        meeting_deleted=lambda meeting_id: meetings().meeting_deleted_at_zoom(meeting_id),
    )
