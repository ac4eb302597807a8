"""The HTTP edge shared by every API function: one resolver setup, the error shape, the caller's identity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from link_zoom.errors import NotFound, ServiceError, Unauthorized
from link_zoom.json_body import parse_json_object
from link_zoom.observability import logger

__all__ = ["parse_json_object"]  # the edge's body parser lives in json_body (the webhook domain uses it too)


@dataclass(frozen=True)
class Principal:
    """The acting user, as the authorizer established it. Never taken from path, query or body."""

    user_id: str
    username: str
    is_admin: bool


def error_response(error: ServiceError) -> Response:
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.body()),
        headers=dict(error.headers),
    )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def empty_response(status: int = 204) -> Response:
    return Response(status_code=status, body="", headers={"Cache-Control": "no-store"})


def utc_timestamp(moment: datetime) -> str:
    """The contract's timestamp form: ISO 8601 in UTC with `Z` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_resolver() -> APIGatewayRestResolver:
    """A REST (payload 1.0) resolver whose every failure leaves in the contract's error shape."""
    app = APIGatewayRestResolver()

    @app.exception_handler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        if error.status >= 500:
            logger.warning("request failed", extra={"error_code": error.code})
        return error_response(error)

    @app.not_found
    def _not_found(_: Exception) -> Response:
        return error_response(NotFound("There is no such route."))

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response:
        logger.exception("unexpected error")
        return error_response(ServiceError())

    return app


def current_principal(app: APIGatewayRestResolver) -> Principal:
    context = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    user_id = str(context.get("user_id") or context.get("principalId") or "")
    if not user_id:
        raise Unauthorized()
    is_admin = context.get("is_admin")
    return Principal(
        user_id=user_id,
        username=str(context.get("username") or ""),
        is_admin=is_admin is True or str(is_admin).lower() == "true",
    )


def request_base_url(app: APIGatewayRestResolver) -> str:
    """The public base URL of this API as the caller reached it (domain + stage), without a trailing slash."""
    event = app.current_event.raw_event
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    host = context.get("domainName") or headers.get("host") or "localhost"
    proto = headers.get("x-forwarded-proto", "https")
    stage = context.get("stage") or ""
    # Custom domains and the local gateway serve without the stage prefix.
    prefix = f"/{stage}" if stage and ".execute-api." in host else ""
    return f"{proto}://{host}{prefix}"
