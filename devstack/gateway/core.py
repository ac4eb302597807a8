"""The gateway: a request → route, throttle, size limit, authorizer, integration → a response, and its access log."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from devstack.functions import FunctionRegistry
from devstack.gateway.authorizer import Authorizers
from devstack.gateway.proxy import Request, proxy_event, proxy_response
from devstack.gateway.responses import Refusal, Response, gateway_response
from devstack.gateway.routes import IMPLICIT_API, ApiConfig, Route, api_configs, match_route, routes_from_template
from devstack.template import Resolver

INTEGRATION_TIMEOUT_S = 29.0
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit


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
        self.registry = registry
        self.configs = api_configs(resolver.template, resolver)
        self.routes = routes_from_template(registry, self.configs)
        self.integration_timeout_s = integration_timeout_s
        self.authorizers = Authorizers(registry)
        self._throttles = {
            name: _TokenBucket(c.rate_limit, c.burst_limit or int(c.rate_limit))
            for name, c in self.configs.items()
            if c.rate_limit
        }
        self._access_log = access_log.open("a", encoding="utf-8", buffering=1) if access_log else None
        self._log_lock = threading.Lock()

    def close(self) -> None:
        if self._access_log is not None:
            self._access_log.close()

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str, host: str
    ) -> Response:
        began = time.monotonic()
        request_id = str(uuid.uuid4())
        request = Request(method, target, headers, body, client_ip, host)
        raw_path = urlsplit(target).path or "/"
        route, params = match_route(self.routes, method, raw_path)
        api = self.configs[route.api] if route else self._fallback_api()
        try:
            response = self._answer(request, route, params, api, request_id)
        except Refusal as refusal:
            response = gateway_response(api, refusal.kind, request_id, refusal.message)
        response.headers.append(("x-amzn-RequestId", request_id))
        self._access(request_id, client_ip, method, unquote(raw_path), response, began)
        return response

    def _answer(
        self, request: Request, route: Route | None, params: dict[str, str], api: ApiConfig, request_id: str
    ) -> Response:
        if route is None:
            raise Refusal("MISSING_AUTHENTICATION_TOKEN")
        bucket = self._throttles.get(route.api)
        if bucket is not None and not bucket.take():
            raise Refusal("THROTTLED")
        if len(request.body) > MAX_PAYLOAD_BYTES:
            raise Refusal("REQUEST_TOO_LARGE")
        context = None
        if route.authorizer:
            path = unquote(urlsplit(request.target).path or "/")
            context = self.authorizers.authorize(
                api.authorizers[route.authorizer], request.method, path, request.headers
            )
        return self._integrate(request, route, params, api, context, request_id)

    def _fallback_api(self) -> ApiConfig:
        # An unknown route answers with the gateway responses of the (one) API the template declares.
        named = [c for name, c in self.configs.items() if name != IMPLICIT_API]
        return named[0] if len(named) == 1 else self.configs[IMPLICIT_API]

    def _integrate(
        self,
        request: Request,
        route: Route,
        params: dict[str, str],
        api: ApiConfig,
        context: dict[str, Any] | None,
        request_id: str,
    ) -> Response:
        event = proxy_event(request, route, params, api, context, request_id)
        invocation = self.registry.invoke(route.function, event, wait_s=self.integration_timeout_s)
        if invocation.timeout == "caller":
            raise Refusal("INTEGRATION_TIMEOUT")
        if invocation.error is not None:
            raise Refusal("DEFAULT_5XX")
        response = proxy_response(invocation.payload)
        if response is None:
            raise Refusal("DEFAULT_5XX")
        response.principal = str((context or {}).get("principalId", ""))
        return response

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
