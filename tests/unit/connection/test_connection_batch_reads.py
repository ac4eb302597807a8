"""A batch reads each user's connection once (domain/batch_reads.py), and a shared record never outlives a change
that Zoom or the table tells about."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import Context, copy_context

import pytest

from link_zoom import composition
from link_zoom.adapters import connections_store
from link_zoom.domain import connection
from link_zoom.domain.batch_reads import connection_reads_shared
from link_zoom.errors import ZoomTokenRejected
from tests.unit.connection.conftest import FakeZoomTransport
from tests.unit.connection.test_connection_domain import REDIRECT, TOKENS, USER, _connect, _params


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The user ids of every read of the connections table."""
    made: list[str] = []
    lock = threading.Lock()
    read = connections_store.get

    def counted(user_id: str) -> connection.ConnectionRecord | None:
        with lock:
            made.append(user_id)
        return read(user_id)

    monkeypatch.setattr(connections_store, "get", counted)
    yield made


def _on_threads(count: int, work: object) -> list[object]:
    """`work` on `count` threads at once, each in a copy of this context (as the stream's fan-out runs it)."""
    assert callable(work)
    barrier = threading.Barrier(count)

    def one() -> object:
        barrier.wait()
        return work()

    with ThreadPoolExecutor(max_workers=count) as pool:
        tasks = [pool.submit(copy_context().run, one) for _ in range(count)]
        return [task.result() for task in tasks]


def _connect_again() -> None:
    """A new consent, as another device (another container) makes it."""
    authorize_url = composition.connection().start_authorization(USER, REDIRECT).authorize_url
    composition.connection().complete_authorization(_params(authorize_url)["state"], "code-2", None)


def _call() -> object:
    return composition.connection().call_zoom(USER, lambda token: token)


def test_sixteen_workers_of_one_batch_read_the_connection_once(
    aws: dict[str, str], zoom_http: FakeZoomTransport, reads: list[str]
) -> None:
    _connect(zoom_http)
    reads.clear()
    with connection_reads_shared() as shared:
        assert _on_threads(16, _call) == ["eyJaccess"] * 16
    assert reads == [USER]
    assert shared.reads == 1


def test_outside_a_batch_every_call_reads(aws: dict[str, str], zoom_http: FakeZoomTransport, reads: list[str]) -> None:
    _connect(zoom_http)
    reads.clear()
    assert _on_threads(4, _call) == ["eyJaccess"] * 4
    assert reads == [USER] * 4


def test_a_token_zoom_rejects_makes_a_fresh_read_that_the_rest_of_the_batch_then_shares(
    aws: dict[str, str], zoom_http: FakeZoomTransport, reads: list[str]
) -> None:
    _connect(zoom_http)
    with connection_reads_shared():
        assert _call() == "eyJaccess"
        # Meanwhile another device connected anew: Zoom now refuses the first grant's access token.
        zoom_http.answer(200, {**TOKENS, "access_token": "eyJaccess2", "refresh_token": "eyJrefresh2"})
        zoom_http.answer(200, {"id": "KDcuGIm1QgePTO8WbOqwIQ", "account_id": "acc"})
        Context().run(_connect_again)
        reads.clear()
        used: list[str] = []

        def operation(token: str) -> str:
            used.append(token)
            if token == "eyJaccess":
                raise ZoomTokenRejected()
            return token

        assert composition.connection().call_zoom(USER, operation) == "eyJaccess2"
        assert used == ["eyJaccess", "eyJaccess2"]  # no refresh: the fresh read had the new grant
        assert reads == [USER]
        reads.clear()
        assert _call() == "eyJaccess2"  # the fresh record is the one now shared
        assert reads == []


def test_a_disconnect_during_the_batch_ends_with_connection_gone(
    aws: dict[str, str], zoom_http: FakeZoomTransport, reads: list[str]
) -> None:
    _connect(zoom_http)
    with connection_reads_shared():
        assert _call() == "eyJaccess"
        zoom_http.answer(200, {})  # the revoke
        assert Context().run(composition.connection().disconnect, USER) is True  # on another device
        reads.clear()

        def revoked(token: str) -> str:
            raise ZoomTokenRejected()

        with pytest.raises(connection.ConnectionGone):
            composition.connection().call_zoom(USER, revoked)
        assert reads == [USER]  # the shared record was tried once, then read afresh: gone


def test_an_absence_is_never_shared(aws: dict[str, str], zoom_http: FakeZoomTransport, reads: list[str]) -> None:
    with connection_reads_shared():
        with pytest.raises(connection.ConnectionGone):
            _call()
        _connect(zoom_http)  # connected while the batch runs
        assert _call() == "eyJaccess"
