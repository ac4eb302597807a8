"""boto3 clients with timeouts below API Gateway's, created once per container and only when used.

botocore builds a client by loading and parsing the service's JSON model, and neither boto3's default
session nor `functools.cache` stops several threads that miss together from each building one: on a fresh
container every worker thread of a fan-out did (issue 14). Here one lock makes the first caller build the
client and the others wait for it; every thread then shares that client (botocore clients are thread-safe,
sessions are not). Work that fans out builds them first: `composition.warm_for_fan_out()`.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from link_zoom.config import DYNAMODB_CONNECT_TIMEOUT_S, DYNAMODB_READ_TIMEOUT_S, get_settings

# botocore logs every response body at DEBUG: KMS's data keys in plaintext (which open the sealed Zoom tokens),
# table items. A DEBUG root logger (AWS_LAMBDA_LOG_LEVEL=DEBUG, a debugging session) must never show them.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)

# The stream handler works on up to 16 events at once from one container; the pool leaves room for that.
MAX_POOL_CONNECTIONS = 32

# (service, region, endpoint, access key id) -> client. The key names where the credentials come from (the
# key id, never the secret), so a process whose functions run with credentials of their own gets a client each.
_clients: dict[tuple[str, str, str | None, str | None], Any] = {}
_sessions: dict[str | None, Any] = {}
_lock = threading.Lock()


def _key(service: str) -> tuple[str, str, str | None, str | None]:
    settings = get_settings()
    return (service, settings.region, settings.aws_endpoint_url, os.environ.get("AWS_ACCESS_KEY_ID"))


def client(service: str) -> Any:
    """The container's one client for `service` (built by the first caller, under the lock)."""
    key = _key(service)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = _create(key)
        return found


def warm_clients(*services: str) -> None:
    """Builds these services' clients now (before work fans out to threads), if not built yet."""
    for service in services:
        client(service)


def forget_clients() -> None:
    """Drops every client and session, as a fresh container starts without them (tests, benchmarks)."""
    with _lock:
        _clients.clear()
        _sessions.clear()


def _create(key: tuple[str, str, str | None, str | None]) -> Any:
    from botocore.config import Config

    service, region, _, access_key_id = key
    config = Config(
        connect_timeout=DYNAMODB_CONNECT_TIMEOUT_S,
        read_timeout=DYNAMODB_READ_TIMEOUT_S,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    # AWS_ENDPOINT_URL (the local moto server) is honoured by botocore itself.
    return _session(access_key_id).client(service, region_name=region, config=config)


def _session(access_key_id: str | None) -> Any:
    """One boto3 session per credentials source (called under the lock): its loader parses each model once."""
    session = _sessions.get(access_key_id)
    if session is None:
        import boto3

        session = _sessions[access_key_id] = boto3.Session()
    return session
