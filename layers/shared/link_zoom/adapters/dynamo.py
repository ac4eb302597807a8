"""Binds PynamoDB models to the tables named in the configuration, with short timeouts and the shared client."""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from link_zoom.adapters.aws import client
from link_zoom.config import DYNAMODB_CONNECT_TIMEOUT_S, DYNAMODB_READ_TIMEOUT_S, get_settings

M = TypeVar("M", bound=type)

_bound: set[type] = set()
_lock = threading.Lock()


def bind(model: M, table_name: str) -> M:
    """Point a model class at its table once per process (names come from config, not import time)."""
    if model in _bound and model.Meta.table_name == table_name:  # type: ignore[attr-defined]
        return model
    with _lock:
        if model not in _bound or model.Meta.table_name != table_name:  # type: ignore[attr-defined]
            _configure(model, table_name)
            _share_client(model)
            _bound.add(model)
    return model


def forget_bindings() -> None:
    """Unbinds every model (a fresh container; tests that switch tables or endpoints)."""
    with _lock:
        for model in _bound:
            model._connection = None  # type: ignore[attr-defined]
        _bound.clear()


def _configure(model: type, table_name: str) -> None:
    settings = get_settings()
    meta: Any = model.Meta  # type: ignore[attr-defined]
    meta.table_name = table_name
    meta.region = settings.region
    meta.host = settings.aws_endpoint_url
    # pynamodb's defaults (15 s / 30 s) exceed API Gateway's 29 s; the shared client has the same settings.
    meta.connect_timeout_seconds = DYNAMODB_CONNECT_TIMEOUT_S
    meta.read_timeout_seconds = DYNAMODB_READ_TIMEOUT_S
    meta.max_retry_attempts = 2
    meta.max_pool_connections = 32
    model._connection = None  # type: ignore[attr-defined]


def _share_client(model: Any) -> None:
    """pynamodb builds a botocore session and client per model, lazily, unlocked, in whichever thread calls
    first (its sessions are even per thread): on a fresh container each worker thread built its own. Its
    Connection uses `_client` as long as that has credentials; hand it the container's one DynamoDB client."""
    connection = model._get_connection().connection
    connection._client = client("dynamodb")
