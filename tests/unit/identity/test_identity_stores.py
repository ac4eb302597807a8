"""The DynamoDB adapters (sessions, sign-in attempts, preferences) against moto, tables as template.yaml has them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from devstack.template import load_template
from link_zoom.adapters import preferences_store
from link_zoom.adapters.sessions_store import DynamoAttemptCounter, DynamoSessionStore, LoginAttempt, Session
from link_zoom.domain.identity import SessionRecord, hash_token

NOW = 1_750_000_000.0
TEMPLATE = load_template()


@pytest.mark.parametrize(
    ("model", "logical"),
    [
        (Session, "SessionsTable"),
        (LoginAttempt, "LoginAttemptsTable"),
        (preferences_store.Preference, "PreferencesTable"),
    ],
)
def test_each_model_has_its_tables_keys_and_ttl(model: type, logical: str) -> None:
    props = TEMPLATE["Resources"][logical]["Properties"]
    attributes = model.get_attributes()  # type: ignore[attr-defined]
    keys = {
        a.attr_name: ("HASH" if a.is_hash_key else "RANGE")
        for a in attributes.values()
        if a.is_hash_key or a.is_range_key
    }
    assert keys == {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        assert ttl["AttributeName"] in attributes


def _record(token: str, expires: datetime) -> SessionRecord:
    return SessionRecord(hash_token(token), "b6401320-29fc-4623-b990-0c01ae6bc694", "bob", "Bob User", False, expires)


def test_sessions_are_stored_under_the_token_hash_with_a_ttl(aws: dict[str, str]) -> None:
    store = DynamoSessionStore()
    expires = datetime(2030, 1, 1, 12, tzinfo=UTC)
    store.save(_record("t" * 43, expires))

    assert store.find(hash_token("t" * 43)) == _record("t" * 43, expires)
    raw = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=aws["SESSIONS_TABLE"])["Items"]
    assert raw[0]["expires_at_epoch"] == {"N": str(int(expires.timestamp()))}
    assert "t" * 43 not in repr(raw)

    store.delete(hash_token("t" * 43))
    assert store.find(hash_token("t" * 43)) is None
    store.delete(hash_token("t" * 43))  # revoking twice is fine


def test_the_attempt_counter_holds_five_per_window(aws: dict[str, str]) -> None:
    counter = DynamoAttemptCounter(limit=5, window_seconds=900)
    assert [counter.reserve("k", NOW + i) for i in range(5)] == [0] * 5
    assert counter.reserve("k", NOW + 100) == 800
    assert counter.reserve("other", NOW + 100) == 0  # per username
    assert counter.reserve("k", NOW + 900) == 0  # a new window


def test_released_and_cleared_attempts_are_given_back(aws: dict[str, str]) -> None:
    counter = DynamoAttemptCounter(limit=5, window_seconds=900)
    for i in range(5):
        counter.reserve("k", NOW + i)
    counter.release("k")
    assert counter.reserve("k", NOW + 10) == 0
    assert counter.reserve("k", NOW + 11) > 0
    counter.clear("k")
    assert counter.reserve("k", NOW + 12) == 0
    counter.release("never-seen")  # nothing to give back: no error, no item


def test_concurrent_attempts_never_get_more_than_five_through(aws: dict[str, str]) -> None:
    counter = DynamoAttemptCounter(limit=5, window_seconds=900)
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda i: counter.reserve("k", NOW + i / 100), range(20)))
    assert verdicts.count(0) == 5


def test_attempt_items_expire_with_their_window(aws: dict[str, str]) -> None:
    DynamoAttemptCounter(limit=5, window_seconds=900).reserve("k", NOW)
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=aws["LOGIN_ATTEMPTS_TABLE"], Key={"username_key": {"S": "k"}}
    )["Item"]
    assert item["expires_at_epoch"] == {"N": str(int(NOW) + 900)}


def test_preferences_are_upserted_listed_per_user_and_deleted(aws: dict[str, str]) -> None:
    first = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    preferences_store.upsert_preference("u1", "Zoom", "oauth", now=first)
    row = preferences_store.upsert_preference("u1", "Zoom", "oauth", now=first + timedelta(days=1))
    preferences_store.upsert_preference("u2", "Zoom", "oauth", now=first)

    assert (row.created_at, row.updated_at) == (first, first + timedelta(days=1))
    assert preferences_store.list_preferences("u1") == [row]
    assert preferences_store.delete_preference("u1", "Zoom", "oauth") is True
    assert preferences_store.delete_preference("u1", "Zoom", "oauth") is False
    assert preferences_store.list_preferences("u1") == []
    assert len(preferences_store.list_preferences("u2")) == 1
