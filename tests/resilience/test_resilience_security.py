"""Security: no token bytes in any table or log; one user can never read or change another's data; webhooks
that are replayed or forged change nothing; OAuth states are single use and bound to the user who started;
sign-in usernames cannot inject into the directory's LDAP filters.

Over HTTP through the stack (its Zoom is this process's emulator, so every token it issues is known), plus an
in-process run whose log output, every library's DEBUG lines included, is captured and searched too.
"""

from __future__ import annotations

import base64
import io
import json
import secrets as stdlib_secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from devstack.aws import LocalResources
from devstack.stack_process import StackProcess
from devstack.template import ROOT
from devstack.zoom_emulator import EmulatorHandle, complete_consent, sign_webhook
from devstack.zoom_emulator.webhooks import iso_ms
from tests.integration.connection.zoom_flow import Person
from tests.resilience.harness import (
    ZOOM_PASSWORD,
    ApiUser,
    SecretRegistry,
    error_code,
    invoke_api,
    log_dump,
    sign_in,
    table_dump,
)
from tests.support.logs import all_log_lines
from tests.support.waiting import wait_for

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
EVENT = {"topic": "Private", "start": "2099-09-01T09:00:00Z", "end": "2099-09-01T09:30:00Z"}


def secured_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every route docs/openapi.yaml says needs a session, path parameters filled in."""
    document = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS and operation.get("security", document["security"]):
                concrete = path.replace("{event_id}", "evt-x").replace("{resource}", "Zoom").replace("{tag}", "oauth")
                found.append((method.upper(), concrete))
    return found


SECURED = secured_operations()


@pytest.fixture
def ada_connected(zoom_on: EmulatorHandle, admin: ApiUser, secrets: SecretRegistry) -> ApiUser:
    if not admin.connected():
        admin.connect_zoom(secrets)
    return admin


def webhook(stack: StackProcess, body: bytes, timestamp: str, signature: str) -> requests.Response:
    return requests.post(
        f"{stack.api_url}/v1/zoom/webhook",
        data=body,
        timeout=30,
        headers={"Content-Type": "application/json", "x-zm-request-timestamp": timestamp, "x-zm-signature": signature},
    )


def event_body(event: str, payload: dict[str, Any]) -> bytes:
    return json.dumps({"event": event, "payload": payload, "event_ts": int(time.time() * 1000)}).encode()


# ---------------------------------------------------------------- authentication on every route


@pytest.mark.parametrize(("method", "path"), SECURED, ids=[f"{m} {p}" for m, p in SECURED])
def test_every_secured_route_refuses_a_missing_malformed_forged_or_revoked_token(
    method: str, path: str, stack: StackProcess, secrets: SecretRegistry
) -> None:
    revoked = sign_in(stack.api_url, stack.user("user"), secrets)
    assert revoked.call("DELETE", "/v1/session").status_code == 204
    attempts = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {revoked.token}"},
        "malformed": {"Authorization": "Bearer not a token!"},
        "forged": {"Authorization": f"Bearer {stdlib_secrets.token_urlsafe(32)}"},
        "revoked": revoked.auth,
    }
    for name, headers in attempts.items():
        answer = requests.request(
            method,
            f"{stack.api_url}{path}",
            headers=headers,
            timeout=30,
            json={} if method in ("PUT", "POST") else None,
        )
        assert (answer.status_code, error_code(answer)) == (401, "unauthorized"), (name, answer.text)


# ---------------------------------------------------------------- one user, another user's data


def test_a_user_never_sees_or_changes_another_users_data(
    stack: StackProcess, bob_connected: ApiUser, ada_connected: ApiUser, zoom_on: EmulatorHandle
) -> None:
    bob, ada = bob_connected, ada_connected
    event_path = f"/v1/events/shared-{uuid.uuid4()}/zoom"  # the same event id in both calendars
    bobs = bob.call("PUT", event_path, EVENT).json()
    # Identity comes from the token only: query strings, headers and bodies naming the other user change nothing.
    smuggled = {"X-User-Id": bob.user_id, "X-Amzn-Oidc-Identity": bob.user_id}
    adas = ada.call("PUT", f"{event_path}?user_id={bob.user_id}", EVENT, smuggled)
    assert adas.status_code == 200 and adas.json()["meeting_id"] != bobs["meeting_id"]
    assert ada.call("PUT", event_path, {**EVENT, "user_id": bob.user_id}).status_code == 400

    assert ada.call("DELETE", f"{event_path}?user_id={bob.user_id}", headers=smuggled).status_code == 204
    alive = {str(m["id"]) for m in zoom_on.state.meetings()}
    assert bobs["meeting_id"] in alive and adas.json()["meeting_id"] not in alive
    zoom_on.clear_calls()
    assert bob.call("PUT", event_path, EVENT).json() == bobs  # untouched: same meeting, no Zoom call
    assert zoom_on.calls == []

    key = {"Idempotency-Key": f"mail-{uuid.uuid4()}"}
    first = bob.call("POST", "/v1/compose-link", {}, key).json()
    assert ada.call("POST", "/v1/compose-link", {}, key).json()["meeting_id"] != first["meeting_id"]

    ada.call("DELETE", "/v1/account/preferences/Zoom/oauth")  # ada disconnects herself
    assert ada.call("GET", f"/v1/features?user_id={bob.user_id}", headers=smuggled).json()["zoom"]["connected"] is False
    assert bob.connected()
    assert [
        p["resource"] for p in ada.call("GET", f"/v1/account/preferences?user_id={bob.user_id}").json()["preferences"]
    ].count("Zoom") == 0
    assert ada.call("DELETE", "/v1/account/preferences/Zoom/oauth", headers=smuggled).status_code == 404
    assert bob.connected(), "ada's delete never reaches bob's connection"

    for method, path in (("GET", "/v1/admin/features/zoom"), ("PUT", "/v1/admin/features/zoom")):
        answer = bob.call(method, path, {"enabled": False} if method == "PUT" else None)
        assert (answer.status_code, error_code(answer)) == (403, "forbidden")
    assert ada.call("GET", "/v1/admin/features/zoom").json() == {"enabled": True}

    other = sign_in(stack.api_url, stack.user("admin"))
    assert other.call("DELETE", "/v1/session", headers={"X-Session-Id": bob.token}).status_code == 204
    assert other.call("GET", "/v1/features").status_code == 401
    assert bob.call("GET", "/v1/features").status_code == 200, "signing out revokes only the caller's session"


# ---------------------------------------------------------------- webhooks: replayed, forged


def test_replayed_and_forged_webhooks_change_nothing(
    stack: StackProcess, bob_connected: ApiUser, zoom_on: EmulatorHandle
) -> None:
    secret = zoom_on.config.webhook_secret
    zoom_user = zoom_on.state.user_by_email(bob_connected.upn)
    assert zoom_user is not None
    body = event_body(
        "app_deauthorized",
        {
            "user_id": zoom_user.id,
            "account_id": zoom_user.account_id,
            "client_id": zoom_on.config.client_id,
            "deauthorization_time": iso_ms(datetime.now(UTC)),  # after bob's consent: the genuine one acts
        },
    )
    now = int(time.time())
    harmless = event_body("app_deauthorized", {"user_id": "someone-else", "client_id": zoom_on.config.client_id})
    attempts = {
        "replayed (6 minutes old)": (body, str(now - 360), sign_webhook(secret, str(now - 360), body)),
        "from the future (6 minutes)": (body, str(now + 360), sign_webhook(secret, str(now + 360), body)),
        "signed with another secret": (body, str(now), sign_webhook("not-the-secret", str(now), body)),
        "body changed after signing": (body, str(now), sign_webhook(secret, str(now), harmless)),
        "timestamp changed after signing": (body, str(now - 1), sign_webhook(secret, str(now), body)),
        "no signature": (body, str(now), ""),
        "signature not hex": (body, str(now), "v0=" + "z" * 64),
        "another scheme": (body, str(now), sign_webhook(secret, str(now), body).replace("v0=", "v1=")),
    }
    for name, (raw, timestamp, signature) in attempts.items():
        answer = webhook(stack, raw, timestamp, signature)
        assert (answer.status_code, error_code(answer)) == (401, "invalid_signature"), (name, answer.text)
    assert bob_connected.connected(), "no forged or replayed event removed the connection"

    validation = event_body("endpoint.url_validation", {"plainToken": "abc123"})
    answer = webhook(stack, validation, str(now), sign_webhook(secret, str(now), validation))
    assert answer.status_code == 200 and answer.json()["plainToken"] == "abc123"

    genuine = webhook(stack, body, str(int(time.time())), sign_webhook(secret, str(int(time.time())), body))
    assert genuine.status_code == 200
    assert not bob_connected.connected(), "the genuine event is acted on"


# ---------------------------------------------------------------- OAuth state: CSRF and reuse


def _callback(stack: StackProcess, query: str) -> requests.Response:
    return requests.get(f"{stack.api_url}/v1/zoom/callback?{query}", timeout=30)


def _query(location: str) -> str:
    return urlsplit(location).query


def test_a_state_connects_only_the_user_who_started_and_only_once(
    stack: StackProcess, bob: ApiUser, admin: ApiUser, zoom_on: EmulatorHandle, secrets: SecretRegistry
) -> None:
    for user in (bob, admin):
        user.call("DELETE", "/v1/account/preferences/Zoom/oauth")
    adas_url = admin.call("GET", "/v1/zoom/authorize").json()["authorize_url"]
    bobs_url = bob.call("GET", "/v1/zoom/authorize").json()["authorize_url"]

    # Bob's browser goes through ada's flow: whoever signs in at Zoom, the state makes it ada's connection.
    location = complete_consent(adas_url, bob.upn, ZOOM_PASSWORD)
    secrets.add_query(location)
    assert _callback(stack, _query(location)).status_code == 200
    assert admin.connected() and not bob.connected()
    # The same callback again: the state was spent.
    again = _callback(stack, _query(location))
    assert again.status_code == 400 and again.headers["Content-Type"].startswith("text/html")
    assert admin.connected()

    # Bob's code under ada's (spent) state, and under a state nobody issued: refused, nobody connected.
    bob_location = complete_consent(bobs_url, bob.upn, ZOOM_PASSWORD)
    secrets.add_query(bob_location)
    bob_code = parse_qs(_query(bob_location))["code"][0]
    ada_state = parse_qs(_query(location))["state"][0]
    assert _callback(stack, f"code={bob_code}&state={ada_state}").status_code == 400
    assert _callback(stack, f"code={bob_code}&state={stdlib_secrets.token_urlsafe(32)}").status_code == 400
    assert _callback(stack, f"code={bob_code}").status_code == 400
    assert not bob.connected()

    # A state spent by a refusal at Zoom cannot be used afterwards either.
    denied_url = bob.call("GET", "/v1/zoom/authorize").json()["authorize_url"]
    denied = complete_consent(denied_url, bob.upn, ZOOM_PASSWORD, allow=False)
    assert _callback(stack, _query(denied)).status_code == 400
    late = complete_consent(denied_url, bob.upn, ZOOM_PASSWORD)
    assert _callback(stack, _query(late)).status_code == 400
    assert not bob.connected()


def test_a_code_from_one_flow_under_another_users_state_fails_pkce(
    stack: StackProcess, bob: ApiUser, admin: ApiUser, zoom_on: EmulatorHandle, secrets: SecretRegistry
) -> None:
    """The login-CSRF shape: an attacker's code pushed through a victim's pending flow. The state binds the
    flow to its user and the PKCE verifier to the code: the exchange fails and nobody is connected."""
    for user in (bob, admin):
        user.call("DELETE", "/v1/account/preferences/Zoom/oauth")
    attacker = complete_consent(
        admin.call("GET", "/v1/zoom/authorize").json()["authorize_url"], "mallory@evil.example", ZOOM_PASSWORD
    )
    victim_url = bob.call("GET", "/v1/zoom/authorize").json()["authorize_url"]
    victim_state = parse_qs(urlsplit(victim_url).query)["state"][0]
    attacker_code = parse_qs(_query(attacker))["code"][0]
    secrets.add_query(attacker)
    page = _callback(stack, f"code={attacker_code}&state={victim_state}")
    assert page.status_code in (400, 502) and page.headers["Content-Type"].startswith("text/html")
    assert not bob.connected() and not admin.connected()


# ---------------------------------------------------------------- LDAP injection


INJECTIONS = [
    "*",
    "bob*",
    "b*b",
    "*)(objectClass=*",
    "bob)(|(objectClass=*))",
    "*)(uid=*))(|(uid=*",
    "bob)(&)",
    "bob\x00",
    "bob\x00@corp.example",
    "bob\\00",
    "CORP\\*",
    "CORP\\bob)(",
    "CORP\\b*",
    "*@corp.example",
    "bob@corp.example)(x",
    "ada)(memberOf=*)",
    "admin*)((|userPassword=*)",
    "\\2a",
    "bob%00",
    "(bob)",
    "bob@corp.example\\",
    "CN=Bob User,CN=Users,DC=corp,DC=example",
    "bob@*",
    "ada@corp.example)(|(cn=*",
]


def test_usernames_cannot_inject_into_the_directory(stack: StackProcess, secrets: SecretRegistry) -> None:
    real = stack.user("user")
    for username in INJECTIONS:
        answer = requests.post(
            f"{stack.api_url}/v1/session", json={"username": username, "password": real["password"]}, timeout=30
        )
        assert (answer.status_code, error_code(answer)) == (401, "invalid_credentials"), (username, answer.text)
        assert answer.json()["error"]["message"] == "The username or password is not correct."
    for password in ("*", ")(cn=*"):
        answer = requests.post(
            f"{stack.api_url}/v1/session", json={"username": real["username"], "password": password}, timeout=30
        )
        assert (answer.status_code, error_code(answer)) == (401, "invalid_credentials")
    # Not locked out by any of it (a success also clears bob's failure count for the rest of the suite).
    sign_in(stack.api_url, real, secrets)


# ---------------------------------------------------------------- token bytes in tables and logs


def _use_zoom_over_http(stack: StackProcess, user: ApiUser, zoom: EmulatorHandle, secrets: SecretRegistry) -> None:
    """Everything that touches a token: connect, create, move, delete, refresh, the stream, disconnect."""
    path = f"/v1/events/scan-{uuid.uuid4()}/zoom"
    assert user.call("POST", "/v1/compose-link", {}).status_code == 201
    assert user.call("PUT", path, EVENT).status_code == 200
    assert user.call("PUT", path, {**EVENT, "end": "2099-09-01T10:00:00Z"}).status_code == 200
    zoom.state.expire_access_tokens(user.upn)
    assert user.call("DELETE", path).status_code == 204  # after a refresh
    ddb, table = stack.aws("dynamodb"), stack.info["calendar_table"]
    key = {"user_id": {"S": user.user_id}, "event_id": {"S": f"scan-{uuid.uuid4()}"}}
    ddb.put_item(
        TableName=table,
        Item={
            **key,
            "subject": {"S": "Scan"},
            "start": {"S": EVENT["start"]},
            "end": {"S": EVENT["end"]},
            "zoom": {"BOOL": True},
        },
    )
    wait_for(lambda: "zoom_meeting_id" in ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"], 15)
    assert user.call("DELETE", "/v1/account/preferences/Zoom/oauth").status_code == 204
    user.connect_zoom(secrets)


def test_no_token_bytes_in_any_table_or_log(
    stack: StackProcess,
    bob_connected: ApiUser,
    zoom_on: EmulatorHandle,
    secrets: SecretRegistry,
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    person: Person,
    local_aws: LocalResources,
) -> None:
    _use_zoom_over_http(stack, bob_connected, zoom_on, secrets)
    # In process too, with every logger at DEBUG: connect, create, refresh, disconnect. KMS's data keys count
    # as secrets here: with them, the sealed tokens in the table open.
    from link_zoom.adapters import crypto
    from link_zoom.adapters.aws import client

    def remember_data_key(parsed: dict[str, Any], **_: Any) -> None:
        if isinstance(parsed.get("Plaintext"), bytes):
            secrets.add("kms data key", base64.b64encode(parsed["Plaintext"]).decode())

    kms = client("kms")
    kms.meta.events.register("after-call.kms.*", remember_data_key)
    crypto.forget_cached_keys()
    # Every log line of the service's own work (not of the test's browser: it carries codes in URLs, and logs
    # through urllib3 too).
    logs = io.StringIO()
    invoke_api(functions, "DELETE", "/v1/account/preferences/Zoom/oauth", person.authorizer)
    with all_log_lines(logs):
        start = invoke_api(functions, "GET", "/v1/zoom/authorize", person.authorizer).json()
    secrets.add_query(start["authorize_url"])
    location = complete_consent(start["authorize_url"], person.email, ZOOM_PASSWORD)  # the browser
    with all_log_lines(logs):
        assert invoke_api(functions, "GET", f"/v1/zoom/callback?{_query(location)}").status == 200
        assert invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {}).status == 201
        zoom.state.expire_access_tokens(person.email)
        assert invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {}).status == 201
        assert invoke_api(functions, "DELETE", "/v1/account/preferences/Zoom/oauth", person.authorizer).status == 204
    kms.meta.events.unregister("after-call.kms.*", remember_data_key)

    assert {
        "zoom access token",
        "zoom refresh token",
        "oauth code",
        "oauth state",
        "session token",
        "kms data key",
    } <= secrets.labels(), "the scan looks for every kind of secret"
    time.sleep(0.5)  # the stack's log files are written by its threads
    places = {
        **{f"stack table {name}": text for name, text in table_dump(stack.aws("dynamodb")).items()},
        **{f"session table {name}": text for name, text in table_dump(local_aws.client("dynamodb")).items()},
        **log_dump([*stack.logs_dir.glob("*.log"), stack.output]),
        "captured in-process logs": logs.getvalue(),
    }
    assert any("zoom_meeting_id" in text for text in places.values()), "the scan sees the data"
    leaks = {place: found for place, text in places.items() if (found := secrets.find(text))}
    assert leaks == {}, f"{len(secrets)} secrets looked for; found: {leaks}"
