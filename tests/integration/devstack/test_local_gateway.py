"""The local API gateway, driven by the fixture template: routes, the authorizer, gateway responses, proxy results."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from devstack.functions import FunctionRegistry, discover_functions
from devstack.gateway import Gateway, api_configs, routes_from_template, serve_api
from devstack.template import ROOT, Resolver, load_template
from tests.integration.devstack.support import FixtureStack, build_registry, http_call

pytestmark = pytest.mark.integration

ALLOW = {"Authorization": "Bearer allow-token-1"}


def echoed(stack: FixtureStack, method: str, path: str, **kwargs: object) -> dict:
    answer = stack.call(method, path, **kwargs)  # type: ignore[arg-type]
    assert answer.status == 200, answer.body
    return answer.json()["event"]


# ---------------------------------------------------------------- routes


def test_a_path_template_gives_path_parameters_and_the_resource(fixture_stack: FixtureStack) -> None:
    event = echoed(fixture_stack, "GET", "/items/a%20b?x=1&x=2&y=3", headers=ALLOW)

    assert event["resource"] == "/items/{item_id}"
    assert event["path"] == "/items/a b"
    assert event["pathParameters"] == {"item_id": "a b"}
    assert event["httpMethod"] == "GET"
    assert event["queryStringParameters"] == {"x": "2", "y": "3"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["3"]}
    assert event["requestContext"]["resourcePath"] == "/items/{item_id}"
    assert event["requestContext"]["stage"] == "test"
    assert event["body"] is None


def test_a_literal_segment_wins_over_a_parameter(fixture_stack: FixtureStack) -> None:
    event = echoed(fixture_stack, "GET", "/items/special", headers=ALLOW)

    assert event["resource"] == "/items/special"
    assert event["pathParameters"] is None


def test_a_greedy_parameter_takes_the_rest_of_the_path(fixture_stack: FixtureStack) -> None:
    event = echoed(fixture_stack, "GET", "/files/a/b/c.txt")

    assert event["pathParameters"] == {"path": "a/b/c.txt"}


def test_any_method_and_repeated_headers(fixture_stack: FixtureStack) -> None:
    answer = fixture_stack.call("PATCH", "/open", headers={"X-One": "1"}, body=b'{"a": 1}')
    event = answer.json()["event"]

    assert event["httpMethod"] == "PATCH"
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False
    assert event["headers"]["X-One"] == "1"
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["multiValueHeaders"]["X-One"] == ["1"]
    # The proxy result's headers and multiValueHeaders both reach the client, and the layer was importable.
    assert answer.headers["X-Layer"] == "from-the-fixture-layer"
    assert answer.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert answer.json()["remaining_ms"] > 0


def test_a_binary_body_arrives_base64_encoded_and_a_base64_result_is_decoded(fixture_stack: FixtureStack) -> None:
    payload = bytes(range(256))  # not UTF-8
    answer = fixture_stack.call("POST", "/binary", body=payload)

    assert answer.status == 200
    assert answer.body == payload[::-1]
    assert answer.headers["Content-Type"] == "application/octet-stream"


def test_an_unknown_route_or_method_is_the_templates_missing_authentication_token(fixture_stack: FixtureStack) -> None:
    for method, path in (("GET", "/nowhere"), ("DELETE", "/items/1"), ("GET", "/items")):
        answer = fixture_stack.call(method, path, headers=ALLOW)
        assert (answer.status, answer.json()) == (404, {"fixture": "no such route"}), (method, path)


def test_a_route_added_to_the_template_is_served_with_no_other_edit(
    fixture_stack: FixtureStack, tmp_path: Path
) -> None:
    template = copy.deepcopy(fixture_stack.resources.resolver.template)
    template["Resources"]["EchoFunction"]["Properties"]["Events"]["Added"] = {
        "Type": "Api",
        "Properties": {"RestApiId": {"Ref": "FixtureApi"}, "Path": "/added/{thing}", "Method": "put"},
    }
    resolver = Resolver(template, parameters=dict(fixture_stack.resources.resolver.parameters))
    resources = copy.copy(fixture_stack.resources)
    resources.resolver = resolver
    registry = build_registry(resources, tmp_path)
    server = serve_api(Gateway(registry, resolver), port=0)
    try:
        answer = http_call(server.url, "PUT", "/added/42", headers=ALLOW)
    finally:
        server.stop()

    assert answer.status == 200
    assert answer.json()["event"]["pathParameters"] == {"thing": "42"}
    assert answer.json()["event"]["requestContext"]["authorizer"]["principalId"] == "user-1"


def test_every_api_event_of_template_yaml_is_a_route() -> None:
    template = load_template()
    resolver = Resolver(template)
    registry = FunctionRegistry(discover_functions(template, ROOT, resolver))
    routes = {(r.method, r.resource): r for r in routes_from_template(registry, api_configs(template, resolver))}
    events = [
        (name, props)
        for spec in template["Resources"].values()
        if spec["Type"] == "AWS::Serverless::Function"
        for name, props in (spec["Properties"].get("Events") or {}).items()
        if props["Type"] == "Api"
    ]
    assert len(routes) == len(events)
    assert routes[("GET", "/v1/health")].authorizer is None
    assert routes[("PUT", "/v1/events/{event_id}/zoom")].authorizer == "SessionAuthorizer"
    open_routes = {key for key, route in routes.items() if route.authorizer is None}
    assert open_routes == {
        ("POST", "/v1/session"),
        ("GET", "/v1/zoom/callback"),
        ("POST", "/v1/zoom/webhook"),
        ("GET", "/account"),
        ("GET", "/v1/health"),
    }


# ---------------------------------------------------------------- the authorizer


def test_a_missing_or_malformed_authorization_header_is_refused_without_the_authorizer(
    fixture_stack: FixtureStack,
) -> None:
    before = fixture_stack.registry.invocations["AuthorizerFunction"]
    for headers in ({}, {"Authorization": "allow-token-1"}, {"Authorization": "Bearer UPPER-case-token"}):
        answer = fixture_stack.call("GET", "/items/1", headers=headers)
        assert answer.status == 401
        assert answer.json()["fixture"] == "unauthorized"
        assert answer.json()["request"] == answer.headers["x-amzn-RequestId"]
    assert fixture_stack.registry.invocations["AuthorizerFunction"] == before


def test_an_unauthorized_exception_is_a_401(fixture_stack: FixtureStack) -> None:
    answer = fixture_stack.call("GET", "/items/1", headers={"Authorization": "Bearer unauthorized-now"})

    assert answer.status == 401
    assert answer.json()["fixture"] == "unauthorized"


def test_a_deny_policy_is_access_denied(fixture_stack: FixtureStack) -> None:
    answer = fixture_stack.call("GET", "/items/1", headers={"Authorization": "Bearer deny-this-one"})

    assert answer.status == 403
    assert answer.json() == {
        "fixture": "denied",
        "why": "User is not authorized to access this resource with an explicit deny",
    }


def test_a_policy_that_does_not_allow_the_method_arn_is_access_denied(fixture_stack: FixtureStack) -> None:
    narrow = {"Authorization": "Bearer narrow-get-items-only"}

    assert fixture_stack.call("GET", "/items/7", headers=narrow).status == 200
    answer = fixture_stack.call("POST", "/items", headers=narrow, body=b"{}")
    assert answer.status == 403
    assert answer.json()["why"] == "User is not authorized to access this resource"


def test_policy_wildcards_cross_a_newline_in_the_decoded_path(fixture_stack: FixtureStack) -> None:
    # Given an id that decodes to "±\n]" and policies with `*` (whole API, and GET /items/* only)
    odd = "/items/%C2%B1%0A%5D"

    # When it is called with each, Then the route answers, as API Gateway's wildcard matching would have it
    for token in ("allow-token-1", "narrow-get-items-only"):
        event = echoed(fixture_stack, "GET", odd, headers={"Authorization": f"Bearer {token}"})
        assert event["pathParameters"] == {"item_id": "\u00b1\n]"}, token
    # And an explicit Deny still reaches across it
    assert fixture_stack.call("GET", odd, headers={"Authorization": "Bearer deny-this-one"}).status == 403


def test_other_authorizer_failures_are_500s(fixture_stack: FixtureStack) -> None:
    for token in ("broken-store", "garbage-answer"):
        answer = fixture_stack.call("GET", "/items/1", headers={"Authorization": f"Bearer {token}"})
        assert answer.status == 500, token
        assert answer.json()["fixture"] == "5xx"


def test_an_allowed_request_carries_the_context_as_strings(fixture_stack: FixtureStack) -> None:
    event = echoed(fixture_stack, "GET", "/items/1", headers=ALLOW)

    authorizer = event["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "user-1"
    assert authorizer["user_id"] == "user-1"
    assert authorizer["is_admin"] == "true"
    assert authorizer["level"] == "3"
    assert isinstance(authorizer["integrationLatency"], int)
    token_event = fixture_stack.module_state("AuthorizerFunction", "CALLS")[-1]
    assert token_event["type"] == "TOKEN"
    assert token_event["authorizationToken"] == "Bearer allow-token-1"
    assert token_event["methodArn"].endswith("/GET/items/1")


def test_reauthorize_every_zero_asks_every_time_and_a_ttl_caches_by_token(fixture_stack: FixtureStack) -> None:
    calls = fixture_stack.registry.invocations
    before = calls["AuthorizerFunction"]
    for _ in range(2):
        assert fixture_stack.call("GET", "/items/1", headers=ALLOW).status == 200
    assert calls["AuthorizerFunction"] == before + 2

    before = calls["AuthorizerFunction"]
    for _ in range(3):
        assert fixture_stack.call("GET", "/cached", headers={"X-Token": "allow-cached"}).status == 200
    assert calls["AuthorizerFunction"] == before + 1
    assert fixture_stack.call("GET", "/cached", headers={"X-Token": "allow-other"}).status == 200
    assert calls["AuthorizerFunction"] == before + 2


# ---------------------------------------------------------------- integration failures


def test_a_handler_crash_is_a_502_from_the_templates_default_5xx(fixture_stack: FixtureStack) -> None:
    answer = fixture_stack.call("GET", "/crash")

    assert answer.status == 502
    assert answer.json() == {"fixture": "5xx", "type": "DEFAULT_5XX"}
    assert answer.headers["X-Fixture"] == "five-hundred"
    log = (fixture_stack.logs_dir / "EchoFunction.log").read_text()
    assert "[ERROR] RuntimeError: the fixture crashed on purpose" in log


def test_a_malformed_proxy_result_is_a_502(fixture_stack: FixtureStack) -> None:
    assert fixture_stack.call("GET", "/malformed").status == 502


def test_a_handler_past_the_integration_timeout_is_a_504(fixture_stack: FixtureStack) -> None:
    answer = fixture_stack.call("GET", "/slow?s=1.5")

    assert answer.status == 504
    assert answer.json() == {"fixture": "5xx", "type": "INTEGRATION_TIMEOUT"}


def test_one_access_line_per_request_without_headers_or_query(fixture_stack: FixtureStack) -> None:
    fixture_stack.call("GET", "/items/42?secret=s3cr3t", headers={"Authorization": "Bearer allow-with-secret"})

    last = (fixture_stack.logs_dir / "access.log").read_text().splitlines()[-1]
    line = json.loads(last)
    assert {"requestId", "method", "path", "status", "latencyMs"} <= set(line)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/items/42", 200)
    assert "s3cr3t" not in last and "allow-with-secret" not in last
