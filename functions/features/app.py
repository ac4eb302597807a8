"""GET /v1/features for every client; GET/PUT /v1/admin/features/zoom, the organisation's switch, for admins."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.api import build_resolver, current_principal, json_response, parse_json_object, utc_timestamp
from link_zoom.domain.features import require_admin
from link_zoom.errors import BadRequest
from link_zoom.observability import logger

app = build_resolver()


@app.get("/v1/features")
def get_features() -> Response:
    zoom = composition.features().zoom_feature_for(current_principal(app).user_id)
    reauthorize_after = utc_timestamp(zoom.reauthorize_after) if zoom.reauthorize_after else None
    return json_response(
        200, {"zoom": {"enabled": zoom.enabled, "connected": zoom.connected, "reauthorize_after": reauthorize_after}}
    )


@app.get("/v1/admin/features/zoom")
def get_zoom_switch() -> Response:
    return json_response(200, {"enabled": composition.features().read_zoom_switch(current_principal(app).is_admin)})


@app.put("/v1/admin/features/zoom")
def put_zoom_switch() -> Response:
    principal = current_principal(app)
    # A non-admin learns nothing about the body's rules: 403 before validation.
    require_admin(principal.is_admin)
    body = parse_json_object(app.current_event.body)
    # Strict: `"true"`, 1 or extra keys are mistakes a switch for the whole organisation should not guess at.
    if set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
        raise BadRequest('The body must be {"enabled": true} or {"enabled": false}.')
    enabled = composition.features().write_zoom_switch(principal.is_admin, principal.user_id, body["enabled"])
    return json_response(200, {"enabled": enabled})


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
