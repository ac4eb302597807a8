"""The HTML pages a browser sees: Zoom's sign-in and consent page, its error page, and a join page."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f6fa;margin:0}"
    "main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:12px;"
    "box-shadow:0 2px 12px #0002}"
    "h1{color:#0b5cff;font-size:1.5rem}label{display:block;margin-top:1rem;font-weight:600}"
    "input{width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem}"
    ".actions{margin-top:1.5rem;display:flex;gap:1rem}button{padding:.5rem 1.25rem}"
    "[role=alert]{color:#b00020}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>\n"
    )


def consent_page(params: Mapping[str, str], *, error: str | None = None) -> str:
    """Sign-in form plus the consent question; the validated authorize parameters ride along hidden."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in params.items()
    )
    alert = f'<p role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "Sign in to Zoom",
        "<h1>Sign in to Zoom</h1>"
        f"<p>The app <strong>{escape(params.get('client_id', ''))}</strong> would like to create, change and "
        "delete meetings for you and to read your Zoom profile.</p>"
        f'{alert}<form method="post" action="/oauth/authorize">{hidden}'
        '<label for="email">Email</label>'
        '<input id="email" name="email" type="email" autocomplete="username" required>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<div class="actions"><button type="submit" name="decision" value="allow">Allow</button>'
        # Declining needs no sign-in, so it skips the browser's required-field checks.
        '<button type="submit" name="decision" value="deny" formnovalidate>Decline</button></div>'
        "</form>",
    )


def error_page(message: str) -> str:
    return _page("Zoom - Error", f'<h1>Something went wrong</h1><p role="alert">{escape(message)}</p>')


def join_page(meeting_id: int, topic: str) -> str:
    return _page(
        "Join meeting",
        f"<h1>Join meeting {meeting_id}</h1><p>{escape(topic)}</p><p>The Zoom emulator has no video.</p>",
    )
