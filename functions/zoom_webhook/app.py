"""POST /v1/zoom/webhook: Zoom's signed event notifications (verified on the raw body before parsing)."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.api import build_resolver, json_response, parse_json_object
from link_zoom.observability import logger, metrics

app = build_resolver()


@app.post("/v1/zoom/webhook")
def notification() -> Response:
    event = app.current_event
    # The signature covers the bytes Zoom sent: hand them over untouched.
    raw_body = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode()
    webhook = composition.webhook()
    webhook.verify(event.headers or {}, raw_body)  # 401 before anything of the body is read
    return json_response(200, webhook.handle(parse_json_object(raw_body)))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
