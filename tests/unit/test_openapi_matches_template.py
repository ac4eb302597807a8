"""docs/openapi.yaml and template.yaml describe the same routes, with the same authentication."""

from __future__ import annotations

from pathlib import Path

import yaml

from devstack.template import ROOT, load_template, resources_of_type

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def template_routes() -> dict[tuple[str, str], bool]:
    """(method, path) -> whether the route needs the session authorizer."""
    routes = {}
    for spec in resources_of_type(load_template(), "AWS::Serverless::Function").values():
        for event in (spec["Properties"].get("Events") or {}).values():
            if event["Type"] != "Api":
                continue
            props = event["Properties"]
            open_route = (props.get("Auth") or {}).get("Authorizer") == "NONE"
            routes[(props["Method"].lower(), props["Path"])] = not open_route
    return routes


def openapi_routes() -> dict[tuple[str, str], bool]:
    document = yaml.safe_load(Path(ROOT / "docs" / "openapi.yaml").read_text())
    default_secured = bool(document.get("security"))
    routes = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                secured = bool(operation["security"]) if "security" in operation else default_secured
                routes[(method, path)] = secured
    return routes


def test_every_template_route_is_documented_and_nothing_else() -> None:
    assert openapi_routes().keys() == template_routes().keys()


def test_authentication_agrees() -> None:
    documented = openapi_routes()
    for route, secured in template_routes().items():
        assert documented[route] == secured, route


def test_the_contracts_open_routes_are_the_only_open_ones() -> None:
    open_routes = {route for route, secured in template_routes().items() if not secured}
    assert open_routes == {
        ("post", "/v1/session"),
        ("get", "/v1/zoom/callback"),
        ("post", "/v1/zoom/webhook"),
        ("get", "/account"),
        ("get", "/v1/health"),
    }
