"""boto3 clients with timeouts below API Gateway's, created once per warm process and only when used."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from link_zoom.config import DYNAMODB_CONNECT_TIMEOUT_S, DYNAMODB_READ_TIMEOUT_S, get_settings

# botocore logs every response body at DEBUG: KMS's data keys in plaintext (which open the sealed Zoom tokens),
# table items. A DEBUG root logger (AWS_LAMBDA_LOG_LEVEL=DEBUG, a debugging session) must never show them.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=DYNAMODB_CONNECT_TIMEOUT_S,
        read_timeout=DYNAMODB_READ_TIMEOUT_S,
        retries={"max_attempts": 3, "mode": "standard"},
        # The stream handler works on up to 16 events at once from one warm process.
        max_pool_connections=32,
    )
    # AWS_ENDPOINT_URL (the local moto server) is honoured by botocore itself.
    return boto3.client(service, region_name=get_settings().region, config=config)  # type: ignore[call-overload]
