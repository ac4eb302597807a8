"""Every route behind the authorizer refuses a missing, malformed, unknown, expired or revoked token."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from fnmatch import fnmatchcase

import pytest

from devstack.directory import DirectoryInfo
from devstack.events import method_arn
from devstack.template import load_template, resources_of_type
from link_zoom.adapters.sessions_store import DynamoSessionStore
from link_zoom.domain.identity import SessionRecord, hash_token
from tests.integration.identity.conftest import Api, body

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")]

TEMPLATE = load_template()
IDENTITY = TEMPLATE["Resources"]["LinkApi"]["Properties"]["Auth"]["Authorizers"]["SessionAuthorizer"]["Identity"]


def protected_routes() -> list[tuple[str, str]]:
    routes = []
    for spec in resources_of_type(TEMPLATE, "AWS::Serverless::Function").values():
        for event in (spec["Properties"].get("Events") or {}).values():
            props = event["Properties"]
            if event["Type"] == "Api" and (props.get("Auth") or {}).get("Authorizer") != "NONE":
                routes.append((props["Method"].upper(), props["Path"]))
    return sorted(routes)


ROUTES = protected_routes()


def test_the_template_protects_what_the_contract_protects() -> None:
    assert ("POST", "/v1/session") not in ROUTES
    assert ("GET", "/account") not in ROUTES
    assert {
        ("DELETE", "/v1/session"),
        ("GET", "/v1/features"),
        ("GET", "/v1/account/preferences"),
        ("PUT", "/v1/admin/features/zoom"),
        ("POST", "/v1/compose-link"),
    } <= set(ROUTES)


@pytest.fixture
def tokens(api: Api, identity_env: DirectoryInfo) -> dict[str, str]:
    bob = identity_env.user("user")
    live = body(api.sign_in(bob.upn, bob.password))["token"]
    revoked = body(api.sign_in(bob.upn, bob.password))["token"]
    assert api.request("session", revoked, "DELETE", "/v1/session")["statusCode"] == 204
    expired = secrets.token_urlsafe(32)
    DynamoSessionStore().save(
        SessionRecord(hash_token(expired), "u", "bob", "Bob", False, datetime.fromtimestamp(time.time() - 1, UTC))
    )
    return {"live": live, "revoked": revoked, "expired": expired, "unknown": secrets.token_urlsafe(32)}


def test_a_live_token_matches_the_gateways_validation_and_opens_every_route(api: Api, tokens: dict[str, str]) -> None:
    header = f"Bearer {tokens['live']}"
    assert re.fullmatch(IDENTITY["ValidationExpression"], header)
    for method, path in ROUTES:
        answer = api.call(
            "authorizer", {"type": "TOKEN", "authorizationToken": header, "methodArn": method_arn(method, path)}
        )
        resource = answer["policyDocument"]["Statement"][0]["Resource"]
        assert fnmatchcase(method_arn(method, path), resource), (method, path)


@pytest.mark.parametrize("kind", ["missing", "empty", "malformed", "not bearer", "unknown", "expired", "revoked"])
def test_every_protected_route_refuses_a_bad_token(api: Api, tokens: dict[str, str], kind: str) -> None:
    header = {
        "missing": "",
        "empty": "Bearer ",
        "malformed": "Bearer not a token!",
        "not bearer": f"Basic {tokens['live']}",
        "unknown": f"Bearer {tokens['unknown']}",
        "expired": f"Bearer {tokens['expired']}",
        "revoked": f"Bearer {tokens['revoked']}",
    }[kind]
    for method, path in ROUTES:
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            api.authorize(header, method, path)
