"""Zoom's v0 webhook signature: HMAC-SHA256 over "v0:{timestamp}:{raw body}", 5 minutes either way."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from link_zoom.domain.webhook import verify_signature
from link_zoom.errors import InvalidSignature

SECRET = "webhook-secret"
NOW = 1_800_000_000
BODY = b'{"event":"meeting.deleted","payload":{}}'


def _signed(timestamp: int, body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-zm-request-timestamp": str(timestamp), "x-zm-signature": f"v0={digest}"}


@pytest.mark.parametrize("skew", [0, 300, -300, 299, -1])
def test_a_fresh_correct_signature_passes(skew: int) -> None:
    verify_signature(SECRET, _signed(NOW + skew), BODY, now=NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in _signed(NOW).items()}

    verify_signature(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        _signed(NOW + 301),
        _signed(NOW - 301),
        _signed(NOW, secret="other"),
        _signed(NOW, body=BODY + b" "),
        {**_signed(NOW), "x-zm-signature": _signed(NOW)["x-zm-signature"].upper()},
        {**_signed(NOW), "x-zm-signature": _signed(NOW)["x-zm-signature"][3:]},
        {**_signed(NOW), "x-zm-signature": "v0=é"},
        {**_signed(NOW), "x-zm-request-timestamp": f"{NOW}.0"},
        {**_signed(NOW), "x-zm-request-timestamp": "１８"},
        {"x-zm-request-timestamp": str(NOW)},
        {},
    ],
    ids=[
        "future",
        "stale",
        "other secret",
        "other body",
        "upper case hex",
        "no v0=",
        "non-ascii",
        "fraction",
        "fullwidth digits",
        "no signature",
        "nothing",
    ],
)
def test_anything_else_is_an_invalid_signature(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, headers, BODY, now=NOW)
