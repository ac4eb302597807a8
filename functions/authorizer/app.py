"""The API's TOKEN authorizer: a live session -> Allow with the caller's identity; anything else -> 401.

API Gateway turns `Exception("Unauthorized")` into its UNAUTHORIZED gateway response (the contract's 401).
Other failures (the session store unreachable) raise as themselves, so clients see a 5xx, not a sign-out.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.observability import logger

BEARER = "Bearer "


def _api_wide(method_arn: str) -> str:
    """`arn:...:apiId/stage/GET/v1/x` -> `arn:...:apiId/stage/*/*`: one answer is valid for every route."""
    api, stage = method_arn.split("/", 2)[:2]
    return f"{api}/{stage}/*/*"


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    header = event.get("authorizationToken") or ""
    token = header[len(BEARER) :] if header.startswith(BEARER) else None
    session = composition.identity().authorize_session(token)
    if session is None:
        logger.info("request refused", extra={"reason": "no live session"})
        raise Exception("Unauthorized")  # the exact text API Gateway maps to 401
    return {
        "principalId": session.user_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": _api_wide(event["methodArn"])}
            ],
        },
        # Context values reach the handlers as strings; session_id is the token's hash, never the token.
        "context": {
            "user_id": session.user_id,
            "username": session.username,
            "is_admin": "true" if session.is_admin else "false",
            "session_id": session.token_hash,
        },
    }
