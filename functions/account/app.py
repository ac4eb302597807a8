"""The My Account page (GET /account) and the caller's preference rows (list, delete one)."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.api import build_resolver, current_principal, empty_response, json_response, utc_timestamp
from link_zoom.edge import pages
from link_zoom.observability import logger

app = build_resolver()


@app.get("/account")
def account_page() -> Response:
    return pages.account_page()


@app.get("/v1/account/preferences")
def list_preferences() -> Response:
    rows = composition.preferences().list_preferences(current_principal(app).user_id)
    return json_response(
        200,
        {
            "preferences": [
                {
                    "resource": row.resource,
                    "tag": row.tag,
                    "created_at": utc_timestamp(row.created_at),
                    "updated_at": utc_timestamp(row.updated_at),
                }
                for row in rows
            ]
        },
    )


@app.delete("/v1/account/preferences/<resource>/<tag>")
def delete_preference(resource: str, tag: str) -> Response:
    composition.preferences().delete_preference(current_principal(app).user_id, resource, tag)
    return empty_response(204)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
