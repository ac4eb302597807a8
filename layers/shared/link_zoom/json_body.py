"""Strict JSON bodies (contract section 1): an object of reasonable size and depth, or BadRequest."""

from __future__ import annotations

import json
from typing import Any

from link_zoom.errors import BadRequest

MAX_JSON_DEPTH = 8
MAX_BODY_BYTES = 64 * 1024


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max([level, *(_depth(v, level + 1) for v in value.values())])
    if isinstance(value, list):
        return max([level, *(_depth(v, level + 1) for v in value)])
    return level


def parse_json_object(body: str | bytes | None, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest for anything else (contract section 1)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("The request body is not valid UTF-8.") from exc
    if body is None or body == "":
        if required:
            raise BadRequest("A JSON object body is required.")
        return {}
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise BadRequest("The request body is too large.")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest("The request body is not valid JSON.") from exc
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object.")
    if _depth(value) > MAX_JSON_DEPTH:
        raise BadRequest("The request body is nested too deeply.")
    return value
