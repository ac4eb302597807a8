"""Zoom's OAuth endpoints (code exchange with PKCE, refresh, revoke) and `GET /users/me`.

Zoom's answers become domain errors here: `invalid_grant` (any 4xx) is ZoomGrantRevoked, a 401 on the
API is ZoomTokenRejected, a 429 from the token endpoint is ZoomRateLimited (with Zoom's Retry-After),
everything else that is not a success (5xx, timeouts, other OAuth errors, garbage) is ZoomUnavailable.
No token, code or verifier ever reaches a log line or a message.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from link_zoom.adapters import flag
from link_zoom.config import ZOOM_CONNECT_TIMEOUT_S, ZOOM_READ_TIMEOUT_S, get_settings
from link_zoom.domain.connection import ZoomTokens, ZoomUser
from link_zoom.errors import ZoomGrantRevoked, ZoomRateLimited, ZoomTokenRejected, ZoomUnavailable
from link_zoom.observability import count, logger

if TYPE_CHECKING:
    import requests
    from requests.adapters import HTTPAdapter
    from requests_oauthlib import OAuth2Session

TIMEOUT = (ZOOM_CONNECT_TIMEOUT_S, ZOOM_READ_TIMEOUT_S)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
RATE_LIMIT_RETRY_AFTER_S = 5  # what a token endpoint 429 without a usable Retry-After tells the client

# requests-oauthlib and oauthlib log token bodies at DEBUG; a DEBUG root logger must never show them.
for _name in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_name).setLevel(logging.WARNING)


_adapter: HTTPAdapter | None = None
_adapter_lock = threading.Lock()


def _shared_adapter() -> HTTPAdapter:
    """One connection pool per process, shared by the short-lived sessions (the keeper refreshes in threads)."""
    global _adapter
    with _adapter_lock:
        if _adapter is None:
            from requests.adapters import HTTPAdapter

            _adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
        return _adapter


def warm() -> None:
    """Builds the shared connection pool (and imports requests) now, before work fans out to threads."""
    _shared_adapter()


def _session() -> requests.Session:
    """A plain session on the shared pool. Never closed: closing a session closes its adapters' pools."""
    import requests

    session = requests.Session()
    _mount(session)
    return session


def _mount(session: requests.Session) -> None:
    adapter = _shared_adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)


def _client_secret() -> str:
    settings = get_settings()
    return flag.configured_secret(
        settings.zoom_client_secret, settings.zoom_client_secret_parameter, "ZOOM_CLIENT_SECRET"
    )


def _oauth_url(path: str) -> str:
    url = f"{get_settings().zoom_oauth_base_url}/oauth/{path}"
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        # oauthlib refuses plain HTTP; the local emulator on loopback is the one place it is allowed.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    return url


def _oauth_session(redirect_uri: str | None = None) -> OAuth2Session:
    from requests_oauthlib import OAuth2Session

    session = OAuth2Session(get_settings().zoom_client_id, redirect_uri=redirect_uri)
    _mount(session)
    session.register_compliance_hook("access_token_response", _check_token_response)
    session.register_compliance_hook("refresh_token_response", _check_token_response)
    return session


def _check_token_response(response: requests.Response) -> requests.Response:
    """Lets oauthlib parse 2xx and 4xx bodies (it raises the OAuth error they name); a 429 is Zoom limiting us
    (ZoomRateLimited, nothing spent: the refresh token is still good); the rest is Zoom failing."""
    if response.status_code == 429:
        _failure("token_http", 429)  # counted and logged like any failed call
        raise ZoomRateLimited(_retry_after_seconds(response.headers.get("Retry-After")))
    if response.status_code >= 500 or response.status_code < 200:
        raise _failure("token_http", response.status_code)
    return response


def _retry_after_seconds(value: str | None) -> int:
    """Zoom's Retry-After (delta-seconds or an HTTP date) in whole seconds, else a short default."""
    if value:
        try:
            return max(1, math.ceil(float(value)))
        except (ValueError, OverflowError):
            pass
        from email.utils import parsedate_to_datetime  # an HTTP date: rare, and costly to import

        try:
            return max(1, math.ceil(parsedate_to_datetime(value).timestamp() - time.time()))
        except (TypeError, ValueError, OverflowError):
            pass
    return RATE_LIMIT_RETRY_AFTER_S


def _failure(kind: str, status: int | None = None) -> ZoomUnavailable:
    """Counts and logs (kind and status only: Zoom's bodies may echo what we sent) a failed Zoom call."""
    count("ZoomErrors")
    logger.warning("Zoom call failed", extra={"zoom_failure": kind, "zoom_status": status})
    return ZoomUnavailable()


def _tokens(token: dict[str, Any]) -> ZoomTokens:
    access, refresh = token.get("access_token"), token.get("refresh_token")
    if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
        raise _failure("token_shape")
    expires_in = token.get("expires_in")
    return ZoomTokens(access, refresh, expires_in if isinstance(expires_in, int) and expires_in > 0 else 3599)


def _token_request(call: Callable[[], dict[str, Any]]) -> ZoomTokens:
    """Runs a token endpoint call and maps every failure once, for the code exchange and the refresh alike."""
    import requests
    from oauthlib.oauth2 import InvalidGrantError, OAuth2Error

    try:
        return _tokens(call())
    except InvalidGrantError as exc:
        raise ZoomGrantRevoked() from exc
    except OAuth2Error as exc:
        # invalid_client, invalid_request, a body without a token: our configuration or Zoom, not the user.
        raise _failure(f"oauth_{exc.error}", exc.status_code) from exc
    except requests.RequestException as exc:
        raise _failure(type(exc).__name__) from exc
    except (ValueError, TypeError) as exc:  # a JSON body oauthlib cannot read as a token (a list, ...)
        raise _failure("token_body") from exc


def exchange_code(code: str, redirect_uri: str, code_verifier: str) -> ZoomTokens:
    """Authorization code + PKCE verifier for tokens (HTTP Basic client authentication, as Zoom requires)."""
    from requests.auth import HTTPBasicAuth

    session = _oauth_session(redirect_uri)
    auth = HTTPBasicAuth(get_settings().zoom_client_id, _client_secret())
    return _token_request(
        lambda: session.fetch_token(
            _oauth_url("token"), code=code, code_verifier=code_verifier, auth=auth, timeout=TIMEOUT
        )
    )


def refresh(refresh_token: str) -> ZoomTokens:
    """A new access token and a new refresh token (Zoom rotates: the one given dies here)."""
    from requests.auth import HTTPBasicAuth

    session = _oauth_session()
    auth = HTTPBasicAuth(get_settings().zoom_client_id, _client_secret())
    return _token_request(
        lambda: session.refresh_token(_oauth_url("token"), refresh_token=refresh_token, auth=auth, timeout=TIMEOUT)
    )


def revoke(token: str) -> None:
    import requests

    try:
        response = _session().post(
            _oauth_url("revoke"),
            data={"token": token},
            auth=(get_settings().zoom_client_id, _client_secret()),
            timeout=TIMEOUT,
        )
    except requests.RequestException as exc:
        raise _failure(type(exc).__name__) from exc
    if response.status_code != 200:
        raise _failure("revoke_http", response.status_code)


def current_user(access_token: str) -> ZoomUser:
    import requests

    try:
        response = _session().get(
            f"{get_settings().zoom_api_base_url}/users/me",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=TIMEOUT,
        )
    except requests.RequestException as exc:
        raise _failure(type(exc).__name__) from exc
    if response.status_code == 401:
        raise ZoomTokenRejected()
    if response.status_code != 200:
        raise _failure("users_me_http", response.status_code)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise _failure("users_me_body", response.status_code)
    account_id = body.get("account_id")
    return ZoomUser(body["id"], account_id if isinstance(account_id, str) else None)
