"""The HTTP edge: strict JSON bodies, the contract's error shape, identity only from the authorizer."""

from __future__ import annotations

import json

import pytest

from devstack.events import api_event, authorizer_context
from link_zoom.api import build_resolver, current_principal, parse_json_object
from link_zoom.errors import BadRequest, ZoomRateLimited


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[1, 2]",
        '"text"',
        "42",
        "null",
        json.dumps({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}),
    ],
)
def test_anything_but_a_reasonable_json_object_is_a_bad_request(body: str) -> None:
    with pytest.raises(BadRequest):
        parse_json_object(body)


def test_a_json_object_is_accepted() -> None:
    assert parse_json_object('{"enabled": true}') == {"enabled": True}


def test_oversized_body_is_refused() -> None:
    with pytest.raises(BadRequest):
        parse_json_object(json.dumps({"x": "a" * 70_000}))


def _resolve(app, event):  # type: ignore[no-untyped-def]
    return app.resolve(event, None)


def test_errors_leave_in_the_contract_shape_with_headers() -> None:
    app = build_resolver()

    @app.get("/v1/limited")
    def limited():  # type: ignore[no-untyped-def]
        raise ZoomRateLimited(7)

    response = _resolve(app, api_event("GET", "/v1/limited"))
    assert response["statusCode"] == 429
    assert json.loads(response["body"])["error"]["code"] == "zoom_rate_limited"
    assert response["multiValueHeaders"]["Retry-After"] == ["7"]


def test_unexpected_errors_are_a_500_without_internals() -> None:
    app = build_resolver()

    @app.get("/v1/boom")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail")

    response = _resolve(app, api_event("GET", "/v1/boom"))
    assert response["statusCode"] == 500
    assert "secret internal detail" not in response["body"]
    assert json.loads(response["body"]) == {
        "error": {"code": "internal_error", "message": "Something went wrong on our side; try again."}
    }


def test_unknown_route_is_404_in_the_error_shape() -> None:
    response = _resolve(build_resolver(), api_event("GET", "/v1/nothing-here"))
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["code"] == "not_found"


def test_principal_comes_from_the_authorizer_context_only() -> None:
    app = build_resolver()

    @app.post("/v1/who")
    def who():  # type: ignore[no-untyped-def]
        principal = current_principal(app)
        return {"user_id": principal.user_id, "is_admin": principal.is_admin}

    event = api_event(
        "POST",
        "/v1/who?user_id=someone-else",
        body=json.dumps({"user_id": "someone-else"}),
        authorizer=authorizer_context("11111111-2222-3333-4444-555555555555", "bob", False),
    )
    body = json.loads(_resolve(app, event)["body"])
    assert body == {"user_id": "11111111-2222-3333-4444-555555555555", "is_admin": False}

    anonymous = _resolve(app, api_event("POST", "/v1/who"))
    assert anonymous["statusCode"] == 401
