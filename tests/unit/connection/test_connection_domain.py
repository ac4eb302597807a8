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
