"""The connection's domain rules with in-process AWS and a fake Zoom transport (no sockets)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from link_zoom import composition
from link_zoom.domain import connection
from tests.unit.connection.conftest import CLIENT_ID, FakeZoomTransport

USER = "6cf7068e-7348-4e94-ad7b-9cf9002b11f5"
REDIRECT = "https://api.example/v1/zoom/callback"
TOKENS = {"access_token": "eyJaccess", "token_type": "bearer", "refresh_token": "eyJrefresh", "expires_in": 3599}
ZOOM_USER = {"id": "KDcuGIm1QgePTO8WbOqwIQ", "account_id": "acc"}


def _params(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _connect(zoom_http: FakeZoomTransport) -> None:
    state = _params(composition.connection().start_authorization(USER, REDIRECT).authorize_url)["state"]
    zoom_http.answer(200, TOKENS)
    zoom_http.answer(200, ZOOM_USER)
    composition.connection().complete_authorization(state, "the-code", None)


def test_redirect_uri_is_the_apis_own_callback_unless_configured(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from link_zoom.config import get_settings

    assert (
        composition.connection().redirect_uri_for("https://api.example/api/")
        == "https://api.example/api/v1/zoom/callback"
    )
    monkeypatch.setenv("ZOOM_REDIRECT_URL", "https://link.example/zoom/callback")
    get_settings.cache_clear()
    composition.reset()
    assert composition.connection().redirect_uri_for("https://api.example/api") == "https://link.example/zoom/callback"


def test_the_state_is_stored_only_as_a_hash_with_the_verifier(aws: dict[str, str]) -> None:
    start = composition.connection().start_authorization(USER, REDIRECT)

    params = _params(start.authorize_url)
    items = boto3.client("dynamodb").scan(TableName=aws["OAUTH_STATES_TABLE"])["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["state_hash"]["S"] == hashlib.sha256(params["state"].encode()).hexdigest()
    assert params["state"] not in json.dumps(item)
    assert (item["user_id"]["S"], item["redirect_uri"]["S"]) == (USER, REDIRECT)
    assert connection._s256(item["code_verifier"]["S"]) == params["code_challenge"]
    assert int(item["expires_at_epoch"]["N"]) == int(start.expires_at.timestamp())
    assert params["client_id"] == CLIENT_ID


def test_completing_stores_a_sealed_connection_the_row_and_asks_for_a_sweep(
    aws: dict[str, str], zoom_http: FakeZoomTransport
) -> None:
    from link_zoom.adapters.preferences_store import list_preferences

    _connect(zoom_http)

    status = composition.connection().connection_status(USER)
    assert status.connected and status.reauthorize_after is not None
    assert [(row.resource, row.tag) for row in list_preferences(USER)] == [("Zoom", "oauth")]
    stored = json.dumps(boto3.client("dynamodb").scan(TableName=aws["CONNECTIONS_TABLE"])["Items"], default=str)
    assert "eyJaccess" not in stored and "eyJrefresh" not in stored
    messages = boto3.client("sqs").receive_message(QueueUrl=aws["SWEEP_QUEUE_URL"])["Messages"]
    assert [json.loads(message["Body"]) for message in messages] == [{"user_id": USER}]


def test_a_connection_past_its_year_is_gone(aws: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    from link_zoom.adapters.preferences_store import list_preferences

    _connect(zoom_http)
    past = int((datetime.now(UTC) - timedelta(seconds=1)).timestamp())
    boto3.client("dynamodb").update_item(
        TableName=aws["CONNECTIONS_TABLE"],
        Key={"user_id": {"S": USER}},
        UpdateExpression="SET expires_at_epoch = :past",
        ExpressionAttributeValues={":past": {"N": str(past)}},
    )

    assert composition.connection().connection_status(USER).connected is False
    with pytest.raises(connection.ConnectionGone):
        composition.connection().call_zoom(USER, lambda token: token)
    assert list_preferences(USER) == []


def test_call_zoom_hands_the_access_token_to_the_operation(aws: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    _connect(zoom_http)

    assert composition.connection().call_zoom(USER, lambda token: token) == "eyJaccess"
    assert repr(connection._Tokens("eyJaccess", "eyJrefresh", "g")) == "_Tokens(generation='g')"


def test_disconnect_without_a_connection_is_false(aws: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    assert composition.connection().disconnect(USER) is False
    assert zoom_http.sent == []


def test_a_rate_limited_code_exchange_is_a_failed_exchange(aws: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    from link_zoom.errors import ZoomUnavailable

    state = _params(composition.connection().start_authorization(USER, REDIRECT).authorize_url)["state"]
    zoom_http.answer(429, {"reason": "Too many requests"}, {"Retry-After": "60"})

    with pytest.raises(ZoomUnavailable):  # the callback's pages are 200, 400 and 502 only
        composition.connection().complete_authorization(state, "the-code", None)
    assert composition.connection().connection_status(USER).connected is False


def test_a_connection_that_cannot_be_stored_is_revoked_and_left_behind_by_nothing(
    aws: dict[str, str], zoom_http: FakeZoomTransport, caplog: pytest.LogCaptureFixture
) -> None:
    from botocore.exceptions import ClientError

    from link_zoom.adapters import preferences_store

    class RowsDown:
        """The preferences table failing its writes (reads and deletes still reach moto)."""

        def upsert_preference(self, user_id: str, resource: str, tag: str) -> object:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "UpdateItem")

        def delete_preference(self, user_id: str, resource: str, tag: str) -> bool:
            return preferences_store.delete_preference(user_id, resource, tag)

    rows_down = dataclasses.replace(composition.connection(), preferences=RowsDown())
    state = _params(rows_down.start_authorization(USER, REDIRECT).authorize_url)["state"]
    zoom_http.answer(200, TOKENS)
    zoom_http.answer(200, ZOOM_USER)
    zoom_http.answer(200, None)  # the revoke

    with pytest.raises(connection.ConnectionNotStored):
        rows_down.complete_authorization(state, "the-code", None)

    revoke = zoom_http.sent[-1]
    # Zoom documents revoke with the access token
    assert (revoke.url or "").endswith("/oauth/revoke") and "token=eyJaccess" in str(revoke.body)
    assert composition.connection().connection_status(USER).connected is False
    assert boto3.client("dynamodb").scan(TableName=aws["CONNECTIONS_TABLE"])["Items"] == []
    assert "eyJaccess" not in caplog.text and "eyJrefresh" not in caplog.text


# --- failures never destroy


def _expire_access_token(aws: dict[str, str]) -> None:
    boto3.client("dynamodb").update_item(
        TableName=aws["CONNECTIONS_TABLE"],
        Key={"user_id": {"S": USER}},
        UpdateExpression="SET access_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )


def _stored_generation(aws: dict[str, str]) -> str:
    items = boto3.client("dynamodb").scan(TableName=aws["CONNECTIONS_TABLE"])["Items"]
    assert len(items) == 1
    return str(items[0]["generation"]["S"])


def test_a_disabled_token_key_keeps_the_connection_and_it_works_once_enabled(
    aws: dict[str, str], zoom_http: FakeZoomTransport
) -> None:
    from link_zoom.adapters import crypto
    from link_zoom.errors import TokenKeyUnavailable

    _connect(zoom_http)
    crypto.forget_cached_keys()  # a cold container
    kms = boto3.client("kms")
    kms.disable_key(KeyId=aws["TOKEN_KEY_ID"])

    with pytest.raises(TokenKeyUnavailable):
        composition.connection().call_zoom(USER, lambda token: token)
    assert composition.connection().connection_status(USER).connected is True
    kms.enable_key(KeyId=aws["TOKEN_KEY_ID"])
    assert composition.connection().call_zoom(USER, lambda token: token) == "eyJaccess"


def test_another_users_record_is_still_dropped(aws: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    from link_zoom.adapters import crypto

    _connect(zoom_http)
    ddb = boto3.client("dynamodb")
    item = ddb.get_item(TableName=aws["CONNECTIONS_TABLE"], Key={"user_id": {"S": USER}})["Item"]
    other = "0b5e6a3c-1f43-4a4e-9a56-7f3d1c0f4b11"
    ddb.put_item(TableName=aws["CONNECTIONS_TABLE"], Item={**item, "user_id": {"S": other}})
    crypto.forget_cached_keys()

    with pytest.raises(connection.ConnectionGone):
        composition.connection().call_zoom(other, lambda token: token)
    assert composition.connection().connection_status(other).connected is False
    assert composition.connection().connection_status(USER).connected is True


def test_no_refresh_starts_without_time_to_store_its_answer(aws: dict[str, str], zoom_http: FakeZoomTransport) -> None:
    from link_zoom.deadline import Deadline
    from link_zoom.errors import ZoomUnavailable

    _connect(zoom_http)
    _expire_access_token(aws)
    generation = _stored_generation(aws)
    sent = len(zoom_http.sent)

    with pytest.raises(ZoomUnavailable):
        composition.connection().call_zoom(USER, lambda token: token, Deadline(connection.REFRESH_NEEDS_S - 1))
    assert len(zoom_http.sent) == sent, "Zoom's token endpoint was not asked"
    assert _stored_generation(aws) == generation
    zoom_http.answer(200, {**TOKENS, "access_token": "eyJaccess2", "refresh_token": "eyJrefresh2"})
    assert composition.connection().call_zoom(USER, lambda token: token, Deadline(60)) == "eyJaccess2"


def test_rotated_tokens_are_stored_under_the_old_data_key_when_kms_fails(
    aws: dict[str, str], zoom_http: FakeZoomTransport
) -> None:
    from botocore.exceptions import ClientError

    from link_zoom.adapters.aws import client

    _connect(zoom_http)
    _expire_access_token(aws)

    def throttled(**_: object) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GenerateDataKey")

    client("kms").meta.events.register("before-call.kms.GenerateDataKey", throttled)
    zoom_http.answer(200, {**TOKENS, "access_token": "eyJaccess2", "refresh_token": "eyJrefresh2"})
    try:
        assert composition.connection().call_zoom(USER, lambda token: token) == "eyJaccess2"
    finally:
        client("kms").meta.events.unregister("before-call.kms.GenerateDataKey", throttled)
    assert composition.connection().call_zoom(USER, lambda token: token) == "eyJaccess2"  # read back from the table


def test_a_refresh_that_cannot_be_stored_is_retried_then_counted(
    aws: dict[str, str], zoom_http: FakeZoomTransport, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from botocore.exceptions import ClientError

    from link_zoom.adapters import connections_store

    _connect(zoom_http)
    _expire_access_token(aws)
    attempts: list[int] = []
    counted: list[str] = []
    real_write = connections_store.write_tokens

    def flaky_write(*args: object, **kwargs: object) -> bool:
        attempts.append(1)
        if len(attempts) < connection.STORE_ATTEMPTS:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "Update")
        return real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(connection, "STORE_BACKOFF_S", 0.001)
    monkeypatch.setattr(connections_store, "write_tokens", flaky_write)
    zoom_http.answer(200, {**TOKENS, "access_token": "eyJaccess2", "refresh_token": "eyJrefresh2"})
    assert composition.connection().call_zoom(USER, lambda token: token) == "eyJaccess2"
    assert len(attempts) == connection.STORE_ATTEMPTS

    def broken_write(*args: object, **kwargs: object) -> bool:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")

    monkeypatch.setattr(connections_store, "write_tokens", broken_write)
    monkeypatch.setattr(connection, "count", lambda name, value=1: counted.append(name))
    _expire_access_token(aws)
    zoom_http.answer(200, {**TOKENS, "access_token": "eyJaccess3", "refresh_token": "eyJrefresh3"})
    with pytest.raises(ClientError):
        composition.connection().call_zoom(USER, lambda token: token)
    assert "RefreshNotStored" in counted
    assert "eyJrefresh3" not in caplog.text and "eyJaccess3" not in caplog.text
