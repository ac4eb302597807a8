"""POST /v1/zoom/webhook: signed as the emulator (and Zoom) signs, checked on the raw body before parsing."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.events import api_event
from devstack.zoom_emulator import EmulatorHandle, encrypt_plain_token, sign_webhook
from devstack.zoom_emulator.webhooks import app_deauthorized_payload, iso_ms
from tests.integration.connection.zoom_flow import connect, invoke, new_person

pytestmark = pytest.mark.integration


def _notification(
    zoom: EmulatorHandle,
    event: str,
    payload: dict[str, Any],
    *,
    timestamp: int | None = None,
    secret: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway event for a notification, signed as Zoom signs it (unless `headers` replace the signature)."""
    raw = (
        body
        if body is not None
        else json.dumps(
            {"event": event, "payload": payload, "event_ts": int(time.time() * 1000)}, separators=(",", ":")
        ).encode()
    )
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signed = {
        "Content-Type": "application/json; charset=utf-8",
        "x-zm-request-timestamp": ts,
        "x-zm-signature": sign_webhook(secret or zoom.config.webhook_secret, ts, raw),
    }
    return api_event("POST", "/v1/zoom/webhook", headers=headers if headers is not None else signed, body=raw)


def _answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return response["statusCode"], json.loads(response["body"])


def test_url_validation_answers_zooms_challenge(zoom: EmulatorHandle, webhook_function: Any) -> None:
    event = _notification(zoom, "endpoint.url_validation", {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"})

    status, body = _answer(invoke(webhook_function, event))

    assert status == 200
    assert body == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": encrypt_plain_token(zoom.config.webhook_secret, "qgg8vlvZRS6UYooatFL8Aw"),
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-zm-request-timestamp": "1700000000"},
        {"x-zm-signature": "v0=00"},
        {"x-zm-request-timestamp": "soon", "x-zm-signature": "v0=00"},
    ],
    ids=["nothing", "no signature", "no timestamp", "timestamp not a number"],
)
def test_a_missing_signature_is_refused(zoom: EmulatorHandle, webhook_function: Any, headers: dict[str, str]) -> None:
    event = _notification(zoom, "endpoint.url_validation", {"plainToken": "x"}, headers=headers)

    status, body = _answer(invoke(webhook_function, event))

    assert (status, body["error"]["code"]) == (401, "invalid_signature")


def test_a_signature_with_another_secret_is_refused(zoom: EmulatorHandle, webhook_function: Any) -> None:
    event = _notification(zoom, "endpoint.url_validation", {"plainToken": "x"}, secret="not-the-secret")

    assert _answer(invoke(webhook_function, event))[0] == 401


def test_a_body_changed_after_signing_is_refused(zoom: EmulatorHandle, webhook_function: Any) -> None:
    event = _notification(zoom, "endpoint.url_validation", {"plainToken": "x"})
    event["body"] = event["body"].replace('"x"', '"y"')

    assert _answer(invoke(webhook_function, event))[0] == 401


@pytest.mark.parametrize(("age", "status"), [(-301, 401), (-290, 200), (290, 200), (301, 401)])
def test_the_replay_window_is_five_minutes_either_way(
    zoom: EmulatorHandle, webhook_function: Any, age: int, status: int
) -> None:
    event = _notification(zoom, "endpoint.url_validation", {"plainToken": "x"}, timestamp=int(time.time()) + age)

    assert _answer(invoke(webhook_function, event))[0] == status


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"event": '])
def test_a_validly_signed_body_that_is_not_a_json_object_is_a_400(
    zoom: EmulatorHandle, webhook_function: Any, raw: bytes
) -> None:
    status, body = _answer(invoke(webhook_function, _notification(zoom, "", {}, body=raw)))

    assert (status, body["error"]["code"]) == (400, "bad_request")


def test_app_deauthorized_deletes_that_zoom_users_connections(
    zoom: EmulatorHandle, webhook_function: Any, oauth_function: Any
) -> None:
    from link_zoom import composition
    from link_zoom.adapters.preferences_store import list_preferences

    leaving, staying = new_person("leaving"), new_person("staying")
    connect(oauth_function, leaving)
    connect(oauth_function, staying)
    zoom_user = zoom.state.user_by_email(leaving.email)
    assert zoom_user is not None
    zoom.state.deauthorize(leaving.email)
    payload = {
        "account_id": zoom_user.account_id,
        "user_id": zoom_user.id,
        "signature": "ab" * 32,
        "deauthorization_time": iso_ms(datetime.now(UTC)),
        "client_id": zoom.config.client_id,
    }

    status, _ = _answer(invoke(webhook_function, _notification(zoom, "app_deauthorized", payload)))

    assert status == 200
    assert not composition.connection().connection_status(leaving.user_id).connected
    assert list_preferences(leaving.user_id) == []
    assert composition.connection().connection_status(staying.user_id).connected


def test_a_late_or_replayed_app_deauthorized_keeps_a_newer_consent(
    zoom: EmulatorHandle, webhook_function: Any, oauth_function: Any
) -> None:
    from link_zoom import composition

    # Given a user who removed the app at Zoom a minute ago and has connected again since
    person = new_person("returning")
    deauthorized_at = datetime.now(UTC) - timedelta(minutes=1)
    connect(oauth_function, person)
    zoom_user = zoom.state.user_by_email(person.email)
    assert zoom_user is not None
    late = app_deauthorized_payload(zoom_user.id, zoom_user.account_id, zoom.config.client_id)
    late["deauthorization_time"] = iso_ms(deauthorized_at)

    # When the notification of that removal arrives only now (late, or replayed by Zoom's retries)
    status, _ = _answer(invoke(webhook_function, _notification(zoom, "app_deauthorized", late)))

    # Then it is acknowledged and the newer connection stays
    assert status == 200
    assert composition.connection().connection_status(person.user_id).connected

    # And one that happened after the consent still removes it
    current = {**late, "deauthorization_time": iso_ms(datetime.now(UTC) + timedelta(seconds=1))}
    assert _answer(invoke(webhook_function, _notification(zoom, "app_deauthorized", current)))[0] == 200
    assert not composition.connection().connection_status(person.user_id).connected


@pytest.mark.parametrize("when", [None, "yesterday", "2026-11-25T10:00:00"])
def test_app_deauthorized_without_a_readable_time_is_a_bad_request(
    zoom: EmulatorHandle, webhook_function: Any, oauth_function: Any, when: str | None
) -> None:
    from link_zoom import composition

    person = new_person()
    connect(oauth_function, person)
    zoom_user = zoom.state.user_by_email(person.email)
    assert zoom_user is not None
    payload = {"user_id": zoom_user.id, "client_id": zoom.config.client_id, "deauthorization_time": when}

    status, body = _answer(invoke(webhook_function, _notification(zoom, "app_deauthorized", payload)))

    assert (status, body["error"]["code"]) == (400, "bad_request")
    assert composition.connection().connection_status(person.user_id).connected


def test_app_deauthorized_of_another_app_changes_nothing(
    zoom: EmulatorHandle, webhook_function: Any, oauth_function: Any
) -> None:
    from link_zoom import composition

    person = new_person()
    connect(oauth_function, person)
    zoom_user = zoom.state.user_by_email(person.email)
    assert zoom_user is not None
    payload = {"user_id": zoom_user.id, "account_id": zoom_user.account_id, "client_id": "another-app"}

    assert _answer(invoke(webhook_function, _notification(zoom, "app_deauthorized", payload)))[0] == 200
    assert composition.connection().connection_status(person.user_id).connected


def test_meeting_deleted_is_handed_to_the_meetings_code(zoom: EmulatorHandle, webhook_function: Any) -> None:
    from link_zoom import composition

    handed: list[str] = []

    class Meetings:
        def meeting_deleted_at_zoom(self, meeting_id: str) -> int:
            handed.append(meeting_id)
            return 1

    payload = {"account_id": "acc", "operator": "a@corp.example", "object": {"id": 85746065432, "host_id": "h"}}

    with composition.override(meetings=Meetings()):
        status, _ = _answer(invoke(webhook_function, _notification(zoom, "meeting.deleted", payload)))

    assert status == 200
    assert handed == ["85746065432"]


def test_a_meeting_deleted_without_a_meeting_id_is_a_400(zoom: EmulatorHandle, webhook_function: Any) -> None:
    status, _ = _answer(invoke(webhook_function, _notification(zoom, "meeting.deleted", {"object": {}})))

    assert status == 400


def test_other_events_are_acknowledged_and_ignored(zoom: EmulatorHandle, webhook_function: Any) -> None:
    status, body = _answer(invoke(webhook_function, _notification(zoom, "meeting.started", {"object": {"id": 1}})))

    assert (status, body) == (200, {"status": "ignored"})


def test_zoom_webhook_secret_from_the_environment_wins(
    zoom: EmulatorHandle, webhook_function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from link_zoom import composition
    from link_zoom.config import get_settings

    monkeypatch.setenv("ZOOM_WEBHOOK_SECRET", "from-the-environment")
    get_settings.cache_clear()
    composition.reset()  # what was built from the old settings

    ok = _notification(zoom, "endpoint.url_validation", {"plainToken": "x"}, secret="from-the-environment")
    stored = _notification(zoom, "endpoint.url_validation", {"plainToken": "x"})

    assert _answer(invoke(webhook_function, ok))[0] == 200
    assert _answer(invoke(webhook_function, stored))[0] == 401
