"""Lambda proxy integration, payload format 1.0: the event API Gateway builds, and how it reads the result."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from devstack.events import api_event
from devstack.gateway.responses import Response
from devstack.gateway.routes import ApiConfig, Route

PROXY_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Response headers the gateway sets itself.
HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
_SCALAR = str | int | float | bool


@dataclass
class Request:
    """One HTTP request as the gateway received it."""

    method: str
    target: str  # path and query, still encoded
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str
    host: str


def proxy_event(
    request: Request,
    route: Route,
    params: dict[str, str],
    api: ApiConfig,
    context: dict[str, Any] | None,
    request_id: str,
) -> dict[str, Any]:
    multi: dict[str, list[str]] = {}
    for key, value in request.headers:
        multi.setdefault(key, []).append(value)
    # What API Gateway adds in front of every integration.
    port = request.host.rsplit(":", 1)[1] if ":" in request.host else "80"
    multi.setdefault("X-Forwarded-For", [request.client_ip])
    multi["X-Forwarded-Port"] = [port]
    multi["X-Forwarded-Proto"] = ["http"]
    multi["X-Amzn-Trace-Id"] = [f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"]
    event = api_event(
        request.method,
        request.target,
        resource=route.resource,
        path_parameters=params or None,
        multi_value_headers=multi,
        body=request.body if request.body else None,
        authorizer=context,
        source_ip=request.client_ip,
        domain_name=request.host,
    )
    # The handler sees the decoded path, as API Gateway hands it; the stage is the template's.
    event["path"] = unquote(event["path"])
    event["requestContext"]["requestId"] = request_id
    event["requestContext"]["stage"] = api.stage
    event["requestContext"]["path"] = f"/{api.stage}{event['path']}"
    return event


def proxy_response(payload: Any) -> Response | None:
    """A Lambda proxy result as API Gateway reads it; None when API Gateway would call it malformed."""
    if not isinstance(payload, dict) or not set(payload) <= PROXY_RESPONSE_KEYS:
        return None
    status = _status(payload.get("statusCode"))
    headers = _headers(payload.get("headers") or {}, payload.get("multiValueHeaders") or {})
    body = _body(payload.get("body"), payload.get("isBase64Encoded") is True)
    if status is None or headers is None or body is None:
        return None
    return Response(status, headers, body)


def _status(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        return None
    return value


def _headers(single: Any, multi: Any) -> list[tuple[str, str]] | None:
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return None
    if not all(isinstance(v, _SCALAR) for v in single.values()):
        return None
    if not all(isinstance(vs, list) and all(isinstance(v, _SCALAR) for v in vs) for vs in multi.values()):
        return None
    in_multi = {k.lower() for k in multi}
    headers = [(k, _header_text(v)) for k, v in single.items() if k.lower() not in in_multi]
    headers += [(k, _header_text(v)) for k, values in multi.items() for v in values]
    headers = [(k, v) for k, v in headers if k.lower() not in HOP_HEADERS]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return headers


def _body(body: Any, base64_encoded: bool) -> bytes | None:
    if body is None:
        return b""
    if not isinstance(body, str):
        return None
    if not base64_encoded:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def _header_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
