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
    from link_zoom.deadline import Deadline
    from link_zoom.domain.connection import Connection
    from link_zoom.domain.event_work import EventWork
    from link_zoom.domain.features import Features
    from link_zoom.domain.identity import Identity
    from link_zoom.domain.keeper import Keeper
    from link_zoom.domain.meetings import Meetings
    from link_zoom.domain.preferences import Preferences
    from link_zoom.domain.stream_replay import ReplaySummary
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


# ------------------------------------------------------------------ identity


@_factory
def identity() -> Identity:
    from link_zoom.adapters.directory import LdapDirectory
    from link_zoom.adapters.sessions_store import DynamoAttemptCounter, DynamoSessionStore
    from link_zoom.config import get_settings
    from link_zoom.domain.identity import (
        ATTEMPT_WINDOW_SECONDS,
        MAX_FAILED_ATTEMPTS,
        MAX_FAILED_FROM_SOURCE,
        Identity,
    )

    settings = get_settings()
    return Identity(
        directory=LdapDirectory(settings),
        sessions=DynamoSessionStore(),
        attempts=DynamoAttemptCounter(limit=MAX_FAILED_ATTEMPTS, window_seconds=ATTEMPT_WINDOW_SECONDS),
        session_ttl_seconds=settings.session_ttl_seconds,
        source_attempts=DynamoAttemptCounter(limit=MAX_FAILED_FROM_SOURCE, window_seconds=ATTEMPT_WINDOW_SECONDS),
    )


# ------------------------------------------------------------------ the Zoom connection, features, preferences


@_factory
def connection() -> Connection:
    from link_zoom.adapters import (
        connections_store,
        crypto,
        oauth_states_store,
        preferences_store,
        sweep_queue,
        zoom_oauth,
    )
    from link_zoom.config import get_settings
    from link_zoom.domain.connection import Connection

    settings = get_settings()
    return Connection(
        store=connections_store,
        states=oauth_states_store,
        preferences=preferences_store,
        zoom_oauth=zoom_oauth,
        crypto=crypto,
        sweeps=sweep_queue,
        client_id=settings.zoom_client_id,
        oauth_base_url=settings.zoom_oauth_base_url,
        redirect_url=settings.zoom_redirect_url,
    )


@_factory
def features() -> Features:
    from link_zoom.adapters import flag
    from link_zoom.domain.features import Features

    return Features(switch=flag, connection_status=lambda user_id: connection().connection_status(user_id))


@_factory
def preferences() -> Preferences:
    from link_zoom.adapters import preferences_store
    from link_zoom.domain.preferences import Preferences

    return Preferences(rows=preferences_store, disconnect_zoom=lambda user_id: connection().disconnect(user_id))


# ------------------------------------------------------------------ meetings


class _ZoomConnection:
    """The Zoom connection as the meetings' ConnectionPort: its ConnectionGone becomes NotConnected."""

    def call_zoom(self, user_id: str, operation: Callable[[str], T], deadline: Deadline | None = None) -> T:
        from link_zoom.domain.connection import ConnectionGone
        from link_zoom.domain.meetings import NotConnected

        try:
            return connection().call_zoom(user_id, operation, deadline)
        except ConnectionGone as exc:
            raise NotConnected() from exc


@_factory
def meetings() -> Meetings:
    from link_zoom.adapters.calendar_store import CalendarStore
    from link_zoom.adapters.flag import zoom_enabled
    from link_zoom.adapters.idempotency_store import IdempotencyStore
    from link_zoom.adapters.meeting_links_store import MeetingLinksStore
    from link_zoom.adapters.zoom_meetings import ZoomMeetingsApi
    from link_zoom.adapters.zoom_quota_store import ZoomQuotaStore
    from link_zoom.config import get_settings
    from link_zoom.domain.meetings import IDEMPOTENCY_EXPIRY_S, Meetings
    from link_zoom.domain.series import RecurringMeetings
    from link_zoom.domain.zoom_quota import ZoomQuota

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
        quota=ZoomQuota(markers=ZoomQuotaStore(settings.meeting_links_table)),
    )
    # Recurring events reuse the single events' claim, connection and switch.
    service.recurring = RecurringMeetings(meetings=service, zoom=zoom, links=links, calendar=calendar)
    return service


def connection_for_fan_out() -> Connection:
    """The connection service for the keeper, whose workers refresh many connections at once: every client
    they share is built first, once per container (issue 14)."""
    if "connection" not in _overrides:
        warm_for_fan_out()
    return connection()


def meetings_for_fan_out() -> Meetings:
    """The meetings service for work about to run on worker threads (stream batch, sweep): every client the
    workers share is built first, once per container, so that they do not all build it at once (issue 14)."""
    if "meetings" not in _overrides:
        warm_for_fan_out()
    return meetings()


# ------------------------------------------------------------------ the token keeper (planner and refresh workers)


@_factory
def keeper() -> Keeper:
    """The planner: its scan segments run on threads, so the clients they share are built first."""
    from link_zoom.adapters import connections_store
    from link_zoom.adapters.refresh_queue import RefreshQueue
    from link_zoom.domain.keeper import Keeper

    warm_for_fan_out()
    return Keeper(connections=connections_store, queue=RefreshQueue())


@_factory
def refresh_worker() -> Connection:
    """The connection service for TokenRefreshFunction: its refreshes paced (domain/keeper.py's PacedRefreshes)."""
    import dataclasses

    from link_zoom.domain.keeper import PacedRefreshes

    base = connection()
    return dataclasses.replace(base, zoom_oauth=PacedRefreshes(base.zoom_oauth))


# ------------------------------------------------------------------ clients shared by worker threads


def warm_for_fan_out() -> None:
    """Builds the AWS clients, PynamoDB bindings and HTTP sessions that worker threads share (idempotent)."""
    from link_zoom.adapters.warm import warm_for_fan_out as build_shared_clients

    build_shared_clients()


# ------------------------------------------------------------------ per-event work (the calendar's self-healing)


@_factory
def event_work() -> EventWork:
    from link_zoom.adapters.event_work_queue import EventWorkQueue
    from link_zoom.adapters.stream_dead_letters import FailedRecordKeys
    from link_zoom.domain.event_work import EventWork

    return EventWork(meetings=meetings_for_fan_out(), queue=EventWorkQueue(), failed_records=FailedRecordKeys())


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


# ------------------------------------------------------------------ the calendar stream's dead letters


def replay_dead_letters(deadline: Deadline) -> ReplaySummary:
    """The DLQ replay on the real queue, stream and stream function (built per run: an operator's rare call)."""
    from link_zoom.adapters.stream_dead_letters import DeadLetterQueue, StreamFunction, StreamReader
    from link_zoom.domain import stream_replay

    return stream_replay.replay_dead_letters(deadline, DeadLetterQueue(), StreamReader(), StreamFunction())
