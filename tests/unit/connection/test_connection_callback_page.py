"""The callback's pages: small, self-contained, and locked down by their headers."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from link_zoom.edge.pages import message_page


def _headers(response: Any) -> dict[str, str]:
    return {name: str(value) for name, value in response.headers.items()}


def test_the_page_allows_nothing_but_its_own_style() -> None:
    response = message_page(400, "Zoom is not connected", "<script>alert(1)</script>")

    headers = _headers(response)
    assert response.status_code == 400
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    style = re.search(r"<style>(.*?)</style>", response.body, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    assert "<script>" not in response.body and "&lt;script&gt;" in response.body
