"""The four identity functions end to end in process: API Gateway events in, the contract's answers out.

AWS is moto (mock_aws); the directory is the in-memory fake; the Zoom connection code is faked where used.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.events import api_event, token_authorizer_event
from link_zoom import composition
from link_zoom.adapters import preferences_store
from link_zoom.domain import identity
from tests.support.functions import load_function
from tests.support.lambda_context import FakeLambdaContext
from tests.unit.identity.fakes import FakeConnection, FakeDirectory

# A request refused before any metric is counted (a 400) makes powertools warn that it has nothing to publish.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def functions(aws: dict[str, str], directory: FakeDirectory) -> Iterator[dict[str, Any]]:
    # The real session and attempt stores (moto), the fake directory.
    with composition.override(identity=dataclasses.replace(composition.identity(), directory=directory)):
        yield {name: load_function(name) for name in ("authorizer", "session", "features", "account")}


def call(functions: dict[str, Any], name: str, event: dict[str, Any]) -> dict[str, Any]:
    return functions[name].handler(event, FakeLambdaContext())


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response["body"] else None


def sign_in(functions: dict[str, Any], username: str = "bob", password: str = "bob-password") -> dict[str, Any]:
    payload = json.dumps({"username": username, "password": password})
    return call(functions, "session", api_event("POST", "/v1/session", body=payload))


def authorized(functions: dict[str, Any], token: str, method: str, path: str) -> dict[str, Any]:
    """What API Gateway hands the integration after our authorizer allowed the request."""
    answer = call(functions, "authorizer", token_authorizer_event(f"Bearer {token}", method, path))
    return {**answer["context"], "principalId": answer["principalId"]}


def request(functions: dict[str, Any], name: str, token: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    context = authorized(functions, token, method, path)
    return call(functions, name, api_event(method, path, authorizer=context, **kwargs))


def test_sign_in_answers_201_with_a_token_and_the_user(functions: dict[str, Any]) -> None:
    response = sign_in(functions, "CORP\\ada", "ada-password")
    answer = body(response)
    assert response["statusCode"] == 201
    assert set(answer) == {"token", "expires_at", "user"}
    assert answer["expires_at"].endswith("Z")
    assert answer["user"] == {
        "id": "6cf7068e-7348-4e94-ad7b-9cf9002b11f5",
        "username": "ada",
        "display_name": "Ada Admin",
        "is_admin": True,
    }
    assert response["multiValueHeaders"]["Cache-Control"] == ["no-store"]


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "nope",
        "[]",
        '{"username": "bob"}',
        '{"username": "bob", "password": 1}',
        '{"username": null, "password": "x"}',
        '{"username": "bob", "password": "x", "remember": true}',
    ],
)
def test_a_malformed_sign_in_body_is_a_bad_request(functions: dict[str, Any], payload: str) -> None:
    response = call(functions, "session", api_event("POST", "/v1/session", body=payload))
    assert response["statusCode"] == 400
    assert body(response)["error"]["code"] == "bad_request"


def test_credential_failures_are_one_401_and_then_a_429_with_retry_after(functions: dict[str, Any]) -> None:
    answers = [sign_in(functions, name, "wrong") for name in ["bob", "bob", "nobody", "bob", "bob", "bob", "bob"]]
    assert [a["statusCode"] for a in answers[:6]] == [401] * 6
    assert len({a["body"] for a in answers[:6]}) == 1
    assert body(answers[0])["error"]["code"] == "invalid_credentials"
    assert answers[6]["statusCode"] == 429
    assert body(answers[6])["error"]["code"] == "too_many_attempts"
    assert 0 < int(answers[6]["multiValueHeaders"]["Retry-After"][0]) <= 900


def test_password_spraying_from_one_address_is_stopped_after_50_failures(functions: dict[str, Any]) -> None:
    def attempt(username: str, password: str, source_ip: str) -> dict[str, Any]:
        payload = json.dumps({"username": username, "password": password})
        return call(functions, "session", api_event("POST", "/v1/session", body=payload, source_ip=source_ip))

    # One password tried against 50 names (each name stays far below its own limit of 5), with real
    # sign-ins from the same address in between: successes are not failures.
    sprayed = [attempt(f"user{i}", "Winter2026!", "203.0.113.7") for i in range(50)]
    assert {a["statusCode"] for a in sprayed} == {401}
    assert attempt("bob", "bob-password", "203.0.113.7")["statusCode"] == 429

    # Then every name is refused from that address, even with the right password; other addresses are not
    refused = attempt("ada", "ada-password", "203.0.113.7")
    assert (refused["statusCode"], body(refused)["error"]["code"]) == (429, "too_many_attempts")
    assert 0 < int(refused["multiValueHeaders"]["Retry-After"][0]) <= 900
    assert attempt("ada", "ada-password", "198.51.100.2")["statusCode"] == 201


def test_sign_ins_that_succeed_do_not_count_against_the_address(functions: dict[str, Any]) -> None:
    payload = json.dumps({"username": "bob", "password": "bob-password"})
    answers = [call(functions, "session", api_event("POST", "/v1/session", body=payload)) for _ in range(55)]
    assert {a["statusCode"] for a in answers} == {201}


def test_directory_down_is_a_503(functions: dict[str, Any], directory: FakeDirectory) -> None:
    directory.down = True
    response = sign_in(functions)
    assert response["statusCode"] == 503
    assert body(response)["error"]["code"] == "directory_unavailable"


def test_the_authorizer_allows_the_whole_api_and_names_the_caller(functions: dict[str, Any]) -> None:
    token = body(sign_in(functions))["token"]
    answer = call(functions, "authorizer", token_authorizer_event(f"Bearer {token}", "GET", "/v1/features"))

    assert answer["principalId"] == "b6401320-29fc-4623-b990-0c01ae6bc694"
    assert answer["policyDocument"]["Statement"] == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:local/api/*/*",
        }
    ]
    context = answer["context"]
    assert context["user_id"] == answer["principalId"]
    assert (context["username"], context["is_admin"]) == ("bob", "false")
    assert token not in json.dumps(answer)
    assert all(isinstance(v, str) for v in context.values())


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic abc", "bearer " + "a" * 43, "Bearer " + "a" * 43, "Bearer a b c"]
)
def test_the_authorizer_refuses_anything_but_a_live_session(functions: dict[str, Any], header: str) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        call(functions, "authorizer", token_authorizer_event(header, "GET", "/v1/features"))


def test_sign_out_revokes_this_token_and_not_the_others(functions: dict[str, Any]) -> None:
    phone, laptop = body(sign_in(functions))["token"], body(sign_in(functions))["token"]

    assert request(functions, "session", phone, "DELETE", "/v1/session")["statusCode"] == 204

    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorized(functions, phone, "GET", "/v1/features")
    assert authorized(functions, laptop, "GET", "/v1/features")["username"] == "bob"


def test_sign_out_without_a_session_from_the_authorizer_is_refused(functions: dict[str, Any]) -> None:
    response = call(functions, "session", api_event("DELETE", "/v1/session", authorizer={"principalId": "x"}))
    assert response["statusCode"] == 401


def test_features_combine_the_switch_and_the_callers_connection(
    functions: dict[str, Any], fake_connection: FakeConnection
) -> None:
    token = body(sign_in(functions))["token"]
    assert body(request(functions, "features", token, "GET", "/v1/features")) == {
        "zoom": {"enabled": False, "connected": False, "reauthorize_after": None}
    }
    fake_connection.connected["b6401320-29fc-4623-b990-0c01ae6bc694"] = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    assert body(request(functions, "features", token, "GET", "/v1/features"))["zoom"] == {
        "enabled": False,
        "connected": True,
        "reauthorize_after": "2026-05-01T09:30:00Z",
    }


def test_only_admins_read_and_flip_the_switch(functions: dict[str, Any], fake_connection: FakeConnection) -> None:
    admin, user = body(sign_in(functions, "ada", "ada-password"))["token"], body(sign_in(functions))["token"]
    path = "/v1/admin/features/zoom"

    for method, payload in [("GET", None), ("PUT", '{"enabled": true}'), ("PUT", "garbage")]:
        refused = request(functions, "features", user, method, path, body=payload)
        assert (refused["statusCode"], body(refused)["error"]["code"]) == (403, "forbidden")

    switched = request(functions, "features", admin, "PUT", path, body='{"enabled": true}')
    assert (switched["statusCode"], body(switched)) == (200, {"enabled": True})
    assert body(request(functions, "features", admin, "GET", path)) == {"enabled": True}
    assert body(request(functions, "features", user, "GET", "/v1/features"))["zoom"]["enabled"] is True


@pytest.mark.parametrize(
    "payload",
    [
        '{"enabled": "true"}',
        '{"enabled": 1}',
        '{"enabled": null}',
        "{}",
        '{"enabled": true, "x": 1}',
        "true",
        "[true]",
        "",
    ],
)
def test_the_switch_takes_exactly_a_boolean(functions: dict[str, Any], payload: str) -> None:
    admin = body(sign_in(functions, "ada", "ada-password"))["token"]
    response = request(functions, "features", admin, "PUT", "/v1/admin/features/zoom", body=payload)
    assert (response["statusCode"], body(response)["error"]["code"]) == (400, "bad_request")


def test_preferences_are_the_callers_own_with_utc_times(functions: dict[str, Any]) -> None:
    token = body(sign_in(functions))["token"]
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    preferences_store.upsert_preference("b6401320-29fc-4623-b990-0c01ae6bc694", "Zoom", "oauth", now=when)
    preferences_store.upsert_preference("6cf7068e-7348-4e94-ad7b-9cf9002b11f5", "Other", "x", now=when)

    response = request(functions, "account", token, "GET", "/v1/account/preferences")
    assert body(response) == {
        "preferences": [
            {
                "resource": "Zoom",
                "tag": "oauth",
                "created_at": "2025-03-04T05:06:07Z",
                "updated_at": "2025-03-04T05:06:07Z",
            }
        ]
    }


def _delete(functions: dict[str, Any], token: str, resource: str, tag: str) -> dict[str, Any]:
    path = f"/v1/account/preferences/{resource}/{tag}"
    return request(
        functions,
        "account",
        token,
        "DELETE",
        path,
        resource="/v1/account/preferences/{resource}/{tag}",
        path_parameters={"resource": resource, "tag": tag},
    )


def test_deleting_a_row_is_204_then_404(functions: dict[str, Any]) -> None:
    token = body(sign_in(functions))["token"]
    preferences_store.upsert_preference("b6401320-29fc-4623-b990-0c01ae6bc694", "Calendar", "colour")

    assert _delete(functions, token, "Calendar", "colour")["statusCode"] == 204
    gone = _delete(functions, token, "Calendar", "colour")
    assert (gone["statusCode"], body(gone)["error"]["code"]) == (404, "not_found")
    assert _delete(functions, token, "..%2F", "x")["statusCode"] == 404


def test_deleting_zoom_oauth_disconnects_zoom(functions: dict[str, Any], fake_connection: FakeConnection) -> None:
    token = body(sign_in(functions))["token"]
    bob = "b6401320-29fc-4623-b990-0c01ae6bc694"
    fake_connection.connected[bob] = datetime(2026, 1, 1, tzinfo=UTC)
    preferences_store.upsert_preference(bob, "Zoom", "oauth")

    assert _delete(functions, token, "Zoom", "oauth")["statusCode"] == 204
    assert fake_connection.disconnects == [bob]
    assert preferences_store.list_preferences(bob) == []
    assert _delete(functions, token, "Zoom", "oauth")["statusCode"] == 404


def test_no_password_or_token_reaches_the_logs(functions: dict[str, Any], captured_logs: io.StringIO) -> None:
    token = body(sign_in(functions, "bob", "bob-password"))["token"]
    sign_in(functions, "bob", "Sup3r-Secret-Typo")
    request(functions, "session", token, "DELETE", "/v1/session")

    logs = captured_logs.getvalue()
    assert '"message":"signed in"' in logs
    assert '"correlation_id"' in logs
    for secret in ["bob-password", "Sup3r-Secret-Typo", token, identity.hash_token(token)]:
        assert secret not in logs
