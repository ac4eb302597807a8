"""POST /v1/session (sign in with directory credentials) and DELETE /v1/session (sign out this device)."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.api import build_resolver, empty_response, json_response, parse_json_object, utc_timestamp
from link_zoom.errors import BadRequest, Unauthorized
from link_zoom.observability import logger, metrics

app = build_resolver()


@app.post("/v1/session")
def sign_in() -> Response:
    # The body holds a password: it is parsed here and never logged.
    body = parse_json_object(app.current_event.body)
    username, password = body.get("username"), body.get("password")
    if set(body) != {"username", "password"} or not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest('The body must be {"username": string, "password": string}.')
    # API Gateway's view of the caller's address (not a client-set header): failures are also counted per address.
    source_ip = app.current_event.request_context.identity.source_ip
    signed_in = composition.identity().sign_in(username, password, source_ip=source_ip)
    session = signed_in.session
    return json_response(
        201,
        {
            "token": signed_in.token,
            "expires_at": utc_timestamp(session.expires_at),
            "user": {
                "id": session.user_id,
                "username": session.username,
                "display_name": session.display_name,
                "is_admin": session.is_admin,
            },
        },
    )


@app.delete("/v1/session")
def sign_out() -> Response:
    # The authorizer names the session it accepted (its key, not the token): revoke exactly that one.
    session_id = app.current_event.request_context.authorizer.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise Unauthorized()
    composition.identity().sign_out(session_id)
    return empty_response(204)


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
