"""Zoom's event notifications: the v0 signature over the raw body, the URL validation challenge, and the
events the service acts on (`app_deauthorized`, `meeting.deleted`); any other event is acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from link_zoom.errors import BadRequest, InvalidSignature
from link_zoom.observability import logger

SIGNATURE_WINDOW_SECONDS = 300  # the contract's 5 minutes, either way (clocks drift both ways)
SIGNATURE_HEADER = "x-zm-signature"
TIMESTAMP_HEADER = "x-zm-request-timestamp"


@dataclass(frozen=True)
class Webhook:
    """The notifications of the service's Zoom app: verified with `secret()`, acted on through the ports."""

    secret: Callable[[], str]
    zoom_client_id: str
    # (Zoom user id, deauthorization time) -> how many connections consented before that time were removed
    forget_zoom_user: Callable[[str, datetime], int]
    meeting_deleted: Callable[[str], int]  # meeting id -> how many calendar events were linked to it

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """InvalidSignature (401) unless the raw body carries a fresh, valid signature: before any parsing."""
        verify_signature(self.secret(), headers, raw_body)

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One verified notification, parsed; returns the 200 answer's body."""
        name = event.get("event")
        payload = event.get("payload")
        if not isinstance(payload, dict):
            payload = {}
        if name == "endpoint.url_validation":
            plain_token = payload.get("plainToken")
            if not isinstance(plain_token, str) or not plain_token:
                raise BadRequest("endpoint.url_validation needs payload.plainToken.")
            return {"plainToken": plain_token, "encryptedToken": _hex_hmac(self.secret(), plain_token.encode())}
        if name == "app_deauthorized":
            return self._app_deauthorized(payload)
        if name == "meeting.deleted":
            return self._meeting_deleted(payload)
        logger.info("Zoom event ignored", extra={"zoom_event": str(name)[:64]})
        return {"status": "ignored"}

    def _app_deauthorized(self, payload: dict[str, Any]) -> dict[str, Any]:
        zoom_user_id = payload.get("user_id")
        if not isinstance(zoom_user_id, str) or not zoom_user_id:
            raise BadRequest("app_deauthorized needs payload.user_id.")
        client_id = payload.get("client_id")
        if client_id is not None and client_id != self.zoom_client_id:
            logger.info("app_deauthorized of another Zoom app ignored")
            return {"status": "ignored"}
        # A late or replayed notification never removes a consent given after it.
        removed = self.forget_zoom_user(zoom_user_id, _deauthorization_time(payload))
        logger.info("Zoom app deauthorized", extra={"connections_removed": removed})
        return {"status": "handled"}

    def _meeting_deleted(self, payload: dict[str, Any]) -> dict[str, Any]:
        meeting = payload.get("object")
        meeting_id = meeting.get("id") if isinstance(meeting, dict) else None
        # Zoom's ids are numbers in JSON; the service keeps them as strings.
        if isinstance(meeting_id, bool) or not isinstance(meeting_id, int | str) or not str(meeting_id).isdigit():
            raise BadRequest("meeting.deleted needs payload.object.id.")
        occurrences = meeting.get("occurrences") if isinstance(meeting, dict) else None
        if isinstance(occurrences, list) and occurrences:
            # One occurrence of a recurring meeting went: the series and its join URL stay (contract 3a).
            logger.info("Zoom occurrence deleted; the series stays", extra={"meeting_id": str(meeting_id)})
            return {"status": "ignored"}
        self.meeting_deleted(str(meeting_id))
        return {"status": "handled"}


def _deauthorization_time(payload: Mapping[str, Any]) -> datetime:
    value = payload.get("deauthorization_time")
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise BadRequest("app_deauthorized needs payload.deauthorization_time as an ISO 8601 time with its offset.")
    return when


def verify_signature(secret: str, headers: Mapping[str, str], raw_body: bytes, now: float | None = None) -> None:
    """`x-zm-signature` must be `v0=` + hex HMAC-SHA256(secret, "v0:{timestamp}:{raw body}"), timestamp fresh."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER, "")
    signature = lowered.get(SIGNATURE_HEADER, "")
    if not (timestamp.isascii() and timestamp.isdigit()) or not signature:
        raise InvalidSignature()
    if abs((time.time() if now is None else now) - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        raise InvalidSignature()
    expected = "v0=" + _hex_hmac(secret, b"v0:" + timestamp.encode() + b":" + raw_body)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise InvalidSignature()


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
