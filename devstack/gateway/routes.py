"""What the template says about its APIs: stages, TOKEN authorizers, gateway responses, throttles and routes.

Routes come from every function's `Type: Api` events; the authorizer, its result cache, the gateway responses and
the stage throttle from the `AWS::Serverless::Api` they name. Nothing here lists routes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from devstack.functions import FunctionRegistry
from devstack.template import Resolver, resources_of_type

IMPLICIT_API = "ServerlessRestApi"  # SAM's name for the API of events without a RestApiId
SAM_DEFAULT_REAUTHORIZE_S = 300


@dataclass(frozen=True)
class TokenAuthorizer:
    name: str
    function: str  # logical id of the authorizer function
    header: str
    validation: re.Pattern[str] | None
    ttl_s: int


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    templates: dict[str, str]
    headers: dict[str, str]


@dataclass
class ApiConfig:
    logical_id: str
    stage: str = "api"
    authorizers: dict[str, TokenAuthorizer] = field(default_factory=dict)
    default_authorizer: str | None = None
    responses: dict[str, GatewayResponse] = field(default_factory=dict)
    rate_limit: float | None = None
    burst_limit: int | None = None


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    resource: str  # the path template, e.g. /v1/events/{event_id}/zoom
    function: str
    api: str
    authorizer: str | None
    pattern: re.Pattern[str]
    specificity: tuple[int, ...]  # literal segments before parameters, as API Gateway prefers them


def api_configs(template: dict[str, Any], resolver: Resolver) -> dict[str, ApiConfig]:
    configs = {IMPLICIT_API: ApiConfig(IMPLICIT_API, stage="Prod")}
    for logical, spec in resources_of_type(template, "AWS::Serverless::Api").items():
        configs[logical] = _api_config(logical, spec.get("Properties") or {}, resolver)
    return configs


def _api_config(logical: str, props: dict[str, Any], resolver: Resolver) -> ApiConfig:
    auth = props.get("Auth") or {}
    config = ApiConfig(logical, stage=str(resolver.resolve(props.get("StageName", "Prod"))))
    for name, authorizer in (auth.get("Authorizers") or {}).items():
        config.authorizers[name] = _token_authorizer(name, authorizer, resolver)
    default = auth.get("DefaultAuthorizer")
    config.default_authorizer = None if default in (None, "NONE") else str(default)
    for kind, response in (props.get("GatewayResponses") or {}).items():
        config.responses[kind] = _gateway_response(response)
    for setting in props.get("MethodSettings") or []:
        if setting.get("ResourcePath") == "/*" and setting.get("HttpMethod") == "*":
            config.rate_limit = _number(setting.get("ThrottlingRateLimit"))
            burst = setting.get("ThrottlingBurstLimit")
            config.burst_limit = int(burst) if burst is not None else None
    return config


def _gateway_response(response: dict[str, Any]) -> GatewayResponse:
    parameters = (response.get("ResponseParameters") or {}).get("Headers") or {}
    return GatewayResponse(
        status=int(response["StatusCode"]) if "StatusCode" in response else None,
        templates={k: str(v) for k, v in (response.get("ResponseTemplates") or {}).items()},
        # Only static values ('...') make sense without a request mapping.
        headers={k: str(v).strip("'") for k, v in parameters.items()},
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _token_authorizer(name: str, spec: dict[str, Any], resolver: Resolver) -> TokenAuthorizer:
    payload_type = spec.get("FunctionPayloadType", "TOKEN")
    if payload_type != "TOKEN":
        raise NotImplementedError(f"authorizer {name}: only TOKEN authorizers run locally, not {payload_type}")
    arn = spec.get("FunctionArn")
    if not (isinstance(arn, dict) and "Fn::GetAtt" in arn):
        raise ValueError(f"authorizer {name}: FunctionArn must be !GetAtt <Function>.Arn of this template")
    identity = spec.get("Identity") or {}
    expression = identity.get("ValidationExpression")
    return TokenAuthorizer(
        name=name,
        function=arn["Fn::GetAtt"][0],
        header=str(identity.get("Header", "Authorization")),
        validation=re.compile(str(resolver.resolve(expression))) if expression else None,
        ttl_s=int(identity.get("ReauthorizeEvery", SAM_DEFAULT_REAUTHORIZE_S)),
    )


def routes_from_template(registry: FunctionRegistry, configs: dict[str, ApiConfig]) -> list[Route]:
    """Every `Type: Api` event of every function, most specific path templates first."""
    routes = []
    for spec in registry.specs.values():
        for name, props in spec.events_of_type("Api").items():
            routes.append(_route(f"{spec.logical_id}.{name}", spec.logical_id, props, configs))
    return sorted(routes, key=lambda r: r.specificity)


def _route(where: str, function: str, props: dict[str, Any], configs: dict[str, ApiConfig]) -> Route:
    api_ref = props.get("RestApiId")
    api = api_ref.get("Ref") if isinstance(api_ref, dict) else IMPLICIT_API
    if api not in configs:
        raise ValueError(f"{where}: RestApiId names no AWS::Serverless::Api")
    auth = (props.get("Auth") or {}).get("Authorizer", configs[api].default_authorizer)
    authorizer = None if auth in (None, "NONE") else str(auth)
    if authorizer is not None and authorizer not in configs[api].authorizers:
        raise ValueError(f"{where}: unknown authorizer {authorizer}")
    resource = str(props["Path"])
    pattern, specificity = _compile_path(resource)
    method = str(props["Method"]).upper()
    return Route(method, resource, function, api, authorizer, pattern, specificity)


def _compile_path(resource: str) -> tuple[re.Pattern[str], tuple[int, ...]]:
    parts, rank = [], []
    for segment in resource.strip("/").split("/") if resource != "/" else []:
        greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
        param = re.fullmatch(r"\{(\w+)\}", segment)
        if greedy:
            parts.append(f"(?P<{greedy.group(1)}>.+)")
            rank.append(2)
        elif param:
            parts.append(f"(?P<{param.group(1)}>[^/]+)")
            rank.append(1)
        else:
            parts.append(re.escape(segment))
            rank.append(0)
    return re.compile("/" + "/".join(parts)), tuple(rank)


def match_route(routes: list[Route], method: str, raw_path: str) -> tuple[Route | None, dict[str, str]]:
    """The route for a request (None: no resource, or no such method on it) and its decoded path parameters."""
    if len(raw_path) > 1 and raw_path.endswith("/"):
        raw_path = raw_path[:-1]
    for route in routes:
        found = route.pattern.fullmatch(raw_path)
        if not found:
            continue
        # The most specific resource wins; then its method (or ANY) must exist.
        same_resource = [r for r in routes if r.resource == route.resource and r.api == route.api]
        chosen = next((r for r in same_resource if r.method == method.upper()), None) or next(
            (r for r in same_resource if r.method == "ANY"), None
        )
        params = {k: unquote(v) for k, v in found.groupdict().items()}
        return chosen, params
    return None, {}
