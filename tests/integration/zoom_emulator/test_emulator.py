"""The Zoom emulator behaves like Zoom where the service depends on it, and its test controls work."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from requests_oauthlib import OAuth2Session

from devstack.settings import LOCAL_ZOOM
from devstack.zoom_emulator import (
    ConsentError,
    EmulatorConfig,
    EmulatorHandle,
    complete_consent,
    encrypt_plain_token,
    sign_webhook,
    start_emulator,
)

pytestmark = pytest.mark.integration

CLIENT_ID = LOCAL_ZOOM.client_id
CLIENT_SECRET = LOCAL_ZOOM.client_secret
WEBHOOK_SECRET = LOCAL_ZOOM.webhook_secret
REDIRECT_URI = "http://127.0.0.1:3000/v1/zoom/callback"
ALICE = "alice.smith@corp.example"
BOB = "bob@corp.example"
REPO_ROOT = Path(__file__).resolve().parents[3]


# --- fixtures and helpers


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize_url(emu: EmulatorHandle, **params: str) -> str:
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "st-1"}
    query.update(params)
    return f"{emu.oauth_base_url}/oauth/authorize?{urlencode(query)}"


def get_code(emu: EmulatorHandle, email: str = ALICE) -> tuple[str, str]:
    """Signs in with PKCE and allows; returns (code, verifier)."""
    verifier, challenge = pkce_pair()
    url = authorize_url(emu, code_challenge=challenge, code_challenge_method="S256")
    location = complete_consent(url, email, "pw")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-1"]
    return query["code"][0], verifier


def token_request(emu: EmulatorHandle, data: dict[str, str], auth: Any = (CLIENT_ID, CLIENT_SECRET)) -> Any:
    return requests.post(f"{emu.oauth_base_url}/oauth/token", data=data, auth=auth, timeout=5)


def exchange(emu: EmulatorHandle, code: str, verifier: str, redirect_uri: str = REDIRECT_URI) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    return token_request(emu, data)


def refresh(emu: EmulatorHandle, refresh_token: str) -> Any:
    return token_request(emu, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def connect(emu: EmulatorHandle, email: str = ALICE) -> dict[str, Any]:
    code, verifier = get_code(emu, email)
    answer = exchange(emu, code, verifier)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def api(emu: EmulatorHandle, method: str, path: str, token: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.request(method, emu.api_base_url + path, headers=headers, timeout=5, **kwargs)


def create_meeting(emu: EmulatorHandle, token: str, **fields: Any) -> Any:
    body = {"topic": "Planning", "type": 2, "start_time": "2026-11-25T15:00:00Z", "duration": 30, **fields}
    return api(emu, "POST", "/users/me/meetings", token, json=body)


def control(emu: EmulatorHandle, method: str, path: str, **kwargs: Any) -> Any:
    return requests.request(method, f"{emu.base_url}/_emulator{path}", timeout=10, **kwargs)


class Receiver:
    """A webhook endpoint that records what it gets and answers Zoom's URL validation."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                event = json.loads(raw)
                answer: dict[str, Any] = {"ok": True}
                if event["event"] == "endpoint.url_validation":
                    plain = event["payload"]["plainToken"]
                    digest = hmac.new(receiver.secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
                    answer = {"plainToken": plain, "encryptedToken": digest}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/zoom/webhook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def event(self, index: int = -1) -> tuple[dict[str, str], bytes, dict[str, Any]]:
        headers, raw = self.requests[index]
        return headers, raw, json.loads(raw)


def independent_signature(secret: str, headers: dict[str, str], raw: bytes) -> str:
    message = f"v0:{headers['x-zm-request-timestamp']}:{raw.decode()}"
    return "v0=" + hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


# --- OAuth: authorize


def test_consent_page_is_a_sign_in_form_carrying_the_request(emu: EmulatorHandle) -> None:
    _, challenge = pkce_pair()
    page = requests.get(authorize_url(emu, code_challenge=challenge, code_challenge_method="S256"), timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "Sign in to Zoom" in html
    assert '<form method="post" action="/oauth/authorize">' in html
    assert '<label for="email">Email</label>' in html and 'id="email"' in html
    assert '<label for="password">Password</label>' in html and 'type="password"' in html
    assert ">Allow</button>" in html and ">Decline</button>" in html
    assert f'name="code_challenge" value="{challenge}"' in html
    assert f'name="redirect_uri" value="{REDIRECT_URI}"' in html


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "someone-else"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": ""},
        {"response_type": "token"},
        {"code_challenge": "a" * 43, "code_challenge_method": "plain"},
        {"code_challenge": "too-short", "code_challenge_method": "S256"},
        {"code_challenge_method": "S256"},
    ],
)
def test_invalid_authorize_request_gets_an_error_page_never_a_redirect(
    emu: EmulatorHandle, params: dict[str, str]
) -> None:
    page = requests.get(authorize_url(emu, **params), allow_redirects=False, timeout=5)
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert page.headers["Content-Type"].startswith("text/html")
    # The form's hidden fields are checked again when it is posted.
    posted = requests.post(
        f"{emu.oauth_base_url}/oauth/authorize",
        data={**parse_qs_single(authorize_url(emu, **params)), "email": ALICE, "password": "pw", "decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    assert posted.status_code == 400 and "Location" not in posted.headers


def parse_qs_single(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_only_configured_redirect_uris_are_allowed() -> None:
    config = EmulatorConfig(redirect_uris=["http://127.0.0.1:3000/v1/zoom/callback"])
    with start_emulator(config) as strict:
        assert requests.get(authorize_url(strict), timeout=5).status_code == 200
        other = authorize_url(strict, redirect_uri="http://127.0.0.1:3000/other")
        assert requests.get(other, timeout=5).status_code == 400


def test_decline_redirects_with_access_denied(emu: EmulatorHandle) -> None:
    location = complete_consent(authorize_url(emu), ALICE, "pw", allow=False)
    assert location.startswith(REDIRECT_URI + "?")
    assert parse_qs(urlsplit(location).query) == {"error": ["access_denied"], "state": ["st-1"]}


def test_allow_without_credentials_shows_the_form_again(emu: EmulatorHandle) -> None:
    with pytest.raises(ConsentError):
        complete_consent(authorize_url(emu), "", "")
    assert emu.state.user_by_email("") is None


def test_users_are_created_on_first_sign_in_with_stable_ids(emu: EmulatorHandle) -> None:
    first = api(emu, "GET", "/users/me", connect(emu)["access_token"]).json()
    again = api(emu, "GET", "/users/me", connect(emu)["access_token"]).json()
    assert first == again
    assert len(first["id"]) == 22
    assert first["first_name"] == "Alice" and first["last_name"] == "Smith"
    assert first["email"] == ALICE and first["type"] == 2 and first["timezone"] == "UTC"
    assert first["account_id"]


# --- OAuth: token, refresh, revoke


def test_pkce_flow_with_requests_oauthlib(emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback
    oauth = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI, pkce="S256")
    url, state = oauth.authorization_url(f"{emu.oauth_base_url}/oauth/authorize")
    assert "code_challenge_method=S256" in url
    location = complete_consent(url, ALICE, "secret")
    token = oauth.fetch_token(
        f"{emu.oauth_base_url}/oauth/token", authorization_response=location, client_secret=CLIENT_SECRET
    )
    assert parse_qs(urlsplit(location).query)["state"] == [state]
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3599
    assert token["scope"] in ("meeting:write meeting:read user:read", ["meeting:write", "meeting:read", "user:read"])
    assert token["access_token"].startswith("eyJ") and len(token["access_token"]) > 100
    assert token["refresh_token"] != token["access_token"]
    me = oauth.get(f"{emu.api_base_url}/users/me", timeout=5)
    assert me.status_code == 200 and me.json()["email"] == ALICE


def test_wrong_verifier_is_invalid_grant(emu: EmulatorHandle) -> None:
    code, _ = get_code(emu)
    answer = exchange(emu, code, pkce_pair()[0])
    assert answer.status_code == 400
    assert answer.json() == {"reason": "Invalid authorization code", "error": "invalid_grant"}


def test_missing_verifier_is_invalid_grant(emu: EmulatorHandle) -> None:
    code, _ = get_code(emu)
    answer = token_request(emu, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_reused_code_is_rejected_and_revokes_what_it_gave(emu: EmulatorHandle) -> None:
    code, verifier = get_code(emu)
    tokens = exchange(emu, code, verifier).json()
    again = exchange(emu, code, verifier)
    assert again.status_code == 400
    assert again.json() == {"reason": "Invalid authorization code", "error": "invalid_grant"}
    assert api(emu, "GET", "/users/me", tokens["access_token"]).status_code == 401
    assert refresh(emu, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_expired_code_is_invalid_grant(emu: EmulatorHandle) -> None:
    code, verifier = get_code(emu)
    emu.state.advance_clock(601)
    assert exchange(emu, code, verifier).json()["error"] == "invalid_grant"


def test_redirect_uri_must_match_the_authorize_one(emu: EmulatorHandle) -> None:
    code, verifier = get_code(emu)
    answer = exchange(emu, code, verifier, redirect_uri="http://127.0.0.1:3000/elsewhere")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("auth", [(CLIENT_ID, "wrong-secret"), ("other-client", CLIENT_SECRET), None])
def test_bad_client_credentials_are_401_invalid_client(emu: EmulatorHandle, auth: Any) -> None:
    code, verifier = get_code(emu)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    answer = token_request(emu, data, auth=auth)
    assert answer.status_code == 401
    assert answer.json() == {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}


def test_token_endpoint_takes_only_a_form_body(emu: EmulatorHandle) -> None:
    code, _ = get_code(emu)
    answer = requests.post(
        f"{emu.oauth_base_url}/oauth/token",
        json={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_unknown_grant_type(emu: EmulatorHandle) -> None:
    answer = token_request(emu, {"grant_type": "client_credentials"})
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_refresh_rotates_both_tokens(emu: EmulatorHandle) -> None:
    first = connect(emu)
    answer = refresh(emu, first["refresh_token"])
    assert answer.status_code == 200
    second = answer.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    old = refresh(emu, first["refresh_token"])
    assert old.status_code == 400
    assert old.json() == {"reason": "Invalid Token!", "error": "invalid_grant"}
    # Zoom keeps one access token per user and app: the refreshed-away one no longer works.
    assert api(emu, "GET", "/users/me", first["access_token"]).json()["code"] == 124
    assert api(emu, "GET", "/users/me", second["access_token"]).status_code == 200
    assert refresh(emu, second["refresh_token"]).status_code == 200


def test_token_tolerance_keeps_older_access_tokens_valid() -> None:
    with start_emulator(EmulatorConfig(token_tolerance=2)) as emu:
        first = connect(emu)
        second = refresh(emu, first["refresh_token"]).json()
        assert api(emu, "GET", "/users/me", first["access_token"]).status_code == 200
        refresh(emu, second["refresh_token"])
        assert api(emu, "GET", "/users/me", first["access_token"]).status_code == 401


def test_concurrent_refreshes_with_one_token_have_exactly_one_winner(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    barrier = threading.Barrier(4)
    answers: list[Any] = []

    def race() -> None:
        barrier.wait()
        answers.append(refresh(emu, tokens["refresh_token"]))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 400, 400, 400]
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code == 400)


def test_refresh_token_dies_after_90_days(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    control(emu, "POST", "/clock", json={"advance_seconds": 90 * 86400})
    assert refresh(emu, tokens["refresh_token"]).json() == {"reason": "Invalid Token!", "error": "invalid_grant"}


def test_a_new_consent_ends_the_previous_grant(emu: EmulatorHandle) -> None:
    old = connect(emu)
    new = connect(emu)
    assert refresh(emu, old["refresh_token"]).json()["error"] == "invalid_grant"
    assert api(emu, "GET", "/users/me", old["access_token"]).status_code == 401
    assert api(emu, "GET", "/users/me", new["access_token"]).status_code == 200


def test_revoke_with_the_access_token_ends_the_grant(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    answer = requests.post(
        f"{emu.oauth_base_url}/oauth/revoke",
        data={"token": tokens["access_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    assert answer.status_code == 200 and answer.json() == {"status": "success"}
    assert api(emu, "GET", "/users/me", tokens["access_token"]).json() == {
        "code": 124,
        "message": "Invalid access token.",
    }
    assert refresh(emu, tokens["refresh_token"]).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("which", ["refresh_token", "expired access token", "unknown"])
def test_revoke_takes_only_a_live_access_token_as_zoom_documents(emu: EmulatorHandle, which: str) -> None:
    tokens = connect(emu)
    token = {"refresh_token": tokens["refresh_token"], "unknown": "not-a-token"}.get(which, tokens["access_token"])
    if which == "expired access token":
        emu.state.expire_access_tokens(api(emu, "GET", "/users/me", token).json()["email"])
    answer = requests.post(
        f"{emu.oauth_base_url}/oauth/revoke", data={"token": token}, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5
    )
    assert (answer.status_code, answer.json()) == (400, {"reason": "Invalid Token!", "error": "invalid_request"})
    assert refresh(emu, tokens["refresh_token"]).status_code == 200  # the grant lives on


def test_revoke_needs_client_authentication(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    answer = requests.post(f"{emu.oauth_base_url}/oauth/revoke", data={"token": tokens["access_token"]}, timeout=5)
    assert answer.status_code == 401
    assert api(emu, "GET", "/users/me", tokens["access_token"]).status_code == 200


# --- the REST API


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer not-a-token", "Basic abc"])
def test_api_without_a_valid_token_is_401_code_124(emu: EmulatorHandle, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    answer = requests.get(f"{emu.api_base_url}/users/me", headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"code": 124, "message": "Invalid access token."}


def test_expired_access_token_is_401_and_refresh_recovers(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    expired = control(emu, "POST", f"/users/{ALICE}/expire-access-tokens")
    assert expired.json() == {"expired": 1}
    answer = api(emu, "GET", "/users/me", tokens["access_token"])
    assert answer.status_code == 401
    assert answer.json() == {"code": 124, "message": "Access token is expired."}
    fresh = refresh(emu, tokens["refresh_token"]).json()
    assert api(emu, "GET", "/users/me", fresh["access_token"]).status_code == 200


def test_access_token_expires_after_its_lifetime(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    emu.state.advance_clock(3599)
    assert api(emu, "GET", "/users/me", tokens["access_token"]).json()["message"] == "Access token is expired."


def test_meeting_crud(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    me = api(emu, "GET", "/users/me", token).json()
    created = create_meeting(
        emu, token, timezone="Europe/Berlin", default_password=True, settings={"waiting_room": True}
    )
    assert created.status_code == 201
    meeting = created.json()
    assert isinstance(meeting["id"], int) and len(str(meeting["id"])) == 11
    assert meeting["uuid"] and meeting["host_id"] == me["id"]
    assert meeting["topic"] == "Planning" and meeting["type"] == 2 and meeting["duration"] == 30
    assert meeting["start_time"] == "2026-11-25T15:00:00Z" and meeting["timezone"] == "Europe/Berlin"
    assert meeting["join_url"].startswith(f"{emu.base_url}/j/{meeting['id']}?pwd=")
    assert meeting["password"] and meeting["created_at"].endswith("Z")
    assert meeting["settings"]["waiting_room"] is True
    assert requests.get(meeting["join_url"], timeout=5).status_code == 200

    path = f"/meetings/{meeting['id']}"
    assert api(emu, "GET", path, token).json() == meeting
    moved = api(emu, "PATCH", path, token, json={"start_time": "2026-11-26T09:30:00Z", "duration": 45})
    assert moved.status_code == 204 and moved.content == b""
    after = api(emu, "GET", path, token).json()
    assert (after["start_time"], after["duration"], after["topic"]) == ("2026-11-26T09:30:00Z", 45, "Planning")

    assert api(emu, "DELETE", path, token).status_code == 204
    gone = api(emu, "GET", path, token)
    assert gone.status_code == 404
    assert gone.json() == {"code": 3001, "message": f"Meeting does not exist: {meeting['id']}."}


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_missing_or_foreign_meeting_is_404_code_3001(emu: EmulatorHandle, method: str) -> None:
    alice = connect(emu, ALICE)["access_token"]
    bob = connect(emu, BOB)["access_token"]
    bobs = create_meeting(emu, bob).json()["id"]
    for meeting_id in (12345678901, bobs, "abc"):
        answer = api(emu, method, f"/meetings/{meeting_id}", alice, json={"topic": "x"})
        assert answer.status_code == 404
        assert answer.json() == {"code": 3001, "message": f"Meeting does not exist: {meeting_id}."}
    assert api(emu, "GET", f"/meetings/{bobs}", bob).status_code == 200


def test_local_start_time_is_read_in_the_meeting_timezone(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    meeting = create_meeting(emu, token, start_time="2026-11-25T15:00:00", timezone="Europe/Berlin").json()
    assert meeting["start_time"] == "2026-11-25T14:00:00Z"
    without_zone = create_meeting(emu, token, start_time="2026-11-25T15:00:00").json()
    assert without_zone["start_time"] == "2026-11-25T15:00:00Z" and without_zone["timezone"] == "UTC"


@pytest.mark.parametrize("start_time", ["2026-11-25T15:00:00+01:00", "2026-11-25T15:00:00.000Z", "tomorrow", ""])
def test_unparsable_start_time_is_silently_replaced_by_now(emu: EmulatorHandle, start_time: str) -> None:
    token = connect(emu)["access_token"]
    before = time.time()
    answer = create_meeting(emu, token, start_time=start_time)
    assert answer.status_code == 201
    started = time.mktime(time.strptime(answer.json()["start_time"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before - 2 <= started <= time.time() + 1
    [stored] = control(emu, "GET", "/meetings").json()
    assert stored["start_time_replaced"] is True and stored["host_email"] == ALICE


def test_instant_meeting_has_no_start_time(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    meeting = create_meeting(emu, token, type=1).json()
    assert meeting["type"] == 1 and "start_time" not in meeting


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2]"),
        ("application/json", b""),
        ("text/plain", b'{"topic": "x"}'),
        ("application/x-www-form-urlencoded", b"topic=x"),
    ],
)
def test_body_that_is_not_a_json_object_is_400_code_300(emu: EmulatorHandle, content_type: str, raw: bytes) -> None:
    token = connect(emu)["access_token"]
    answer = api(emu, "POST", "/users/me/meetings", token, data=raw, headers={"Content-Type": content_type})
    assert answer.status_code == 400
    assert answer.json()["code"] == 300
    meeting_id = create_meeting(emu, token).json()["id"]
    patched = api(emu, "PATCH", f"/meetings/{meeting_id}", token, data=raw, headers={"Content-Type": content_type})
    assert patched.status_code == 400 and patched.json()["code"] == 300


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", 5),
        ("topic", "x" * 201),
        ("topic", 7),
        ("type", 5),
        ("type", True),
        ("duration", "30"),
        ("duration", -1),
        ("start_time", 1764082800),
        ("default_password", "yes"),
        ("settings", []),
        ("password", "far-too-long-passcode"),
    ],
)
def test_invalid_fields_are_400_code_300(emu: EmulatorHandle, field: str, value: Any) -> None:
    token = connect(emu)["access_token"]
    answer = create_meeting(emu, token, **{field: value})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == 300 and body["errors"][0]["field"] == field
    meeting_id = create_meeting(emu, token).json()["id"]
    assert api(emu, "PATCH", f"/meetings/{meeting_id}", token, json={field: value}).status_code == 400


def test_topic_of_200_characters_is_fine(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    assert create_meeting(emu, token, topic="x" * 200).status_code == 201


def test_daily_limit_counts_creates_and_updates_per_user_and_day() -> None:
    with start_emulator(EmulatorConfig(daily_meeting_limit=3)) as emu:
        alice = connect(emu, ALICE)["access_token"]
        meeting_id = create_meeting(emu, alice).json()["id"]
        assert api(emu, "PATCH", f"/meetings/{meeting_id}", alice, json={"duration": 40}).status_code == 204
        assert create_meeting(emu, alice).status_code == 201
        over = create_meeting(emu, alice)
        assert over.status_code == 429
        assert over.json() == {"code": 429, "message": "You have reached the maximum per day limit for this API."}
        assert over.headers["X-RateLimit-Type"] == "Daily-limit"
        assert "Retry-After" not in over.headers
        assert api(emu, "PATCH", f"/meetings/{meeting_id}", alice, json={"duration": 50}).status_code == 429
        # Reads and deletes are not counted; other users have their own budget.
        assert api(emu, "GET", f"/meetings/{meeting_id}", alice).status_code == 200
        bob = connect(emu, BOB)["access_token"]
        assert create_meeting(emu, bob).status_code == 201
        # A new UTC day starts a new budget.
        emu.state.advance_clock(86400)
        fresh = connect(emu, ALICE)["access_token"]
        assert create_meeting(emu, fresh).status_code == 201


def test_a_shortened_daily_window_answers_with_a_retry_after_and_then_lets_requests_through() -> None:
    with start_emulator(EmulatorConfig()) as emu:
        assert control(emu, "POST", "/daily-limit", json={"limit": 1, "window_seconds": 3}).status_code == 200
        assert control(emu, "POST", "/daily-limit", json={"limit": 0}).status_code == 400
        alice = connect(emu, ALICE)["access_token"]
        assert create_meeting(emu, alice).status_code == 201
        over = create_meeting(emu, alice)
        assert over.status_code == 429 and over.headers["X-RateLimit-Type"] == "Daily-limit"
        assert 1 <= int(over.headers["Retry-After"]) <= 3
        emu.state.advance_clock(int(over.headers["Retry-After"]))
        assert create_meeting(emu, alice).status_code == 201


def test_a_user_on_pmi_gets_the_pmi_unless_the_create_says_use_pmi_false(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    assert control(emu, "POST", f"/users/{ALICE}/settings", json={"use_pmi": True}).status_code == 200
    first = create_meeting(emu, token, topic="One").json()
    second = create_meeting(emu, token, topic="Two").json()
    assert first["id"] == second["id"] and len(str(first["id"])) == 10  # both are the one PMI
    assert second["settings"]["use_pmi"] is True
    own = create_meeting(emu, token, topic="Own", settings={"use_pmi": False}).json()
    assert own["id"] != first["id"] and own["settings"]["use_pmi"] is False
    assert control(emu, "POST", f"/users/{ALICE}/settings", json={"use_pmi": "yes"}).status_code == 400
    assert control(emu, "POST", "/users/nobody@corp.example/settings", json={"use_pmi": True}).status_code == 404


def test_default_daily_limit_is_100() -> None:
    assert EmulatorConfig().daily_meeting_limit == 100


# --- faults, latency, the call log


@pytest.mark.parametrize("retry_after", [2, None])
def test_injected_429_is_one_shot_with_or_without_retry_after(emu: EmulatorHandle, retry_after: int | None) -> None:
    token = connect(emu)["access_token"]
    fault = {"method": "POST", "path": "/v2/users/me/meetings", "status": 429, "retry_after": retry_after}
    assert control(emu, "POST", "/faults", json=fault).status_code == 201
    limited = create_meeting(emu, token)
    assert limited.status_code == 429 and limited.json()["code"] == 429
    if retry_after is None:
        assert "Retry-After" not in limited.headers
    else:
        assert limited.headers["Retry-After"] == "2"
    assert create_meeting(emu, token).status_code == 201
    assert len(control(emu, "GET", "/meetings").json()) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_injected_server_errors_hit_only_matching_requests(emu: EmulatorHandle, status: int) -> None:
    token = connect(emu)["access_token"]
    emu.add_fault("PATCH", "/v2/meetings/", status, times=2)
    meeting_id = create_meeting(emu, token).json()["id"]
    for _ in range(2):
        answer = api(emu, "PATCH", f"/meetings/{meeting_id}", token, json={"duration": 10})
        assert answer.status_code == status and answer.json()["code"] == status
    assert api(emu, "PATCH", f"/meetings/{meeting_id}", token, json={"duration": 10}).status_code == 204


def test_injected_raw_body_and_oauth_faults(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    emu.add_fault("*", "/oauth/token", 502, body="not json")
    answer = refresh(emu, tokens["refresh_token"])
    assert answer.status_code == 502 and answer.text == "not json"
    # The faulted request never reached the token logic: the refresh token still works.
    assert refresh(emu, tokens["refresh_token"]).status_code == 200


def test_injected_delay_makes_a_client_time_out(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    emu.add_fault("GET", "/v2/users/me", delay_ms=600)
    with pytest.raises(requests.Timeout):
        requests.get(f"{emu.api_base_url}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=0.2)
    assert api(emu, "GET", "/users/me", token).status_code == 200


def test_latency_applies_to_api_and_token_requests(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    assert control(emu, "POST", "/latency", json={"ms": 150}).json() == {"ms": 150}
    started = time.monotonic()
    api(emu, "GET", "/users/me", token)
    assert time.monotonic() - started >= 0.15


def test_fault_control_rejects_bad_input(emu: EmulatorHandle) -> None:
    for fault in ({"status": "500"}, {"method": "BREW"}, {"colour": "red"}, {"times": 0}, [1]):
        assert control(emu, "POST", "/faults", json=fault).status_code == 400
    emu.add_fault("GET", "/v2/", 500)
    assert len(control(emu, "GET", "/faults").json()) == 1
    assert control(emu, "DELETE", "/faults").status_code == 204
    assert control(emu, "GET", "/faults").json() == []


def test_call_log_records_requests_without_tokens(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    api(emu, "GET", "/users/me", tokens["access_token"])
    create_meeting(emu, tokens["access_token"], timezone="Nowhere/Special")
    control(emu, "GET", "/meetings")
    calls = control(emu, "GET", "/calls").json()
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("GET", "/oauth/authorize", 200),
        ("POST", "/oauth/authorize", 302),
        ("POST", "/oauth/token", 200),
        ("GET", "/v2/users/me", 200),
        ("POST", "/v2/users/me/meetings", 400),
    ]
    assert all(isinstance(c["ts"], float) for c in calls)
    logged = json.dumps(calls)
    assert tokens["access_token"] not in logged and tokens["refresh_token"] not in logged
    assert emu.calls == calls
    assert control(emu, "DELETE", "/calls").status_code == 204
    assert emu.calls == []


# --- webhooks and the user's actions in the Zoom app


def test_sign_webhook_matches_an_independent_hmac() -> None:
    body = b'{"event":"meeting.deleted","payload":{}}'
    expected = "v0=" + hmac.new(b"s3cret", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert sign_webhook("s3cret", "1700000000", body) == expected
    assert encrypt_plain_token("s3cret", "abc") == hmac.new(b"s3cret", b"abc", hashlib.sha256).hexdigest()


def test_sent_webhook_is_signed_over_the_raw_body(emu: EmulatorHandle, receiver: Receiver) -> None:
    payload = {"account_id": "acc", "object": {"id": "123", "host_id": "h"}}
    sent = control(
        emu, "POST", "/webhooks/send", json={"url": receiver.url, "event": "meeting.deleted", "payload": payload}
    )
    assert sent.json() == {"status": 200, "body": '{"ok": true}', "error": None}
    headers, raw, event = receiver.event()
    assert event["event"] == "meeting.deleted" and event["payload"] == payload and event["event_ts"] > 0
    assert abs(int(headers["x-zm-request-timestamp"]) - time.time()) < 5
    assert headers["x-zm-signature"] == independent_signature(WEBHOOK_SECRET, headers, raw)
    assert headers["content-type"].startswith("application/json")


def test_stale_or_wrongly_signed_webhooks_can_be_sent(emu: EmulatorHandle, receiver: Receiver) -> None:
    stale = int(time.time()) - 600
    emu.send_webhook(receiver.url, "meeting.deleted", {}, timestamp=stale)
    headers, raw, _ = receiver.event()
    assert headers["x-zm-request-timestamp"] == str(stale)
    assert headers["x-zm-signature"] == independent_signature(WEBHOOK_SECRET, headers, raw)
    emu.send_webhook(receiver.url, "meeting.deleted", {}, secret="not-the-secret")
    headers, raw, _ = receiver.event()
    assert headers["x-zm-signature"] != independent_signature(WEBHOOK_SECRET, headers, raw)


def test_url_validation_challenge(emu: EmulatorHandle, receiver: Receiver) -> None:
    result = control(emu, "POST", "/webhooks/validate", json={"url": receiver.url}).json()
    assert result["valid"] is True and result["status"] == 200
    _, _, event = receiver.event()
    assert event["event"] == "endpoint.url_validation" and event["payload"]["plainToken"]
    receiver.secret = "a-different-secret"
    assert control(emu, "POST", "/webhooks/validate", json={"url": receiver.url}).json()["valid"] is False


def test_unreachable_webhook_endpoint_is_reported(emu: EmulatorHandle) -> None:
    result = emu.send_webhook("http://127.0.0.1:9/nowhere", "meeting.deleted", {})
    assert result.status is None and result.error
    assert emu.send_webhook("file:///etc/passwd", "x", {}).error


def test_deauthorize_revokes_and_notifies(emu: EmulatorHandle, receiver: Receiver) -> None:
    tokens = connect(emu)
    me = api(emu, "GET", "/users/me", tokens["access_token"]).json()
    result = control(emu, "POST", f"/users/{ALICE}/deauthorize", json={"webhook_url": receiver.url}).json()
    assert result["revoked"] == 1 and result["webhook"]["status"] == 200
    headers, raw, event = receiver.event()
    assert headers["x-zm-signature"] == independent_signature(WEBHOOK_SECRET, headers, raw)
    assert event["event"] == "app_deauthorized"
    assert event["payload"]["user_id"] == me["id"] and event["payload"]["account_id"] == me["account_id"]
    assert event["payload"]["client_id"] == CLIENT_ID and event["payload"]["deauthorization_time"].endswith("Z")
    assert api(emu, "GET", "/users/me", tokens["access_token"]).status_code == 401
    assert refresh(emu, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert control(emu, "POST", "/users/nobody@corp.example/deauthorize").status_code == 404


def test_meeting_deleted_in_the_zoom_app(emu: EmulatorHandle, receiver: Receiver) -> None:
    token = connect(emu)["access_token"]
    meeting = create_meeting(emu, token).json()
    result = control(emu, "DELETE", f"/meetings/{meeting['id']}", json={"webhook_url": receiver.url}).json()
    assert result["meeting"]["id"] == meeting["id"] and result["webhook"]["status"] == 200
    _, _, event = receiver.event()
    assert event["event"] == "meeting.deleted"
    assert event["payload"]["object"]["id"] == meeting["id"]
    assert event["payload"]["object"]["host_id"] == meeting["host_id"]
    assert api(emu, "GET", f"/meetings/{meeting['id']}", token).json()["code"] == 3001
    assert control(emu, "DELETE", f"/meetings/{meeting['id']}").status_code == 404


def test_reset_forgets_everything(emu: EmulatorHandle) -> None:
    tokens = connect(emu)
    create_meeting(emu, tokens["access_token"])
    emu.add_fault("GET", "/v2/", 500)
    assert control(emu, "POST", "/reset").status_code == 204
    assert control(emu, "GET", "/meetings").json() == [] and emu.calls == []
    assert api(emu, "GET", "/users/me", tokens["access_token"]).status_code == 401


# --- the command line


def test_cli_serves_quietly_in_the_foreground() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.zoom_emulator", "--port", "0", "--client-id", "cli-client"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.strip().rsplit(" ", 1)[-1]
        assert base_url.startswith("http://127.0.0.1:")
        query = urlencode({"response_type": "code", "client_id": "cli-client", "redirect_uri": REDIRECT_URI})
        assert requests.get(f"{base_url}/oauth/authorize?{query}", timeout=5).status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "GET /oauth/authorize" not in stderr


# --- listing a user's meetings (GET /users/{userId}/meetings)


def test_list_meetings_by_type_with_paging(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    other = connect(emu, "bob@example.com")["access_token"]
    past = create_meeting(emu, token, start_time="2020-01-01T10:00:00Z", topic="Old").json()
    upcoming = [
        create_meeting(emu, token, start_time=f"2099-01-0{day}T10:00:00Z", agenda="A" * 400).json() for day in (3, 1, 2)
    ]
    create_meeting(emu, other, start_time="2099-01-01T09:00:00Z")
    assert api(emu, "GET", "/users/me/meetings", "").status_code == 401
    answer = api(emu, "GET", "/users/me/meetings?type=upcoming&page_size=2", token)
    assert answer.status_code == 200, answer.text
    first = answer.json()
    assert (first["page_size"], first["total_records"]) == (2, 3) and first["next_page_token"]
    assert [m["start_time"] for m in first["meetings"]] == ["2099-01-01T10:00:00Z", "2099-01-02T10:00:00Z"]
    item = first["meetings"][0]
    assert "password" not in item and len(item["agenda"]) == 250 and item["join_url"].startswith("http")
    assert {"id", "uuid", "topic", "type", "duration", "timezone", "created_at", "host_id"} <= set(item)
    token_ = first["next_page_token"]
    second = api(emu, "GET", f"/users/me/meetings?type=upcoming&page_size=2&next_page_token={token_}", token).json()
    assert [m["id"] for m in second["meetings"]] == [upcoming[0]["id"]] and second["next_page_token"] == ""
    listed = api(emu, "GET", "/users/me/meetings?page_size=300", token).json()  # type defaults to scheduled
    assert {m["id"] for m in listed["meetings"]} == {past["id"], *(m["id"] for m in upcoming)}
    previous = api(emu, "GET", "/users/me/meetings?type=previous_meetings", token).json()
    assert [m["id"] for m in previous["meetings"]] == [past["id"]] and previous["page_size"] == 30
    assert api(emu, "GET", "/users/me/meetings?type=live", token).json()["meetings"] == []
    for bad in (
        "type=all",
        "page_size=301",
        "page_size=0",
        "page_size=x",
        f"type=scheduled&next_page_token={token_}",
        "next_page_token=garbage",
    ):
        refused = api(emu, "GET", f"/users/me/meetings?{bad}", token)
        assert refused.status_code == 400 and refused.json()["code"] == 300, bad
    assert api(emu, "GET", f"/users/me/meetings?type=upcoming&next_page_token={token_}", other).status_code == 400


def test_a_fault_after_handling_answers_garbage_but_the_meeting_is_made(emu: EmulatorHandle) -> None:
    token = connect(emu)["access_token"]
    fault = {
        "method": "POST",
        "path": "/v2/users/me/meetings",
        "status": 201,
        "body": "{not json",
        "after_handling": True,
    }
    assert control(emu, "POST", "/faults", json=fault).status_code == 201
    answer = create_meeting(emu, token, agenda="ref-1")
    assert (answer.status_code, answer.text) == (201, "{not json")
    assert [m["agenda"] for m in emu.state.meetings()] == ["ref-1"]
    assert [(c["method"], c["status"]) for c in emu.calls][-1] == ("POST", 201)
    for bad in ({"after_handling": 1}, {"after_handling": True}):  # needs a real bool, and a status
        assert control(emu, "POST", "/faults", json=bad).status_code == 400
