"""The meetings handlers as API Gateway invokes them: routes, status codes, the error shape, idempotency."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.events import api_event, authorizer_context
from link_zoom import composition
from link_zoom.adapters.idempotency_store import IdempotencyStore
from link_zoom.config import get_settings
from link_zoom.domain.meetings import IDEMPOTENCY_EXPIRY_S
from link_zoom.errors import ZoomRateLimited, ZoomUnavailable
from tests.support.functions import load_function
from tests.support.lambda_context import FakeLambdaContext
from tests.unit.meetings.fakes import OTHER_USER, USER, World, build_world

APP = load_function("meetings")


class FakeConsent:
    """The connection's consent side, as the NotConnected answer uses it."""

    def redirect_uri_for(self, base_url: str) -> str:
        return f"{base_url}/v1/zoom/callback"

    def authorize_url_for(self, user_id: str, redirect_uri: str) -> str:
        return f"https://zoom.test/oauth/authorize?u={user_id}"


@pytest.fixture
def world() -> Iterator[World]:
    made = build_world()
    with composition.override(meetings=made.meetings, connection=FakeConsent()):
        yield made


@pytest.fixture
def kept_answers(world: World, aws: dict[str, Any]) -> Iterator[None]:
    """Idempotency-Key answers kept the real way: powertools idempotency on the template's table (moto)."""
    store = IdempotencyStore(get_settings().idempotency_table, IDEMPOTENCY_EXPIRY_S)
    with composition.override(meetings=dataclasses.replace(world.meetings, once=store)):
        yield


def call(
    method: str,
    path: str,
    body: Any = None,
    *,
    user: str = USER,
    headers: dict[str, str] | None = None,
    resource: str | None = None,
    raw: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    event = api_event(
        method,
        path,
        resource=resource,
        headers=headers,
        body=raw if raw is not None else (json.dumps(body) if body is not None else None),
        authorizer=authorizer_context(user, "ada", False),
        path_parameters={"event_id": path.split("/")[3]} if resource else None,
    )
    response = APP.handler(event, FakeLambdaContext(function_name="unit-meetings"))
    text = response.get("body") or ""
    headers = {
        **(response.get("headers") or {}),
        **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()},
    }
    return response["statusCode"], (json.loads(text) if text else None), headers


EVENT_PATH = "/v1/events/{event_id}/zoom"
BODY = {"topic": "Review", "start": "2026-03-01T10:00:00+01:00", "end": "2026-03-01T11:00:00+01:00"}


def test_compose_link_answers_201_with_the_meeting(world: World) -> None:
    status, body, _ = call("POST", "/v1/compose-link", {"topic": "Call", "duration_minutes": 15})
    assert status == 201
    assert set(body) == {"meeting_id", "join_url", "password", "start_time", "duration_minutes"}
    assert isinstance(body["meeting_id"], str) and body["meeting_id"] in world.zoom
    assert body["duration_minutes"] == 15 and body["start_time"].endswith(":00Z")


def test_compose_link_without_a_body_is_thirty_minutes(world: World) -> None:
    status, body, _ = call("POST", "/v1/compose-link")
    assert status == 201 and body["duration_minutes"] == 30


@pytest.mark.parametrize("raw", ["not json", "[]", '"x"', '{"duration_minutes": true}', '{"color": "red"}'])
def test_compose_link_bad_bodies_are_400(world: World, raw: str) -> None:
    status, body, _ = call("POST", "/v1/compose-link", raw=raw)
    assert status == 400 and body["error"]["code"] == "bad_request" and body["error"]["message"]
    assert not world.zoom.calls


@pytest.mark.parametrize("key", ["", "ü", "x" * 256])
def test_bad_idempotency_keys_are_400(world: World, key: str) -> None:
    status, body, _ = call("POST", "/v1/compose-link", {}, headers={"Idempotency-Key": key})
    assert status == 400 and body["error"]["code"] == "bad_request"


def test_switch_off_is_403_feature_disabled(world: World) -> None:
    world.switch.on = False
    status, body, _ = call("POST", "/v1/compose-link", {})
    assert (status, body["error"]["code"]) == (403, "feature_disabled")
    status, body, _ = call("PUT", "/v1/events/e1/zoom", BODY, resource=EVENT_PATH)
    assert (status, body["error"]["code"]) == (403, "feature_disabled")
    status, _, _ = call("DELETE", "/v1/events/e1/zoom", resource=EVENT_PATH)
    assert status == 204


def test_not_connected_is_403_with_an_authorize_url(world: World) -> None:
    status, body, _ = call("POST", "/v1/compose-link", {}, user=OTHER_USER)
    assert status == 403
    assert body["error"]["code"] == "zoom_authorization_required"
    assert body["error"]["authorize_url"] == f"https://zoom.test/oauth/authorize?u={OTHER_USER}"
    status, body, _ = call("PUT", "/v1/events/e1/zoom", BODY, user=OTHER_USER, resource=EVENT_PATH)
    assert (status, body["error"]["code"]) == (403, "zoom_authorization_required")


def test_zoom_rate_limit_is_429_with_retry_after_and_outage_is_502(world: World) -> None:
    world.zoom.fail_next("create", ZoomRateLimited(7))
    status, body, headers = call("POST", "/v1/compose-link", {})
    assert (status, body["error"]["code"], headers.get("Retry-After")) == (429, "zoom_rate_limited", "7")
    world.zoom.fail_next("create", ZoomUnavailable())
    status, body, _ = call("POST", "/v1/compose-link", {})
    assert (status, body["error"]["code"]) == (502, "zoom_unavailable")


def test_put_event_meeting_creates_then_answers_the_same(world: World) -> None:
    status, first, _ = call("PUT", "/v1/events/e1/zoom", BODY, resource=EVENT_PATH)
    assert status == 200 and first["start_time"] == "2026-03-01T09:00:00Z" and first["duration_minutes"] == 60
    status, again, _ = call("PUT", "/v1/events/e1/zoom", BODY, resource=EVENT_PATH)
    assert again == first and world.zoom.calls == [("create", "")]


def test_put_event_meeting_validates(world: World) -> None:
    status, body, _ = call("PUT", "/v1/events/e1/zoom", {**BODY, "end": BODY["start"]}, resource=EVENT_PATH)
    assert (status, body["error"]["code"]) == (400, "invalid_time_range")
    status, body, _ = call("PUT", "/v1/events/e1/zoom", {**BODY, "time_zone": "Nowhere"}, resource=EVENT_PATH)
    assert (status, body["error"]["code"]) == (400, "bad_request")
    status, body, _ = call("PUT", "/v1/events/e1/zoom", resource=EVENT_PATH)
    assert (status, body["error"]["code"]) == (400, "bad_request")


def test_delete_event_meeting_is_204_with_or_without_a_meeting(world: World) -> None:
    call("PUT", "/v1/events/e1/zoom", BODY, resource=EVENT_PATH)
    assert call("DELETE", "/v1/events/e1/zoom", resource=EVENT_PATH)[0] == 204
    assert len(world.zoom) == 0
    assert call("DELETE", "/v1/events/e1/zoom", resource=EVENT_PATH)[0] == 204


def test_each_user_has_their_own_meeting_per_event(world: World) -> None:
    world.connection.connected.add(OTHER_USER)
    _, mine, _ = call("PUT", "/v1/events/e1/zoom", BODY, resource=EVENT_PATH)
    _, theirs, _ = call("PUT", "/v1/events/e1/zoom", BODY, user=OTHER_USER, resource=EVENT_PATH)
    assert mine["meeting_id"] != theirs["meeting_id"]
    call("DELETE", "/v1/events/e1/zoom", user=OTHER_USER, resource=EVENT_PATH)
    assert mine["meeting_id"] in world.zoom


def test_a_repeated_idempotency_key_returns_the_first_answer_and_creates_nothing(
    world: World, kept_answers: None
) -> None:
    world.connection.connected.add(OTHER_USER)
    key = {"Idempotency-Key": "compose-42"}
    first = call("POST", "/v1/compose-link", {"topic": "A"}, headers=key)
    again = call("POST", "/v1/compose-link", {"topic": "A"}, headers=key)
    assert first[0] == again[0] == 201 and first[1] == again[1]
    assert len(world.zoom) == 1
    other_key = call("POST", "/v1/compose-link", {"topic": "A"}, headers={"Idempotency-Key": "compose-43"})
    other_user = call("POST", "/v1/compose-link", {"topic": "A"}, headers=key, user=OTHER_USER)
    assert len({first[1]["meeting_id"], other_key[1]["meeting_id"], other_user[1]["meeting_id"]}) == 3
    assert len(world.zoom) == 3


def test_an_idempotency_key_reused_with_another_body_is_422_and_creates_nothing(
    world: World, kept_answers: None
) -> None:
    key = {"Idempotency-Key": "compose-44"}
    first = call("POST", "/v1/compose-link", {"topic": "A", "duration_minutes": 15}, headers=key)

    other_topic = call("POST", "/v1/compose-link", {"topic": "B", "duration_minutes": 15}, headers=key)
    other_length = call("POST", "/v1/compose-link", {"topic": "A"}, headers=key)
    same = call("POST", "/v1/compose-link", {"duration_minutes": 15, "topic": "A"}, headers=key)

    assert first[0] == 201
    for status, body, _ in (other_topic, other_length):
        assert (status, body["error"]["code"]) == (422, "idempotency_key_reused")
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert (same[0], same[1]) == (201, first[1])
    assert len(world.zoom) == 1


def test_a_failed_request_does_not_burn_its_idempotency_key(world: World, kept_answers: None) -> None:
    world.zoom.fail_next("create", ZoomUnavailable())
    key = {"Idempotency-Key": "retry-me"}
    assert call("POST", "/v1/compose-link", {}, headers=key)[0] == 502
    assert call("POST", "/v1/compose-link", {}, headers=key)[0] == 201
    assert len(world.zoom) == 1


def test_unknown_routes_are_404_in_the_contract_shape(world: World) -> None:
    status, body, _ = call("GET", "/v1/compose-link")
    assert status in (404, 405) and body["error"]["code"]
