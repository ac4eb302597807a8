"""GET /v1/zoom/authorize (where to send the browser) and GET /v1/zoom/callback (the browser is back from Zoom)."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.api import build_resolver, current_principal, json_response, request_base_url, utc_timestamp
from link_zoom.domain.connection import AuthorizationRefused, ConnectionNotStored
from link_zoom.errors import FeatureDisabled, ZoomUnavailable
from link_zoom.observability import logger, metrics

app = build_resolver()

_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f6fa;color:#1d2330;margin:0}"
    "main{max-width:30rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:12px;"
    "box-shadow:0 2px 12px #0002}h1{font-size:1.4rem;margin-top:0}"
)
# The page runs no script and loads nothing; only its own inline style (by hash) is allowed.
_CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _page(status: int, title: str, message: str) -> Response:
    body = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1><p>{escape(message)}</p></main></body></html>\n"
    )
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        body=body,
        headers={
            "Content-Security-Policy": _CSP,
            "Cache-Control": "no-store",
            # The callback URL carried a code: no referrer may repeat it.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


@app.get("/v1/zoom/authorize")
def authorize() -> Response:
    principal = current_principal(app)
    if not composition.features().zoom_enabled():
        raise FeatureDisabled()
    connection = composition.connection()
    redirect_uri = connection.redirect_uri_for(request_base_url(app))
    start = connection.start_authorization(principal.user_id, redirect_uri)
    return json_response(200, {"authorize_url": start.authorize_url, "expires_at": utc_timestamp(start.expires_at)})


@app.get("/v1/zoom/callback")
def callback() -> Response:
    query: dict[str, Any] = app.current_event.query_string_parameters or {}
    try:
        composition.connection().complete_authorization(query.get("state"), query.get("code"), query.get("error"))
    except AuthorizationRefused as refused:
        return _page(400, "Zoom is not connected", refused.message)
    except ZoomUnavailable:
        return _page(502, "Zoom is not connected", "Zoom did not complete the connection. Start again from Link.")
    except ConnectionNotStored:
        return _page(502, "Zoom is not connected", "Link could not save the connection. Start again from Link.")
    return _page(200, "Zoom is connected", "Zoom is connected — you can return to Link.")


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
