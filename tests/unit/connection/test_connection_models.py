"""The connection's PynamoDB models match template.yaml's tables (keys, index, TTL attribute)."""

from __future__ import annotations

from typing import Any

from devstack.template import load_template
from link_zoom.adapters.connections_store import ZoomConnection
from link_zoom.adapters.oauth_states_store import OAuthState

TEMPLATE = load_template()


def _table(logical: str) -> dict[str, Any]:
    props: dict[str, Any] = TEMPLATE["Resources"][logical]["Properties"]
    return props


def test_connections_model_matches_the_table() -> None:
    table = _table("ZoomConnectionsTable")
    assert table["KeySchema"] == [{"AttributeName": ZoomConnection._hash_keyname, "KeyType": "HASH"}]
    index = table["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == ZoomConnection.by_zoom_user.Meta.index_name
    assert index["KeySchema"] == [{"AttributeName": "zoom_user_id", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert table["TimeToLiveSpecification"]["AttributeName"] == ZoomConnection.expires_at_epoch.attr_name


def test_states_model_matches_the_table() -> None:
    table = _table("OAuthStatesTable")
    assert table["KeySchema"] == [{"AttributeName": OAuthState._hash_keyname, "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"]["AttributeName"] == OAuthState.expires_at_epoch.attr_name
