"""POST /v1/compose-link and PUT/DELETE /v1/events/{event_id}/zoom: the meetings a user sees."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.api import (
    build_resolver,
    current_principal,
    empty_response,
    error_response,
    json_response,
    parse_json_object,
    request_base_url,
)
from link_zoom.deadline import Deadline
from link_zoom.domain import meetings
from link_zoom.edge import meeting_requests
from link_zoom.errors import BadRequest, NotFound, ZoomAuthorizationRequired
from link_zoom.observability import logger, metrics

app = build_resolver()


@app.exception_handler(meetings.NotConnected)
def _not_connected(_: meetings.NotConnected) -> Response:
    # The answer carries a fresh authorize URL, so the client can send the user to Zoom at once.
    consent = composition.connection()
    authorize_url = consent.authorize_url_for(
        current_principal(app).user_id, consent.redirect_uri_for(request_base_url(app))
    )
    error = ZoomAuthorizationRequired(authorize_url)
    return json_response(error.status, error.body())


@app.not_found
def _unroutable(_: Exception) -> Response:
    # API Gateway routed the request by its own template; the resolver's path pattern takes only RFC 3986 and
    # word characters, so an event id with others (`?`, `#`, a control character) ends up here: a bad id, not a
    # missing route.
    if app.current_event.resource == "/v1/events/{event_id}/zoom":
        return error_response(BadRequest("The event id holds characters this API does not accept."))
    return error_response(NotFound("There is no such route."))


@app.post("/v1/compose-link")
def compose_link() -> Response:
    principal = current_principal(app)
    request = meeting_requests.parse_compose_link(parse_json_object(app.current_event.body, required=False))
    key = meeting_requests.parse_idempotency_key(app.current_event.headers.get("idempotency-key"))
    answer = composition.meetings().compose_link_once(
        principal.user_id, request, key, Deadline.for_api(app.lambda_context)
    )
    return json_response(201, answer)


@app.put("/v1/events/<event_id>/zoom")
def put_event_meeting(event_id: str) -> Response:
    principal = current_principal(app)
    body = parse_json_object(app.current_event.body)
    schedule = meeting_requests.parse_event_meeting(body)
    recurrence = meeting_requests.parse_event_recurrence(body, schedule)
    answer = composition.meetings().put_event_meeting(
        principal.user_id,
        meeting_requests.event_id_of(event_id),
        schedule,
        Deadline.for_api(app.lambda_context),
        recurrence=recurrence,
    )
    return json_response(200, answer)


@app.delete("/v1/events/<event_id>/zoom")
def delete_event_meeting(event_id: str) -> Response:
    principal = current_principal(app)
    composition.meetings().delete_event_meeting(
        principal.user_id, meeting_requests.event_id_of(event_id), Deadline.for_api(app.lambda_context)
    )
    return empty_response(204)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
