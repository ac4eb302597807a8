"""The My Account page (GET /account) and the caller's preference rows (list, delete one)."""

import base64
import hashlib
import re
from functools import lru_cache
from importlib import resources

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.api import build_resolver, current_principal, empty_response, json_response, utc_timestamp
from link_zoom.observability import logger

app = build_resolver()


@lru_cache(maxsize=1)
def _account_page() -> tuple[str, str]:
    """The page (packaged in the layer) and a policy that allows exactly its own inline script and style."""
    html = (resources.files("link_zoom") / "web" / "account.html").read_text("utf-8")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
        digests = (base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()).decode() for b in blocks)
        return " ".join(f"'sha256-{d}'" for d in digests)

    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {hashes('script')}",
            f"style-src {hashes('style')}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html, policy


@app.get("/account")
def account_page() -> Response:
    html, policy = _account_page()
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=html,
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )


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
