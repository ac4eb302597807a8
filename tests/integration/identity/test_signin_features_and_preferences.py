"""Features, the admin switch and preferences through the real stores, as the directory's users."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime

import pytest

from devstack.directory import DirectoryInfo
from link_zoom.adapters import preferences_store
from tests.integration.identity.conftest import Api, body

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")]

# The Zoom connection issue's code; these tests exercise it as soon as it exists.
needs_connection = pytest.mark.skipif(
    importlib.util.find_spec("link_zoom.domain.connection") is None,
    reason="link_zoom.domain.connection (Zoom connection issue) is not there yet",
)


def _token(api: Api, info: DirectoryInfo, role: str) -> str:
    user = info.user(role)  # type: ignore[arg-type]
    return str(body(api.sign_in(user.username, user.password))["token"])


def test_an_admin_switches_zoom_for_everyone_and_a_user_cannot(api: Api, identity_env: DirectoryInfo) -> None:
    admin, user = _token(api, identity_env, "admin"), _token(api, identity_env, "user")
    path = "/v1/admin/features/zoom"

    assert api.request("features", user, "PUT", path, body='{"enabled": true}')["statusCode"] == 403
    assert api.request("features", user, "GET", path)["statusCode"] == 403
    for wanted in (True, False):
        switched = api.request("features", admin, "PUT", path, body=f'{{"enabled": {str(wanted).lower()}}}')
        assert body(switched) == {"enabled": wanted}
        assert body(api.request("features", admin, "GET", path)) == {"enabled": wanted}
    assert api.request("features", admin, "PUT", path, body='{"enabled": "yes"}')["statusCode"] == 400


@needs_connection
def test_features_for_a_user_without_zoom(api: Api, identity_env: DirectoryInfo) -> None:
    user = _token(api, identity_env, "user")
    zoom = body(api.request("features", user, "GET", "/v1/features"))["zoom"]
    assert zoom["connected"] is False
    assert zoom["reauthorize_after"] is None
    assert isinstance(zoom["enabled"], bool)


def test_a_user_lists_and_deletes_only_their_own_rows(api: Api, identity_env: DirectoryInfo) -> None:
    user, admin = _token(api, identity_env, "user"), _token(api, identity_env, "admin")
    user_id = api.authorize(f"Bearer {user}", "GET", "/v1/account/preferences")["user_id"]
    admin_id = api.authorize(f"Bearer {admin}", "GET", "/v1/account/preferences")["user_id"]
    when = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    preferences_store.upsert_preference(user_id, "Calendar", "reminders", now=when)
    preferences_store.upsert_preference(admin_id, "Calendar", "reminders", now=when)

    listed = body(api.request("account", user, "GET", "/v1/account/preferences"))["preferences"]
    assert {
        "resource": "Calendar",
        "tag": "reminders",
        "created_at": "2025-06-01T08:00:00Z",
        "updated_at": "2025-06-01T08:00:00Z",
    } in listed

    path = "/v1/account/preferences/Calendar/reminders"
    kwargs = {"path_parameters": {"resource": "Calendar", "tag": "reminders"}}
    assert api.request("account", user, "DELETE", path, **kwargs)["statusCode"] == 204
    assert api.request("account", user, "DELETE", path, **kwargs)["statusCode"] == 404
    assert any(r.resource == "Calendar" for r in preferences_store.list_preferences(admin_id))


@needs_connection
def test_deleting_zoom_oauth_without_a_connection(api: Api, identity_env: DirectoryInfo) -> None:
    user = _token(api, identity_env, "user")
    user_id = api.authorize(f"Bearer {user}", "GET", "/v1/features")["user_id"]
    path = "/v1/account/preferences/Zoom/oauth"
    kwargs = {"path_parameters": {"resource": "Zoom", "tag": "oauth"}}

    missing = api.request("account", user, "DELETE", path, **kwargs)
    assert (missing["statusCode"], body(missing)["error"]["code"]) == (404, "not_found")

    preferences_store.upsert_preference(user_id, "Zoom", "oauth")  # a row left without its connection
    assert api.request("account", user, "DELETE", path, **kwargs)["statusCode"] == 204
    assert body(api.request("features", user, "GET", "/v1/features"))["zoom"]["connected"] is False
