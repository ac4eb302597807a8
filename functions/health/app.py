"""GET /v1/health: answers without touching Zoom or the directory."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom.api import build_resolver, json_response
from link_zoom.observability import logger

app = build_resolver()


@app.get("/v1/health")
def health() -> Response:
    return json_response(200, {"status": "ok"})


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
