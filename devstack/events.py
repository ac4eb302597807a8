"""Builds Lambda events the way AWS builds them: API Gateway REST proxy (payload 1.0) and TOKEN authorizer."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_ID = "local"
STAGE = "api"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def method_arn(method: str, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{STAGE}/{method.upper()}{path}"


def token_authorizer_event(authorization: str, method: str, path: str) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": authorization, "methodArn": method_arn(method, path)}


def api_event(
    method: str,
    path_and_query: str,
    *,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    multi_value_headers: dict[str, list[str]] | None = None,
    body: str | bytes | None = None,
    authorizer: dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
    domain_name: str = "127.0.0.1:3000",
) -> dict[str, Any]:
    """A REST API Lambda proxy event (payload 1.0). `authorizer` is the authorizer's context, as strings.

    `multi_value_headers` (a header sent more than once) wins over `headers`; as in API Gateway, the
    single-value `headers` map then holds the last value of each.
    """
    parts = urlsplit(path_and_query)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        multi_query.setdefault(key, []).append(value)
    if multi_value_headers is not None:
        header_map = {k: v[-1] for k, v in multi_value_headers.items() if v}
        multi_headers = {k: list(v) for k, v in multi_value_headers.items() if v}
    else:
        header_map = dict(headers or {})
        multi_headers = {k: [v] for k, v in header_map.items()}
    if not any(k.lower() == "host" for k in header_map):
        header_map["Host"] = domain_name
        multi_headers["Host"] = [domain_name]
    is_base64 = False
    body_text: str | None
    if isinstance(body, bytes):
        try:
            body_text = body.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            body_text, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        body_text = body
    now = time.time()
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".")[0],
        "extendedRequestId": str(uuid.uuid4()),
        "httpMethod": method.upper(),
        "identity": {"sourceIp": source_ip, "userAgent": header_map.get("User-Agent", "")},
        "path": f"/{STAGE}{parts.path}",
        "protocol": "HTTP/1.1",
        "requestId": str(uuid.uuid4()),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000),
        "resourceId": "local",
        "resourcePath": resource or parts.path,
        "stage": STAGE,
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    return {
        "resource": resource or parts.path,
        "path": parts.path,
        "httpMethod": method.upper(),
        "headers": header_map or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": dict(pairs) or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": request_context,
        "body": body_text,
        "isBase64Encoded": is_base64,
    }


def authorizer_context(user_id: str, username: str, is_admin: bool) -> dict[str, Any]:
    """What API Gateway hands the integration from our authorizer: context values arrive as strings."""
    return {
        "principalId": user_id,
        "user_id": user_id,
        "username": username,
        "is_admin": "true" if is_admin else "false",
        "integrationLatency": 0,
    }
