"""The local API Gateway (REST API, Lambda proxy integration, payload 1.0), driven by the template alone.

Routes come from every function's `Type: Api` events; the authorizer, its result cache, the gateway
responses and the stage throttle from the `AWS::Serverless::Api` they name. Nothing here lists routes.

Also Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`, as `sam local start-lambda`
serves it), so that boto3's lambda client (AWS_ENDPOINT_URL_LAMBDA) and `python -m devstack.run invoke`
reach the local functions.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from devstack.events import api_event, method_arn, token_authorizer_event
from devstack.functions import FunctionRegistry, Invocation
from devstack.template import Resolver, resources_of_type

log = logging.getLogger("devstack.gateway")

IMPLICIT_API = "ServerlessRestApi"  # SAM's name for the API of events without a RestApiId
INTEGRATION_TIMEOUT_S = 29.0
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
SAM_DEFAULT_REAUTHORIZE_S = 300
PROXY_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Response headers the gateway sets itself.
HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

# API Gateway's gateway response types: default status and message (None: the DEFAULT_xXX fallback's).
RESPONSE_DEFAULTS: dict[str, tuple[int, str | None]] = {
    "ACCESS_DENIED": (403, "User is not authorized to access this resource"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, None),
    "AUTHORIZER_FAILURE": (500, None),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "INTEGRATION_FAILURE": (504, None),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "THROTTLED": (429, "Too Many Requests"),
    "UNAUTHORIZED": (401, "Unauthorized"),
    "DEFAULT_4XX": (400, None),
    "DEFAULT_5XX": (502, "Internal server error"),
}
ERROR_TYPES = {
    "ACCESS_DENIED": "AccessDeniedException",
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "THROTTLED": "TooManyRequestsException",
    "UNAUTHORIZED": "UnauthorizedException",
    "AUTHORIZER_FAILURE": "AuthorizerFailureException",
    "AUTHORIZER_CONFIGURATION_ERROR": "AuthorizerConfigurationException",
}


# ---------------------------------------------------------------- what the template says


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
        props = spec.get("Properties") or {}
        auth = props.get("Auth") or {}
        config = ApiConfig(logical, stage=str(resolver.resolve(props.get("StageName", "Prod"))))
        for name, authorizer in (auth.get("Authorizers") or {}).items():
            config.authorizers[name] = _token_authorizer(name, authorizer, resolver)
        default = auth.get("DefaultAuthorizer")
        config.default_authorizer = None if default in (None, "NONE") else str(default)
        for kind, response in (props.get("GatewayResponses") or {}).items():
            parameters = (response.get("ResponseParameters") or {}).get("Headers") or {}
            config.responses[kind] = GatewayResponse(
                status=int(response["StatusCode"]) if "StatusCode" in response else None,
                templates={k: str(v) for k, v in (response.get("ResponseTemplates") or {}).items()},
                # Only static values ('...') make sense without a request mapping.
                headers={k: str(v).strip("'") for k, v in parameters.items()},
            )
        for setting in props.get("MethodSettings") or []:
            if setting.get("ResourcePath") == "/*" and setting.get("HttpMethod") == "*":
                config.rate_limit = _number(setting.get("ThrottlingRateLimit"))
                burst = setting.get("ThrottlingBurstLimit")
                config.burst_limit = int(burst) if burst is not None else None
        configs[logical] = config
    return configs


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
            api_ref = props.get("RestApiId")
            api = api_ref.get("Ref") if isinstance(api_ref, dict) else IMPLICIT_API
            if api not in configs:
                raise ValueError(f"{spec.logical_id}.{name}: RestApiId names no AWS::Serverless::Api")
            auth = (props.get("Auth") or {}).get("Authorizer", configs[api].default_authorizer)
            authorizer = None if auth in (None, "NONE") else str(auth)
            if authorizer is not None and authorizer not in configs[api].authorizers:
                raise ValueError(f"{spec.logical_id}.{name}: unknown authorizer {authorizer}")
            resource = str(props["Path"])
            pattern, specificity = _compile_path(resource)
            method = str(props["Method"]).upper()
            routes.append(
                Route(
                    "ANY" if method == "ANY" else method,
                    resource,
                    spec.logical_id,
                    api,
                    authorizer,
                    pattern,
                    specificity,
                )
            )
    return sorted(routes, key=lambda r: r.specificity)


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


# ---------------------------------------------------------------- the authorizer's policy


def policy_allows(policy: dict[str, Any], arn: str) -> bool | None:
    """True: an Allow matches and no Deny; False: an explicit Deny; None: nothing allows it."""
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = _as_list(statement.get("Action"))
        if not any(a in ("*", "execute-api:*", "execute-api:Invoke") for a in actions):
            continue
        if not any(_arn_matches(pattern, arn) for pattern in _as_list(statement.get("Resource"))):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        allowed = allowed or effect == "allow"
    return True if allowed else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _arn_matches(pattern: str, arn: str) -> bool:
    """IAM's wildcards over the whole ARN: `*` any run of characters, `?` one; a decoded path may hold a newline."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn, re.DOTALL) is not None


def stringify_context(context: dict[str, Any]) -> dict[str, str]:
    """API Gateway hands the integration the authorizer's context values as strings."""
    out = {}
    for key, value in context.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[key] = str(value)
        else:
            raise TypeError(f"context value {key} is not a string, number or boolean")
    return out


# ---------------------------------------------------------------- the gateway itself


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    principal: str = ""


class _Refusal(Exception):
    """A gateway response instead of the integration (e.g. UNAUTHORIZED)."""

    def __init__(self, kind: str, message: str | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.message = message


class _TokenBucket:
    """The stage's throttle (rate per second, burst), as API Gateway's token bucket."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


@dataclass
class _CachedPolicy:
    expires: float
    principal: str
    policy: dict[str, Any]
    context: dict[str, str]


class Gateway:
    """Turns HTTP requests into proxy events for the template's routes, and proxy results into responses."""

    def __init__(
        self,
        registry: FunctionRegistry,
        resolver: Resolver,
        *,
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        access_log: Path | None = None,
    ) -> None:
        template = resolver.template
        self.registry = registry
        self.configs = api_configs(template, resolver)
        self.routes = routes_from_template(registry, self.configs)
        self.integration_timeout_s = integration_timeout_s
        self._throttles = {
            name: _TokenBucket(c.rate_limit, c.burst_limit or int(c.rate_limit))
            for name, c in self.configs.items()
            if c.rate_limit
        }
        self._cache: dict[tuple[str, str], _CachedPolicy] = {}
        self._cache_lock = threading.Lock()
        self._access_log = access_log.open("a", encoding="utf-8", buffering=1) if access_log else None
        self._log_lock = threading.Lock()

    def close(self) -> None:
        if self._access_log is not None:
            self._access_log.close()

    # -- one request

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str, host: str
    ) -> Response:
        began = time.monotonic()
        request_id = str(uuid.uuid4())
        parts = urlsplit(target)
        raw_path = parts.path or "/"
        path = unquote(raw_path)
        route, params = self._match(method, raw_path)
        api = self.configs[route.api] if route else self._fallback_api()
        try:
            if route is None:
                raise _Refusal("MISSING_AUTHENTICATION_TOKEN")
            bucket = self._throttles.get(route.api)
            if bucket is not None and not bucket.take():
                raise _Refusal("THROTTLED")
            if len(body) > MAX_PAYLOAD_BYTES:
                raise _Refusal("REQUEST_TOO_LARGE")
            context = self._authorize(api, route, method, path, headers) if route.authorizer else None
            response = self._integrate(
                route, method, target, params, headers, body, client_ip, host, context, request_id, api
            )
        except _Refusal as refusal:
            response = self._gateway_response(api, refusal.kind, request_id, refusal.message)
        response.headers.append(("x-amzn-RequestId", request_id))
        self._access(request_id, client_ip, method, path, response, began)
        return response

    def _fallback_api(self) -> ApiConfig:
        # An unknown route answers with the gateway responses of the (one) API the template declares.
        named = [c for name, c in self.configs.items() if name != IMPLICIT_API]
        return named[0] if len(named) == 1 else self.configs[IMPLICIT_API]

    def _match(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str]]:
        if len(raw_path) > 1 and raw_path.endswith("/"):
            raw_path = raw_path[:-1]
        for route in self.routes:
            found = route.pattern.fullmatch(raw_path)
            if not found:
                continue
            # The most specific resource wins; then its method (or ANY) must exist.
            same_resource = [r for r in self.routes if r.resource == route.resource and r.api == route.api]
            chosen = next((r for r in same_resource if r.method == method.upper()), None) or next(
                (r for r in same_resource if r.method == "ANY"), None
            )
            params = {k: unquote(v) for k, v in found.groupdict().items()}
            return chosen, params
        return None, {}

    def _authorize(
        self, api: ApiConfig, route: Route, method: str, path: str, headers: list[tuple[str, str]]
    ) -> dict[str, Any]:
        assert route.authorizer is not None
        authorizer = api.authorizers[route.authorizer]
        wanted = authorizer.header.lower()
        token = next((v for k, v in reversed(headers) if k.lower() == wanted), "")
        if not token or (authorizer.validation and not authorizer.validation.fullmatch(token)):
            raise _Refusal("UNAUTHORIZED")
        arn = method_arn(method, path)
        began = time.monotonic()
        cached = self._cached(authorizer, token)
        if cached is None:
            invocation = self.registry.invoke(authorizer.function, token_authorizer_event(token, method, path))
            cached = self._policy_from(authorizer, token, invocation)
        allowed = policy_allows(cached.policy, arn)
        if allowed is False:
            raise _Refusal("ACCESS_DENIED", "User is not authorized to access this resource with an explicit deny")
        if allowed is None:
            raise _Refusal("ACCESS_DENIED")
        latency_ms = int((time.monotonic() - began) * 1000)
        return {**cached.context, "principalId": cached.principal, "integrationLatency": latency_ms}

    def _cached(self, authorizer: TokenAuthorizer, token: str) -> _CachedPolicy | None:
        if authorizer.ttl_s <= 0:
            return None
        with self._cache_lock:
            entry = self._cache.get((authorizer.name, token))
            if entry is not None and entry.expires > time.monotonic():
                return entry
            return None

    def _policy_from(self, authorizer: TokenAuthorizer, token: str, invocation: Invocation) -> _CachedPolicy:
        if invocation.error is not None:
            if invocation.error.get("errorMessage") == "Unauthorized":
                raise _Refusal("UNAUTHORIZED")
            raise _Refusal("AUTHORIZER_FAILURE")
        if invocation.timeout:
            raise _Refusal("AUTHORIZER_FAILURE")
        payload = invocation.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("policyDocument"), dict):
            raise _Refusal("AUTHORIZER_CONFIGURATION_ERROR")
        principal = payload.get("principalId")
        try:
            context = stringify_context(payload.get("context") or {})
        except (TypeError, AttributeError):
            raise _Refusal("AUTHORIZER_CONFIGURATION_ERROR") from None
        if not isinstance(principal, str | int | float):
            raise _Refusal("AUTHORIZER_CONFIGURATION_ERROR")
        entry = _CachedPolicy(time.monotonic() + authorizer.ttl_s, str(principal), payload["policyDocument"], context)
        if authorizer.ttl_s > 0:
            with self._cache_lock:
                self._cache[(authorizer.name, token)] = entry
        return entry

    def _integrate(
        self,
        route: Route,
        method: str,
        target: str,
        params: dict[str, str],
        headers: list[tuple[str, str]],
        body: bytes,
        client_ip: str,
        host: str,
        context: dict[str, Any] | None,
        request_id: str,
        api: ApiConfig,
    ) -> Response:
        multi: dict[str, list[str]] = {}
        for key, value in headers:
            multi.setdefault(key, []).append(value)
        # What API Gateway adds in front of every integration.
        port = host.rsplit(":", 1)[1] if ":" in host else "80"
        multi.setdefault("X-Forwarded-For", [client_ip])
        multi["X-Forwarded-Port"] = [port]
        multi["X-Forwarded-Proto"] = ["http"]
        multi["X-Amzn-Trace-Id"] = [f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"]
        event = api_event(
            method,
            target,
            resource=route.resource,
            path_parameters=params or None,
            multi_value_headers=multi,
            body=body if body else None,
            authorizer=context,
            source_ip=client_ip,
            domain_name=host,
        )
        # The handler sees the decoded path, as API Gateway hands it; the stage is the template's.
        event["path"] = unquote(event["path"])
        event["requestContext"]["requestId"] = request_id
        event["requestContext"]["stage"] = api.stage
        event["requestContext"]["path"] = f"/{api.stage}{event['path']}"
        invocation = self.registry.invoke(route.function, event, wait_s=self.integration_timeout_s)
        principal = str((context or {}).get("principalId", ""))
        if invocation.timeout == "caller":
            raise _Refusal("INTEGRATION_TIMEOUT")
        if invocation.error is not None:
            raise _Refusal("DEFAULT_5XX")
        response = proxy_response(invocation.payload)
        if response is None:
            raise _Refusal("DEFAULT_5XX")
        response.principal = principal
        return response

    def _gateway_response(self, api: ApiConfig, kind: str, request_id: str, message: str | None) -> Response:
        default_status, default_message = RESPONSE_DEFAULTS.get(kind, (500, None))
        spec = api.responses.get(kind)
        fallback = api.responses.get("DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX")
        status = spec.status if spec and spec.status else default_status
        chosen = spec if spec and spec.templates else fallback
        text = message or default_message
        headers = dict((fallback.headers if fallback else {}) | (spec.headers if spec else {}))
        if chosen and chosen.templates:
            content_type = (
                "application/json" if "application/json" in chosen.templates else next(iter(chosen.templates))
            )
            body = _render(chosen.templates[content_type], kind, text, request_id)
        else:
            content_type, body = "application/json", json.dumps({"message": text})
        headers.setdefault("Content-Type", content_type)
        if kind in ERROR_TYPES:
            headers["x-amzn-ErrorType"] = ERROR_TYPES[kind]
        return Response(status, list(headers.items()), body.encode("utf-8"))

    def _access(self, request_id: str, ip: str, method: str, path: str, response: Response, began: float) -> None:
        if self._access_log is None:
            return
        # Never headers, query strings or bodies: they carry tokens, codes and passwords.
        line = json.dumps(
            {
                "requestId": request_id,
                "ip": ip,
                "method": method,
                "path": path,
                "status": response.status,
                "latencyMs": round((time.monotonic() - began) * 1000, 1),
                "user": response.principal,
            }
        )
        with self._log_lock:
            self._access_log.write(line + "\n")


def _render(template: str, kind: str, message: str | None, request_id: str) -> str:
    values = {
        "$context.error.messageString": json.dumps(message),
        "$context.error.message": message or "",
        "$context.error.responseType": kind,
        "$context.requestId": request_id,
    }
    for key in sorted(values, key=len, reverse=True):
        template = template.replace(key, values[key])
    return template


def proxy_response(payload: Any) -> Response | None:
    """A Lambda proxy result as API Gateway reads it; None when API Gateway would call it malformed."""
    if not isinstance(payload, dict) or not set(payload) <= PROXY_RESPONSE_KEYS:
        return None
    status = payload.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return None
    headers: list[tuple[str, str]] = []
    single = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return None
    scalar = str | int | float | bool
    for key, value in single.items():
        if not isinstance(value, scalar):
            return None
        if key.lower() not in {k.lower() for k in multi}:
            headers.append((key, _header_text(value)))
    for key, values in multi.items():
        if not isinstance(values, list) or not all(isinstance(v, scalar) for v in values):
            return None
        headers.extend((key, _header_text(v)) for v in values)
    headers = [(k, v) for k, v in headers if k.lower() not in HOP_HEADERS]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = payload.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        return None
    elif payload.get("isBase64Encoded") is True:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        raw = body.encode("utf-8")
    return Response(status, headers, raw)


def _header_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- HTTP servers


class LoopbackHTTPServer(ThreadingHTTPServer):
    # ThreadingHTTPServer's listen backlog is 5: bursts of clients would stall for a second.
    request_queue_size = 128
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections do not hold a thread for ever

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the gateway writes its own access log."""

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _ApiServer(LoopbackHTTPServer):
    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        super().__init__(address, _ApiHandler)
        self.gateway = gateway


class _InvokeServer(LoopbackHTTPServer):
    def __init__(self, address: tuple[str, int], registry: FunctionRegistry) -> None:
        super().__init__(address, _InvokeHandler)
        self.registry = registry


class _ApiHandler(_Handler):
    server: _ApiServer

    def _serve(self) -> None:
        body = self._read_body()
        gateway = self.server.gateway
        if body is None:
            self.close_connection = True
            body = b"x" * (MAX_PAYLOAD_BYTES + 1)  # let the gateway answer REQUEST_TOO_LARGE
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        try:
            response = gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0], host
            )
        except Exception:
            # A bug of the local gateway itself: answer, rather than drop the connection.
            log.exception("the local gateway failed on %s %s", self.command, urlsplit(self.path).path)
            response = Response(500, [("Content-Type", "application/json")], b'{"message": "local gateway error"}')
        self._send(response.status, response.headers, response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _InvokeHandler(_Handler):
    """Lambda's Invoke API, enough for boto3's `lambda.invoke` (RequestResponse, Event, DryRun)."""

    PATH = re.compile(r"/2015-03-31/functions/(?P<name>[^/]+)/invocations")
    server: _InvokeServer

    def do_POST(self) -> None:
        registry = self.server.registry
        found = self.PATH.fullmatch(urlsplit(self.path).path)
        body = self._read_body() or b""
        logical = registry.resolve_name(unquote(found.group("name"))) if found else None
        if logical is None:
            error = {"Type": "User", "Message": f"Function not found: {found.group('name') if found else ''}"}
            self._send(
                404,
                [("x-amzn-ErrorType", "ResourceNotFoundException"), ("Content-Type", "application/json")],
                json.dumps(error).encode(),
            )
            return
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError:
            error = {"Type": "User", "Message": "Could not parse request body into json"}
            self._send(
                400,
                [("x-amzn-ErrorType", "InvalidRequestContentException"), ("Content-Type", "application/json")],
                json.dumps(error).encode(),
            )
            return
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            self._send(204, [], b"")
            return
        if kind == "Event":
            threading.Thread(target=registry.invoke, args=(logical, event), daemon=True).start()
            self._send(202, [], b"")
            return
        invocation = registry.invoke(logical, event)
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", invocation.request_id),
        ]
        if invocation.error is not None:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
            payload = invocation.error
        else:
            payload = invocation.payload
        self._send(200, headers, json.dumps(payload).encode())


@dataclass
class RunningServer:
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _serve(server: ThreadingHTTPServer, name: str) -> RunningServer:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True)
    thread.start()
    return RunningServer(server, thread)


def serve_api(gateway: Gateway, host: str = "127.0.0.1", port: int = 3000) -> RunningServer:
    return _serve(_ApiServer((host, port), gateway), "api-gateway")


def serve_invoke_api(registry: FunctionRegistry, host: str = "127.0.0.1", port: int = 3001) -> RunningServer:
    return _serve(_InvokeServer((host, port), registry), "lambda-invoke-api")
