"""The HTML the API serves: the My Account page and the Zoom callback's message pages, each with a Content
Security Policy that allows exactly its own inline script and style (by hash) and nothing else."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from html import escape

from aws_lambda_powertools.event_handler import Response

HTML = "text/html; charset=utf-8"

_MESSAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f6fa;color:#1d2330;margin:0}"
    "main{max-width:30rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:12px;"
    "box-shadow:0 2px 12px #0002}h1{font-size:1.4rem;margin-top:0}"
)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


# A message page runs no script and loads nothing; only its own inline style (by hash) is allowed.
_MESSAGE_CSP = (
    f"default-src 'none'; style-src {_sha256(_MESSAGE_STYLE)}; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def message_page(status: int, title: str, message: str) -> Response:
    """A small self-contained page with a title and one sentence (the Zoom callback's answers)."""
    body = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_MESSAGE_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1><p>{escape(message)}</p></main></body></html>\n"
    )
    return Response(
        status_code=status,
        content_type=HTML,
        body=body,
        headers={
            "Content-Security-Policy": _MESSAGE_CSP,
            "Cache-Control": "no-store",
            # The callback URL carried a code: no referrer may repeat it.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def account_page() -> Response:
    """GET /account: the page packaged in the layer (`web/account.html`); its script calls the API itself."""
    html, policy = _account_page()
    return Response(
        status_code=200,
        content_type=HTML,
        body=html,
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )


@lru_cache(maxsize=1)
def _account_page() -> tuple[str, str]:
    """The page and a policy that allows exactly its own inline script and style."""
    from importlib import resources  # the account function's alone

    html = (resources.files("link_zoom") / "web" / "account.html").read_text("utf-8")

    def hashes(tag: str) -> str:
        return " ".join(_sha256(block) for block in re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL))

    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {hashes('script')}",
            f"style-src {hashes('style')}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html, policy
