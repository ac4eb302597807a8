"""GET /v1/zoom/authorize (where to send the browser) and GET /v1/zoom/callback (the browser is back from Zoom)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.api import build_resolver, current_principal, json_response, request_base_url, utc_timestamp
from link_zoom.domain.connection import AuthorizationRefused, ConnectionNotStored
from link_zoom.edge.pages import message_page
from link_zoom.errors import FeatureDisabled, ZoomUnavailable
from link_zoom.observability import logger, metrics

app = build_resolver()


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
        return message_page(400, "Zoom is not connected", refused.message)
    except ZoomUnavailable:
        return message_page(
            502, "Zoom is not connected", "Zoom did not complete the connection. Start again from Link."
        )
    except ConnectionNotStored:
        return message_page(502, "Zoom is not connected", "Link could not save the connection. Start again from Link.")
    return message_page(200, "Zoom is connected", "Zoom is connected — you can return to Link.")


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
