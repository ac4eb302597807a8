"""Connecting Zoom: GET /v1/zoom/authorize, Zoom's consent page (the emulator's), GET /v1/zoom/callback."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.events import api_event
from devstack.zoom_emulator import EmulatorHandle, complete_consent
from tests.integration.connection.zoom_flow import (
    PASSWORD,
    authorize_url,
    callback,
    connect,
    invoke,
    new_person,
    query_of,
    start,
    token_calls,
)

pytestmark = pytest.mark.integration


def _page(response: dict[str, Any]) -> str:
    assert response["multiValueHeaders"]["Content-Type"] == ["text/html; charset=utf-8"]
    assert "default-src 'none'" in response["multiValueHeaders"]["Content-Security-Policy"][0]
    return str(response["body"])


def _sweep_messages(local_aws: LocalResources) -> list[dict[str, Any]]:
    sqs = local_aws.client("sqs")
    url = local_aws.queues["ConnectSweepQueue"]
    bodies: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if not answer.get("Messages"):
            return bodies
        for message in answer["Messages"]:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_authorize_gives_zooms_url_with_state_and_s256_challenge(zoom: EmulatorHandle, oauth_function: Any) -> None:
    person = new_person()

    response = start(oauth_function, person)

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["authorize_url"].startswith(f"{zoom.oauth_base_url}/oauth/authorize?")
    params = query_of(body["authorize_url"])
    assert params["response_type"] == "code"
    assert params["client_id"] == zoom.config.client_id
    assert params["redirect_uri"] == "http://127.0.0.1:3000/v1/zoom/callback"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43 and len(params["state"]) >= 43
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=9) < expires_at - datetime.now(UTC) <= timedelta(minutes=10)


def test_authorize_is_refused_when_the_feature_is_off(zoom: EmulatorHandle, oauth_function: Any) -> None:
    from link_zoom.adapters import flag

    flag.set_zoom_enabled(False)

    response = start(oauth_function, new_person())

    assert response["statusCode"] == 403
    assert json.loads(response["body"])["error"]["code"] == "feature_disabled"


def test_authorize_needs_a_signed_in_user(zoom: EmulatorHandle, oauth_function: Any) -> None:
    response = invoke(oauth_function, api_event("GET", "/v1/zoom/authorize"))

    assert response["statusCode"] == 401


def test_full_consent_flow_with_pkce_connects_the_user(
    zoom: EmulatorHandle, oauth_function: Any, local_aws: LocalResources
) -> None:
    from link_zoom import composition
    from link_zoom.adapters.preferences_store import list_preferences

    _sweep_messages(local_aws)
    person = new_person("alice")
    location = complete_consent(authorize_url(oauth_function, person), person.email, PASSWORD)
    code, state = query_of(location)["code"], query_of(location)["state"]

    response = callback(oauth_function, location)

    assert response["statusCode"] == 200
    page = _page(response)
    assert "Zoom is connected — you can return to Link." in page
    assert code not in page and state not in page
    status = composition.connection().connection_status(person.user_id)
    assert status.connected
    assert status.reauthorize_after is not None
    assert abs(status.reauthorize_after - (datetime.now(UTC) + timedelta(days=365))) < timedelta(minutes=1)
    assert [(row.resource, row.tag) for row in list_preferences(person.user_id)] == [("Zoom", "oauth")]
    # The emulator checks the PKCE verifier against the challenge: the exchange succeeding proves it was sent.
    assert [(c["method"], c["path"], c["status"]) for c in zoom.calls if not c["path"].startswith("/oauth/auth")] == [
        ("POST", "/oauth/token", 200),
        ("GET", "/v2/users/me", 200),
    ]
    assert _sweep_messages(local_aws) == [{"user_id": person.user_id}]


def rewrite_states_of(local_aws: LocalResources, user_id: str, **attributes: dict[str, str]) -> None:
    """Sets `attributes` (DynamoDB-typed) on the OAuth state rows the user started, behind the service's back."""
    table = local_aws.tables["OAuthStatesTable"]
    ddb = local_aws.client("dynamodb")
    for item in ddb.scan(TableName=table)["Items"]:
        if item["user_id"]["S"] == user_id:
            ddb.put_item(TableName=table, Item={**item, **attributes})


def test_a_wrong_code_verifier_fails_the_exchange(
    zoom: EmulatorHandle, oauth_function: Any, local_aws: LocalResources
) -> None:
    from link_zoom import composition

    person = new_person()
    location = complete_consent(authorize_url(oauth_function, person), person.email, PASSWORD)
    # Rewrite the verifier kept with the state: Zoom must then refuse the code.
    rewrite_states_of(local_aws, person.user_id, code_verifier={"S": secrets.token_urlsafe(64)})

    response = callback(oauth_function, location)

    assert response["statusCode"] == 502
    assert not composition.connection().connection_status(person.user_id).connected


def test_a_reused_state_is_refused(zoom: EmulatorHandle, oauth_function: Any) -> None:
    person = new_person()
    location = complete_consent(authorize_url(oauth_function, person), person.email, PASSWORD)
    assert callback(oauth_function, location)["statusCode"] == 200
    zoom.clear_calls()

    replay = callback(oauth_function, location)

    assert replay["statusCode"] == 400
    assert "already used" in _page(replay)
    assert token_calls(zoom) == []


def test_an_expired_state_is_refused(zoom: EmulatorHandle, oauth_function: Any, local_aws: LocalResources) -> None:
    from link_zoom import composition

    person = new_person()
    location = complete_consent(authorize_url(oauth_function, person), person.email, PASSWORD)
    expired = {"N": str(int(time.time()) - 1)}  # 10 minutes and 1 second later
    rewrite_states_of(local_aws, person.user_id, expires_at_epoch=expired)

    response = callback(oauth_function, location)

    assert response["statusCode"] == 400
    assert "10 minutes" in _page(response)
    assert token_calls(zoom) == []
    assert not composition.connection().connection_status(person.user_id).connected


def test_a_state_we_never_issued_is_refused(zoom: EmulatorHandle, oauth_function: Any) -> None:
    person = new_person()
    genuine_url = authorize_url(oauth_function, person)
    # A code Zoom really issued, but with a state from elsewhere (a forged callback link, another app's flow).
    forged_url = genuine_url.replace(query_of(genuine_url)["state"], secrets.token_urlsafe(32))
    location = complete_consent(forged_url, person.email, PASSWORD)

    response = callback(oauth_function, location)

    assert response["statusCode"] == 400
    assert token_calls(zoom) == []


def test_a_tampered_state_is_refused_and_does_not_spend_the_real_one(zoom: EmulatorHandle, oauth_function: Any) -> None:
    person = new_person()
    location = complete_consent(authorize_url(oauth_function, person), person.email, PASSWORD)
    params = query_of(location)
    state = params["state"]
    tampered = state[:-1] + ("A" if state[-1] != "A" else "B")

    refused = callback(oauth_function, f"code={params['code']}&state={tampered}")
    accepted = callback(oauth_function, location)

    assert refused["statusCode"] == 400
    assert accepted["statusCode"] == 200


def test_a_callback_without_state_is_refused(zoom: EmulatorHandle, oauth_function: Any) -> None:
    response = callback(oauth_function, "code=abc")

    assert response["statusCode"] == 400
    assert token_calls(zoom) == []


def test_declining_at_zoom_is_a_400_page_and_spends_the_state(zoom: EmulatorHandle, oauth_function: Any) -> None:
    from link_zoom import composition

    person = new_person()
    url = authorize_url(oauth_function, person)
    location = complete_consent(url, person.email, PASSWORD, allow=False)
    assert query_of(location)["error"] == "access_denied"

    response = callback(oauth_function, location)

    assert response["statusCode"] == 400
    assert "declined" in _page(response)
    assert not composition.connection().connection_status(person.user_id).connected
    # The same state cannot be used for a later code.
    later = complete_consent(url, person.email, PASSWORD)
    assert callback(oauth_function, later)["statusCode"] == 400


@pytest.mark.parametrize("status", [500, 503, 400])
def test_a_failing_token_exchange_is_a_502_page(zoom: EmulatorHandle, oauth_function: Any, status: int) -> None:
    from link_zoom import composition

    person = new_person()
    location = complete_consent(authorize_url(oauth_function, person), person.email, PASSWORD)
    zoom.add_fault("POST", "/oauth/token", status)

    response = callback(oauth_function, location)

    assert response["statusCode"] == 502
    page = _page(response)
    assert "Zoom is not connected" in page and query_of(location)["code"] not in page
    assert not composition.connection().connection_status(person.user_id).connected


def test_a_failing_users_me_is_a_502_and_the_new_grant_is_revoked(zoom: EmulatorHandle, oauth_function: Any) -> None:
    person = new_person()
    location = complete_consent(authorize_url(oauth_function, person), person.email, PASSWORD)
    zoom.add_fault("GET", "/v2/users/me", 503)

    response = callback(oauth_function, location)

    assert response["statusCode"] == 502
    assert ("POST", "/oauth/revoke", 200) in [(c["method"], c["path"], c["status"]) for c in zoom.calls]


def test_the_state_binds_the_connection_to_the_user_who_started(zoom: EmulatorHandle, oauth_function: Any) -> None:
    from link_zoom import composition

    alice, mallory = new_person("alice"), new_person("mallory")

    connect(oauth_function, alice)

    assert composition.connection().connection_status(alice.user_id).connected
    assert not composition.connection().connection_status(mallory.user_id).connected


def test_zoom_redirect_url_overrides_the_derived_callback(
    zoom: EmulatorHandle, oauth_function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from link_zoom import composition
    from link_zoom.config import get_settings

    monkeypatch.setenv("ZOOM_REDIRECT_URL", "http://localhost:9999/v1/zoom/callback")
    get_settings.cache_clear()
    composition.reset()  # what was built from the old settings

    params = query_of(authorize_url(oauth_function, new_person()))

    assert params["redirect_uri"] == "http://localhost:9999/v1/zoom/callback"
