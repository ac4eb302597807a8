"""The local API Gateway (REST API, Lambda proxy integration, payload 1.0), driven by the template alone, and
Lambda's Invoke API for the local functions.

- `routes`: what the template says (APIs, stages, authorizers, gateway responses, throttles, routes);
- `authorizer`: the TOKEN authorizer run and its policy matched as API Gateway does, with its result cache;
- `proxy`: the payload 1.0 proxy event, and how a proxy result becomes a response;
- `responses`: API Gateway's own answers (gateway responses);
- `core`: the `Gateway` that puts them together for one request;
- `servers`: the HTTP servers of the API and of the Invoke API.
"""

from devstack.gateway.authorizer import policy_allows, stringify_context
from devstack.gateway.core import INTEGRATION_TIMEOUT_S, MAX_PAYLOAD_BYTES, Gateway
from devstack.gateway.proxy import proxy_response
from devstack.gateway.responses import Response
from devstack.gateway.routes import ApiConfig, Route, api_configs, routes_from_template
from devstack.gateway.servers import LoopbackHTTPServer, RunningServer, serve_api, serve_invoke_api

__all__ = [
    "INTEGRATION_TIMEOUT_S",
    "MAX_PAYLOAD_BYTES",
    "ApiConfig",
    "Gateway",
    "LoopbackHTTPServer",
    "Response",
    "Route",
    "RunningServer",
    "api_configs",
    "policy_allows",
    "proxy_response",
    "routes_from_template",
    "serve_api",
    "serve_invoke_api",
    "stringify_context",
]
