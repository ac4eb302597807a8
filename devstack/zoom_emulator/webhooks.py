"""Zoom's event notifications: signing, the URL validation challenge, and delivering an event to an endpoint."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

DELIVERY_TIMEOUT = 3.0  # Zoom gives an endpoint 3 seconds to answer
# Webhooks go to loopback endpoints: never through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sign_webhook(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The `x-zm-signature` header: `v0=` + hex HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")."""
    message = b"v0:" + timestamp.encode() + b":" + raw_body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def encrypt_plain_token(secret: str, plain_token: str) -> str:
    """The `encryptedToken` an endpoint must answer to `endpoint.url_validation`."""
    return hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """What the endpoint answered; `status` is None (and `error` set) when it could not be reached."""

    status: int | None
    body: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def send_event(
    url: str,
    secret: str,
    event: str,
    payload: dict[str, Any],
    *,
    timestamp: int | None = None,
) -> Delivery:
    """POSTs a signed event as Zoom does. `timestamp` (epoch seconds) overrides now, to send stale ones."""
    if not url.startswith(("http://", "https://")):  # urllib would also open file: URLs
        return Delivery(None, "", f"not an http(s) URL: {url!r}")
    now = time.time()
    ts = str(int(now) if timestamp is None else timestamp)
    body = json.dumps({"event": event, "payload": payload, "event_ts": int(now * 1000)}, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Zoom Marketplace/1.0a",
        "x-zm-request-timestamp": ts,
        "x-zm-signature": sign_webhook(secret, ts, body),
    }
    try:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        with _opener.open(request, timeout=DELIVERY_TIMEOUT) as response:
            return Delivery(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return Delivery(exc.code, exc.read().decode("utf-8", "replace"))
    except (OSError, ValueError, http.client.HTTPException) as exc:  # unreachable, timed out, bad URL
        return Delivery(None, "", str(exc))


def validate_endpoint(url: str, secret: str) -> dict[str, Any]:
    """Zoom's `endpoint.url_validation` challenge; `valid` when the answer carries the right encryptedToken."""
    plain_token = secrets.token_urlsafe(16)
    delivery = send_event(url, secret, "endpoint.url_validation", {"plainToken": plain_token})
    valid = False
    if delivery.status == 200:
        try:
            answer = json.loads(delivery.body)
        except ValueError:
            answer = None
        valid = isinstance(answer, dict) and answer == {
            "plainToken": plain_token,
            "encryptedToken": encrypt_plain_token(secret, plain_token),
        }
    return {"valid": valid, **delivery.to_json()}


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def app_deauthorized_payload(user_id: str, account_id: str, client_id: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "user_id": user_id,
        "signature": secrets.token_hex(32),
        "deauthorization_time": iso_ms(datetime.now(UTC)),
        "client_id": client_id,
    }


def meeting_deleted_payload(
    meeting: dict[str, Any], account_id: str, occurrence_id: str | None = None
) -> dict[str, Any]:
    """`meeting.deleted`; for one occurrence of a recurring meeting, `object.occurrences` names it."""
    fields = ("uuid", "id", "host_id", "topic", "type", "start_time", "duration", "timezone")
    deleted = {name: meeting[name] for name in fields if name in meeting}
    if occurrence_id is not None:
        deleted["occurrences"] = [
            {"occurrence_id": item["occurrence_id"], "start_time": item["start_time"]}
            for item in meeting.get("occurrences", [])
            if item["occurrence_id"] == occurrence_id
        ]
    return {
        "account_id": account_id,
        "operator": meeting["host_email"],
        "operator_id": meeting["host_id"],
        "object": deleted,
    }
