"""Binds PynamoDB models to the tables named in the configuration, with short timeouts."""

from __future__ import annotations

from typing import Any, TypeVar

from link_zoom.config import DYNAMODB_CONNECT_TIMEOUT_S, DYNAMODB_READ_TIMEOUT_S, get_settings

M = TypeVar("M", bound=type)

_bound: set[type] = set()


def bind(model: M, table_name: str) -> M:
    """Point a model class at its table once per process (names come from config, not import time)."""
    if model in _bound and model.Meta.table_name == table_name:  # type: ignore[attr-defined]
        return model
    settings = get_settings()
    meta: Any = model.Meta  # type: ignore[attr-defined]
    meta.table_name = table_name
    meta.region = settings.region
    meta.host = settings.aws_endpoint_url
    # pynamodb's defaults (15 s / 30 s) exceed API Gateway's 29 s.
    meta.connect_timeout_seconds = DYNAMODB_CONNECT_TIMEOUT_S
    meta.read_timeout_seconds = DYNAMODB_READ_TIMEOUT_S
    meta.max_retry_attempts = 2
    meta.max_pool_connections = 32  # the stream handler's concurrent events share one client
    model._connection = None  # type: ignore[attr-defined]
    _bound.add(model)
    return model
