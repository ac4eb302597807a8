"""Using a connection: call_zoom, refresh with rotation under the lock, revocation, the sealed tokens at rest."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.zoom_emulator import EmulatorHandle
from tests.integration.connection.zoom_flow import (
    KmsCounter,
    Person,
    connect,
    new_person,
    scan_all_tables,
    token_calls,
)

pytestmark = pytest.mark.integration


def _stored_tokens(user_id: str) -> dict[str, str]:
    from link_zoom.adapters import connections_store, crypto

    record = connections_store.get(user_id)
    assert record is not None
    tokens: dict[str, str] = json.loads(crypto.unseal(user_id, record.sealed))
    return tokens


def _expire_our_copy(local_aws: LocalResources, user_id: str) -> None:
    """Our record says the access token has expired (as it would an hour after the last refresh)."""
    local_aws.client("dynamodb").update_item(
        TableName=local_aws.tables["ZoomConnectionsTable"],
        Key={"user_id": {"S": user_id}},
        UpdateExpression="SET access_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 10)}},
    )


def _whoami(access_token: str) -> str:
    from link_zoom.adapters.zoom_oauth import current_user

    return current_user(access_token).id


@pytest.fixture
def alice(zoom: EmulatorHandle, oauth_function: Any) -> Person:
    person = new_person("alice")
    connect(oauth_function, person)
    zoom.clear_calls()
    return person


def test_call_zoom_gives_the_stored_token_without_refreshing(zoom: EmulatorHandle, alice: Person) -> None:
    from link_zoom import composition

    zoom_user_id = composition.connection().call_zoom(alice.user_id, _whoami)

    assert zoom_user_id == zoom.state.user_by_email(alice.email).id  # type: ignore[union-attr]
    assert token_calls(zoom) == []


def test_not_connected_is_connection_gone(zoom: EmulatorHandle) -> None:
    from link_zoom import composition
    from link_zoom.domain.connection import ConnectionGone

    with pytest.raises(ConnectionGone):
        composition.connection().call_zoom(new_person().user_id, _whoami)
    assert zoom.calls == []


def test_an_expired_access_token_is_refreshed_and_the_refresh_token_rotates(
    zoom: EmulatorHandle, alice: Person, local_aws: LocalResources
) -> None:
    from link_zoom import composition

    before = _stored_tokens(alice.user_id)
    _expire_our_copy(local_aws, alice.user_id)

    composition.connection().call_zoom(alice.user_id, _whoami)

    after = _stored_tokens(alice.user_id)
    assert len(token_calls(zoom)) == 1
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    # Zoom rotated: the old refresh token is dead, the new one lives.
    with pytest.raises(Exception, match="Invalid Token"):
        zoom.state.refresh(zoom.config.client_id, before["refresh_token"])
    # The next call uses the stored fresh token as is.
    zoom.clear_calls()
    composition.connection().call_zoom(alice.user_id, _whoami)
    assert token_calls(zoom) == []


def test_a_401_from_zoom_refreshes_once_and_retries(zoom: EmulatorHandle, alice: Person) -> None:
    from link_zoom import composition

    zoom.state.expire_access_tokens(alice.email)  # Zoom's side only: our record still thinks it is valid

    composition.connection().call_zoom(alice.user_id, _whoami)

    assert [(c["path"], c["status"]) for c in zoom.calls] == [
        ("/v2/users/me", 401),
        ("/oauth/token", 200),
        ("/v2/users/me", 200),
    ]


@pytest.mark.parametrize("expired_at", ["zoom", "our record"])
def test_five_concurrent_calls_after_expiry_make_exactly_one_refresh(
    zoom: EmulatorHandle, alice: Person, local_aws: LocalResources, expired_at: str
) -> None:
    from link_zoom import composition

    if expired_at == "zoom":
        zoom.state.expire_access_tokens(alice.email)
    else:
        _expire_our_copy(local_aws, alice.user_id)
    zoom.set_latency(100)  # a refresh that takes a moment, as Zoom's does, so the others must wait for it
    barrier = threading.Barrier(5)
    results: list[str] = []
    errors: list[BaseException] = []

    def request() -> None:
        barrier.wait()
        try:
            results.append(composition.connection().call_zoom(alice.user_id, _whoami))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 5 and len(set(results)) == 1
    assert len(token_calls(zoom)) == 1
    assert all(call["status"] == 200 for call in token_calls(zoom))


def test_a_refresh_answered_invalid_grant_removes_the_connection(
    zoom: EmulatorHandle, alice: Person, local_aws: LocalResources
) -> None:
    from link_zoom import composition
    from link_zoom.adapters.preferences_store import list_preferences
    from link_zoom.domain.connection import ConnectionGone

    zoom.state.deauthorize(alice.email)  # the user removed the app at Zoom

    with pytest.raises(ConnectionGone):
        composition.connection().call_zoom(alice.user_id, _whoami)

    assert [(c["path"], c["status"]) for c in zoom.calls] == [("/v2/users/me", 401), ("/oauth/token", 400)]
    assert not composition.connection().connection_status(alice.user_id).connected
    assert list_preferences(alice.user_id) == []


def test_a_fresh_token_rejected_again_means_the_app_was_removed(zoom: EmulatorHandle, alice: Person) -> None:
    from link_zoom import composition
    from link_zoom.domain.connection import ConnectionGone
    from link_zoom.errors import ZoomTokenRejected

    seen: list[str] = []

    def always_rejected(access_token: str) -> str:
        seen.append(access_token)
        raise ZoomTokenRejected()

    with pytest.raises(ConnectionGone):
        composition.connection().call_zoom(alice.user_id, always_rejected)

    assert len(seen) == 2 and seen[0] != seen[1]
    assert len(token_calls(zoom)) == 1
    assert not composition.connection().connection_status(alice.user_id).connected


@pytest.mark.parametrize("status", [500, 503, 429])
def test_zoom_failing_a_refresh_keeps_the_connection(
    zoom: EmulatorHandle, alice: Person, local_aws: LocalResources, status: int
) -> None:
    from link_zoom import composition
    from link_zoom.errors import ZoomRateLimited, ZoomUnavailable

    _expire_our_copy(local_aws, alice.user_id)
    zoom.add_fault("POST", "/oauth/token", status)

    with pytest.raises(ZoomRateLimited if status == 429 else ZoomUnavailable):
        composition.connection().call_zoom(alice.user_id, _whoami)

    assert composition.connection().connection_status(alice.user_id).connected
    # The lock was released: the next request refreshes at once.
    composition.connection().call_zoom(alice.user_id, _whoami)
    assert [c["status"] for c in token_calls(zoom)] == [status, 200]


def test_a_warm_call_zoom_makes_no_kms_call(zoom: EmulatorHandle, alice: Person, kms_calls: KmsCounter) -> None:
    from link_zoom import composition
    from link_zoom.adapters import crypto

    crypto.forget_cached_keys()  # a cold container
    composition.connection().call_zoom(alice.user_id, _whoami)
    cold = list(kms_calls.calls)
    kms_calls.clear()

    for _ in range(20):
        composition.connection().call_zoom(alice.user_id, _whoami)

    assert cold == ["Decrypt"]
    assert len(kms_calls) == 0
    print(f"\nKMS calls: cold call_zoom {len(cold)}, warm call_zoom 0 per call (20 calls)")


def test_a_refresh_costs_one_kms_call_and_the_others_then_read_without_kms(
    zoom: EmulatorHandle, alice: Person, local_aws: LocalResources, kms_calls: KmsCounter
) -> None:
    from link_zoom import composition

    composition.connection().call_zoom(alice.user_id, _whoami)  # warm
    kms_calls.clear()
    _expire_our_copy(local_aws, alice.user_id)

    composition.connection().call_zoom(alice.user_id, _whoami)
    composition.connection().call_zoom(alice.user_id, _whoami)

    assert kms_calls.calls == ["GenerateDataKey"]


def test_no_byte_of_a_token_is_in_any_table(
    zoom: EmulatorHandle, oauth_function: Any, local_aws: LocalResources, all_logs: io.StringIO
) -> None:
    from link_zoom import composition

    person = new_person("carol")
    connect(oauth_function, person)
    first = _stored_tokens(person.user_id)
    _expire_our_copy(local_aws, person.user_id)
    composition.connection().call_zoom(person.user_id, _whoami)  # a refresh: rotated tokens too
    second = _stored_tokens(person.user_id)
    tokens = {first["access_token"], first["refresh_token"], second["access_token"], second["refresh_token"]}
    # Zoom's tokens are base64url text: a 24-character stretch anywhere is a leak, whatever the encoding.
    needles = {token[i : i + 24] for token in tokens for i in range(0, len(token) - 24, 12)}
    forms: set[bytes] = set()
    for needle in needles:
        raw = needle.encode()
        forms |= {raw, raw.hex().encode(), raw.hex().upper().encode()}
        for shift in range(3):  # base64 of the stretch at each alignment inside a longer value
            encoded = base64.b64encode(b"\0" * shift + raw)[4:-4]
            forms |= {encoded, encoded.replace(b"+", b"-").replace(b"/", b"_")}

    haystack = b"".join(_wire_bytes(item) for items in scan_all_tables(local_aws).values() for item in items)
    logs = all_logs.getvalue().encode()

    # The search itself finds a token hidden in each form (raw, hex, base64 at an odd offset).
    token = second["refresh_token"].encode()
    for planted in (token, token.hex().encode(), base64.b64encode(b"x" + token)):
        assert any(form in planted for form in forms)
    assert person.user_id.encode() in haystack, "the scan saw nothing"
    assert b'"message":"Zoom connected"' in logs and b"/oauth/token" in logs, "the logs were not captured"
    assert [form for form in forms if form in haystack] == []
    assert [form for form in forms if form in logs] == []


def _wire_bytes(value: Any) -> bytes:
    """Every string, number and binary in an item, in every form DynamoDB would hand it out."""
    if isinstance(value, dict):
        return b"|".join(_wire_bytes(key) + b"=" + _wire_bytes(inner) for key, inner in value.items())
    if isinstance(value, list):
        return b"|".join(_wire_bytes(inner) for inner in value)
    if isinstance(value, bytes | bytearray):
        return bytes(value) + b"|" + base64.b64encode(value)
    return str(value).encode()


def test_a_record_copied_to_another_user_does_not_decrypt(
    zoom: EmulatorHandle, alice: Person, local_aws: LocalResources, kms_calls: KmsCounter
) -> None:
    from link_zoom import composition
    from link_zoom.adapters import connections_store, crypto
    from link_zoom.domain.connection import ConnectionGone

    composition.connection().call_zoom(alice.user_id, _whoami)  # alice's data key is now in the warm cache
    mallory = new_person("mallory")
    ddb = local_aws.client("dynamodb")
    table = local_aws.tables["ZoomConnectionsTable"]
    item = ddb.get_item(TableName=table, Key={"user_id": {"S": alice.user_id}}, ConsistentRead=True)["Item"]
    ddb.put_item(TableName=table, Item={**item, "user_id": {"S": mallory.user_id}})
    copied = connections_store.get(mallory.user_id)
    assert copied is not None

    with pytest.raises(crypto.SealBroken):
        crypto.unseal(mallory.user_id, copied.sealed)
    assert "Decrypt" in kms_calls.calls  # KMS itself was asked (the cache is per user) and refused
    with pytest.raises(ConnectionGone):
        composition.connection().call_zoom(mallory.user_id, _whoami)

    assert connections_store.get(mallory.user_id) is None  # the unusable copy is removed
    assert composition.connection().call_zoom(alice.user_id, _whoami)  # alice's own record is untouched
    assert not [c for c in zoom.calls if c["path"] == "/oauth/token"]


def test_disconnect_revokes_at_zoom_and_removes_the_connection_everywhere(zoom: EmulatorHandle, alice: Person) -> None:
    from link_zoom import composition
    from link_zoom.adapters.preferences_store import list_preferences
    from link_zoom.domain.connection import ConnectionGone

    tokens = _stored_tokens(alice.user_id)

    assert composition.connection().disconnect(alice.user_id) is True

    assert ("POST", "/oauth/revoke", 200) in [(c["method"], c["path"], c["status"]) for c in zoom.calls]
    with pytest.raises(Exception, match="Invalid Token"):
        zoom.state.refresh(zoom.config.client_id, tokens["refresh_token"])
    with pytest.raises(Exception, match="Invalid access token"):
        zoom.state.authenticate(tokens["access_token"])
    assert composition.connection().connection_status(alice.user_id).connected is False
    assert list_preferences(alice.user_id) == []
    with pytest.raises(ConnectionGone):
        composition.connection().call_zoom(alice.user_id, _whoami)
    assert composition.connection().disconnect(alice.user_id) is False


def test_disconnect_with_an_expired_access_token_refreshes_then_revokes_with_the_new_one(
    zoom: EmulatorHandle, alice: Person, local_aws: LocalResources
) -> None:
    from link_zoom import composition

    tokens = _stored_tokens(alice.user_id)
    zoom.state.expire_access_tokens(alice.email)
    _expire_our_copy(local_aws, alice.user_id)

    assert composition.connection().disconnect(alice.user_id) is True

    oauth = [(c["method"], c["path"], c["status"]) for c in zoom.calls if c["path"].startswith("/oauth/")]
    assert oauth[-2:] == [("POST", "/oauth/token", 200), ("POST", "/oauth/revoke", 200)]
    with pytest.raises(Exception, match="Invalid Token"):
        zoom.state.refresh(zoom.config.client_id, tokens["refresh_token"])  # rotated by the refresh, then revoked
    assert zoom.state.deauthorize(alice.email) == 0  # no grant of alice's is left at Zoom


def test_disconnect_works_when_zoom_is_down(zoom: EmulatorHandle, alice: Person) -> None:
    from link_zoom import composition

    zoom.add_fault("POST", "/oauth/revoke", 503)

    assert composition.connection().disconnect(alice.user_id) is True

    assert composition.connection().connection_status(alice.user_id).connected is False


def test_a_new_consent_replaces_the_connection(zoom: EmulatorHandle, alice: Person, oauth_function: Any) -> None:
    from link_zoom import composition

    before = _stored_tokens(alice.user_id)

    connect(oauth_function, alice)

    assert _stored_tokens(alice.user_id) != before
    assert composition.connection().call_zoom(alice.user_id, _whoami)
