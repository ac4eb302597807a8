"""API Gateway's own answers (gateway responses: UNAUTHORIZED, THROTTLED, ...) as the template shapes them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from devstack.gateway.routes import ApiConfig

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


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    principal: str = ""


class Refusal(Exception):
    """A gateway response instead of the integration (e.g. UNAUTHORIZED)."""

    def __init__(self, kind: str, message: str | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.message = message


def gateway_response(api: ApiConfig, kind: str, request_id: str, message: str | None) -> Response:
    """The API's response of this kind, else its DEFAULT_4XX/5XX, else API Gateway's own `{"message"}`."""
    default_status, default_message = RESPONSE_DEFAULTS.get(kind, (500, None))
    spec = api.responses.get(kind)
    fallback = api.responses.get("DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX")
    status = spec.status if spec and spec.status else default_status
    chosen = spec if spec and spec.templates else fallback
    text = message or default_message
    headers = dict((fallback.headers if fallback else {}) | (spec.headers if spec else {}))
    if chosen and chosen.templates:
        content_type = "application/json" if "application/json" in chosen.templates else next(iter(chosen.templates))
        body = _render(chosen.templates[content_type], kind, text, request_id)
    else:
        content_type, body = "application/json", json.dumps({"message": text})
    headers.setdefault("Content-Type", content_type)
    if kind in ERROR_TYPES:
        headers["x-amzn-ErrorType"] = ERROR_TYPES[kind]
    return Response(status, list(headers.items()), body.encode("utf-8"))


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
