"""Zoom's OAuth answers become the domain's errors; what is sent is what Zoom requires."""

from __future__ import annotations

import base64
import logging
from urllib.parse import parse_qs

import pytest
import requests

from link_zoom.adapters import zoom_oauth
from link_zoom.errors import ZoomGrantRevoked, ZoomRateLimited, ZoomTokenRejected, ZoomUnavailable
from tests.unit.connection.conftest import CLIENT_ID, CLIENT_SECRET, FakeZoomTransport

TOKENS = {
    "access_token": "eyJaccess",
    "token_type": "bearer",
    "refresh_token": "eyJrefresh",
    "expires_in": 3599,
    "scope": "meeting:write",
}
VERIFIER = "v" * 64


def _form(transport: FakeZoomTransport) -> dict[str, str]:
    body = transport.sent[-1].body
    text = body.decode() if isinstance(body, bytes) else str(body)
    return {key: values[0] for key, values in parse_qs(text).items()}


def test_the_code_exchange_sends_basic_auth_the_verifier_and_the_redirect(
    zoom_settings: dict[str, str], zoom_http: FakeZoomTransport
) -> None:
    zoom_http.answer(200, TOKENS)

    tokens = zoom_oauth.exchange_code("the-code", "https://api.example/v1/zoom/callback", VERIFIER)

    assert (tokens.access_token, tokens.refresh_token, tokens.expires_in) == ("eyJaccess", "eyJrefresh", 3599)
    request = zoom_http.sent[-1]
    assert request.url == "https://zoom.example/oauth/token"
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {basic}"
    assert _form(zoom_http) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "https://api.example/v1/zoom/callback",
        "code_verifier": VERIFIER,
    }


def test_a_refresh_sends_the_refresh_token(zoom_settings: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    zoom_http.answer(200, TOKENS)

    zoom_oauth.refresh("eyJold")

    assert _form(zoom_http) == {"grant_type": "refresh_token", "refresh_token": "eyJold"}


@pytest.mark.parametrize("status", [400, 401])
def test_invalid_grant_in_any_4xx_means_the_grant_is_gone(
    zoom_settings: dict[str, str], zoom_http: FakeZoomTransport, status: int
) -> None:
    zoom_http.answer(status, {"reason": "Invalid Token!", "error": "invalid_grant"})

    with pytest.raises(ZoomGrantRevoked):
        zoom_oauth.refresh("eyJold")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b"<html>oops</html>"),
        (503, {"reason": "Service Unavailable", "error": "server_error"}),
        (401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}),
        (200, b"not json"),
        (200, {"token_type": "bearer"}),
        (200, [1, 2]),
    ],
)
def test_everything_else_is_zoom_unavailable(
    zoom_settings: dict[str, str], zoom_http: FakeZoomTransport, status: int, body: object
) -> None:
    zoom_http.answer(status, body)

    with pytest.raises(ZoomUnavailable):
        zoom_oauth.refresh("eyJold")


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"Retry-After": "3600"}, "3600"),
        ({"Retry-After": "0.2"}, "1"),
        ({}, str(zoom_oauth.RATE_LIMIT_RETRY_AFTER_S)),
        ({"Retry-After": "soon"}, str(zoom_oauth.RATE_LIMIT_RETRY_AFTER_S)),
    ],
)
@pytest.mark.parametrize("call", ["refresh", "exchange"])
def test_a_429_is_zoom_rate_limited_with_zooms_retry_after(
    zoom_settings: dict[str, str], zoom_http: FakeZoomTransport, headers: dict[str, str], retry_after: str, call: str
) -> None:
    zoom_http.answer(429, {"reason": "Too many requests"}, headers)

    with pytest.raises(ZoomRateLimited) as raised:
        if call == "refresh":
            zoom_oauth.refresh("eyJold")
        else:
            zoom_oauth.exchange_code("the-code", "https://link.example/v1/zoom/callback", VERIFIER)

    assert raised.value.headers == {"Retry-After": retry_after}


@pytest.mark.parametrize("error", [requests.ConnectTimeout(), requests.ReadTimeout(), requests.ConnectionError()])
def test_timeouts_and_broken_connections_are_zoom_unavailable(
    zoom_settings: dict[str, str], zoom_http: FakeZoomTransport, error: Exception
) -> None:
    zoom_http.fail(error)

    with pytest.raises(ZoomUnavailable):
        zoom_oauth.refresh("eyJold")


def test_users_me(zoom_settings: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    zoom_http.answer(200, {"id": "KDcuGIm1QgePTO8WbOqwIQ", "account_id": "acc", "email": "a@corp.example"})

    user = zoom_oauth.current_user("eyJaccess")

    assert (user.id, user.account_id) == ("KDcuGIm1QgePTO8WbOqwIQ", "acc")
    assert zoom_http.sent[-1].url == "https://api.zoom.example/v2/users/me"
    assert zoom_http.sent[-1].headers["Authorization"] == "Bearer eyJaccess"


def test_users_me_401_is_a_rejected_token(zoom_settings: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    zoom_http.answer(401, {"code": 124, "message": "Invalid access token."})

    with pytest.raises(ZoomTokenRejected):
        zoom_oauth.current_user("eyJaccess")


@pytest.mark.parametrize(("status", "body"), [(500, {}), (200, {"no": "id"}), (200, b"<html>")])
def test_users_me_failures_are_zoom_unavailable(
    zoom_settings: dict[str, str], zoom_http: FakeZoomTransport, status: int, body: object
) -> None:
    zoom_http.answer(status, body)

    with pytest.raises(ZoomUnavailable):
        zoom_oauth.current_user("eyJaccess")


def test_revoke_posts_the_token_with_basic_auth(zoom_settings: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    zoom_http.answer(200, {"status": "success"})

    zoom_oauth.revoke("eyJrefresh")

    assert zoom_http.sent[-1].url == "https://zoom.example/oauth/revoke"
    assert _form(zoom_http) == {"token": "eyJrefresh"}
    assert zoom_http.sent[-1].headers["Authorization"].startswith("Basic ")


def test_no_token_reaches_a_debug_log(
    zoom_settings: dict[str, str], zoom_http: FakeZoomTransport, caplog: pytest.LogCaptureFixture
) -> None:
    zoom_http.answer(200, TOKENS)
    zoom_http.answer(400, {"reason": "Invalid Token!", "error": "invalid_grant"})

    with caplog.at_level(logging.DEBUG):
        zoom_oauth.exchange_code("the-code", "https://api.example/cb", VERIFIER)
        with pytest.raises(ZoomGrantRevoked):
            zoom_oauth.refresh("eyJrefresh")

    for secret in ("eyJaccess", "eyJrefresh", "the-code", VERIFIER, CLIENT_SECRET):
        assert secret not in caplog.text
    assert repr(zoom_oauth.ZoomTokens("eyJaccess", "eyJrefresh", 1)) == "ZoomTokens(expires_in=1)"
