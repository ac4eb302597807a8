"""The emulator's HTTP face: Zoom's OAuth endpoints, the /v2 REST API it needs, and /_emulator controls."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Flask, Response, g, request
from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.http import HTTP_STATUS_CODES

from . import pages, webhooks
from .errors import ApiError, OAuthError, invalid_access_token, invalid_body, invalid_field, meeting_not_found
from .meetings import LIST_TYPES, parse_meeting_body
from .recurrence import OCCURRENCE_FIELDS
from .store import EmulatorConfig, Fault, Store, User

CONTROL_PREFIX = "/_emulator"
AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method")
CHALLENGE_RE = re.compile(r"[A-Za-z0-9_-]{43,128}")
FAULT_FIELDS: dict[str, tuple[type, ...]] = {
    "method": (str,),
    "path": (str,),
    "status": (int, type(None)),
    "retry_after": (int, type(None)),
    "body": (str, type(None)),
    "delay_ms": (int,),
    "times": (int,),
    "headers": (dict,),
    "after_handling": (bool,),
}
LIST_PAGE_SIZE_DEFAULT = 30
LIST_PAGE_SIZE_MAX = 300


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=dict(headers or {}), mimetype="application/json")


def _html(page: str, status: int = 200) -> Response:
    return Response(page, status=status, mimetype="text/html")


def _redirect(location: str) -> Response:
    return Response(status=302, headers={"Location": location})


def create_app(store: Store) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    for register in (
        _register_hooks,
        _register_error_handlers,
        _register_authorize,
        _register_token,
        _register_users_api,
        _register_meetings_api,
        _register_fault_controls,
        _register_limit_controls,
        _register_state_controls,
        _register_meeting_controls,
        _register_user_controls,
        _register_webhook_controls,
    ):
        register(app, store)
    return app


# --- latency, faults, the call log and error bodies


def _register_hooks(app: Flask, store: Store) -> None:
    @app.before_request
    def delay_and_inject_faults() -> Response | None:
        path = request.path
        if path.startswith(CONTROL_PREFIX):
            return None
        g.call_ts = time.time()
        if (path.startswith("/v2/") or path == "/oauth/token") and store.latency_ms:
            time.sleep(store.latency_ms / 1000)
        fault = store.take_fault(request.method, path)
        if fault is None:
            return None
        time.sleep(fault.delay_ms / 1000)
        if fault.status is None:
            return None
        if fault.after_handling:
            g.late_fault = fault  # handled for real first; log_call swaps the answer
            return None
        return _fault_response(fault, path)

    @app.after_request
    def log_call(response: Response) -> Response:
        if not request.path.startswith(CONTROL_PREFIX):
            late: Fault | None = g.pop("late_fault", None)
            if late is not None:
                response = _fault_response(late, request.path)
            store.record_call(request.method, request.path, response.status_code, g.get("call_ts", time.time()))
        return response


def _register_error_handlers(app: Flask, store: Store) -> None:
    @app.errorhandler(OAuthError)
    def oauth_error(error: OAuthError) -> Response:
        return _json(error.body(), error.status, {"Cache-Control": "no-store"})

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _json(error.body(), error.status, error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | HTTPException:
        status = error.code or 500
        if request.path.startswith(CONTROL_PREFIX):
            return _json({"error": error.description}, status)
        if request.path.startswith("/v2/"):
            return _json({"code": status, "message": error.name}, status)
        return error


def _fault_response(fault: Fault, path: str) -> Response:
    assert fault.status is not None
    body = fault.body if fault.body is not None else json.dumps(_default_fault_body(fault.status, path))
    response = Response(body, status=fault.status, mimetype="application/json")
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    response.headers.update(fault.headers)
    return response


def _default_fault_body(status: int, path: str) -> dict[str, Any]:
    """What Zoom itself would answer with that status on that path."""
    if path.startswith("/oauth"):
        if status == 401:
            return {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
        if status == 400:
            return {"reason": "Invalid Token!", "error": "invalid_grant"}
        return {"reason": HTTP_STATUS_CODES.get(status, "Error"), "error": "server_error"}
    if status == 401:
        return invalid_access_token().body()
    if status == 404:
        return meeting_not_found(path.rstrip("/").rsplit("/", 1)[-1]).body()
    if status == 429:
        return {"code": 429, "message": "You have exceeded the rate limit for this API. Try again later."}
    return {"code": status, "message": HTTP_STATUS_CODES.get(status, "Error")}


# --- OAuth: authorize (consent page), token, revoke


class _InvalidAuthorizeRequest(Exception):
    pass


def _redirect_allowed(uri: str, config: EmulatorConfig) -> bool:
    if config.redirect_uris:
        return uri in config.redirect_uris
    try:
        parts = urlsplit(uri)
        return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and not parts.fragment
    except ValueError:
        return False


def _authorize_params(source: Mapping[str, str], config: EmulatorConfig) -> dict[str, str]:
    """The authorize parameters, checked as Zoom checks them; never trusts the hidden fields of the form either."""
    params = {name: source[name] for name in AUTHORIZE_PARAMS if source.get(name)}
    if params.get("client_id") != config.client_id:
        raise _InvalidAuthorizeRequest(f"Invalid client_id: {params.get('client_id', '')}")
    if "redirect_uri" not in params:
        raise _InvalidAuthorizeRequest("Missing redirect_uri.")
    if not _redirect_allowed(params["redirect_uri"], config):
        raise _InvalidAuthorizeRequest(f"Invalid redirect: {params['redirect_uri']}")
    if params.get("response_type") != "code":
        raise _InvalidAuthorizeRequest("Unsupported response_type: only 'code' is allowed.")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None and method is not None:
        raise _InvalidAuthorizeRequest("code_challenge_method without code_challenge.")
    if challenge is not None:
        if method != "S256":
            raise _InvalidAuthorizeRequest("Invalid code_challenge_method: only S256 is supported.")
        if not CHALLENGE_RE.fullmatch(challenge):
            raise _InvalidAuthorizeRequest("Invalid code_challenge.")
    return params


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


def _client_id(config: EmulatorConfig) -> str:
    """The client authenticated by HTTP Basic, the only client authentication Zoom takes."""
    auth = request.authorization
    if (
        auth is None
        or auth.type != "basic"
        or auth.username != config.client_id
        or auth.password != config.client_secret
    ):
        raise OAuthError(401, "invalid_client", "Invalid client_id or client_secret")
    return config.client_id


def _form() -> Mapping[str, str]:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise OAuthError(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
    return request.form


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError(400, "invalid_request", f"Missing parameter: {name}")
    return value


def _register_authorize(app: Flask, store: Store) -> None:
    config = store.config

    @app.get("/oauth/authorize")
    def authorize_page() -> Response:
        try:
            params = _authorize_params(request.args, config)
        except _InvalidAuthorizeRequest as exc:
            return _html(pages.error_page(str(exc)), 400)
        return _html(pages.consent_page(params))

    @app.post("/oauth/authorize")
    def authorize_decision() -> Response:
        try:
            params = _authorize_params(request.form, config)
        except _InvalidAuthorizeRequest as exc:
            return _html(pages.error_page(str(exc)), 400)
        state = {"state": params["state"]} if "state" in params else {}
        decision = request.form.get("decision")
        if decision == "deny":
            return _redirect(_with_query(params["redirect_uri"], {"error": "access_denied", **state}))
        if decision != "allow":
            return _html(pages.error_page("Choose Allow or Decline."), 400)
        email = request.form.get("email", "").strip()
        if not email or not request.form.get("password"):
            return _html(pages.consent_page(params, error="Enter your email and password."))
        user = store.sign_in(email)
        code = store.issue_code(user, config.client_id, params["redirect_uri"], params.get("code_challenge"))
        return _redirect(_with_query(params["redirect_uri"], {"code": code, **state}))


def _register_token(app: Flask, store: Store) -> None:
    config = store.config

    @app.post("/oauth/token")
    def token() -> Response:
        client_id = _client_id(config)
        form = _form()
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            tokens = store.exchange_code(
                client_id,
                _required(form, "code"),
                _required(form, "redirect_uri"),
                form.get("code_verifier"),
            )
        elif grant_type == "refresh_token":
            tokens = store.refresh(client_id, _required(form, "refresh_token"))
        else:
            raise OAuthError(400, "unsupported_grant_type", "Unsupported grant type")
        return _json(tokens, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @app.post("/oauth/revoke")
    def revoke() -> Response:
        client_id = _client_id(config)
        store.revoke(client_id, _required(_form(), "token"))
        return _json({"status": "success"})


# --- the REST API (/v2)


def _json_body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise invalid_body()
    try:
        body = json.loads(request.get_data())
    except ValueError:  # also UnicodeDecodeError
        raise invalid_body() from None
    if not isinstance(body, dict):
        raise invalid_body()
    return body


def _current_user(store: Store, user_ref: str = "me") -> User:
    """The user the request's bearer token belongs to, who must be the user the path names."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise invalid_access_token()
    user = store.authenticate(token.strip())
    if user_ref not in ("me", user.id, user.email):
        raise ApiError(404, 1001, f"User does not exist: {user_ref}.")
    return user


def _register_users_api(app: Flask, store: Store) -> None:
    def current_user(user_ref: str = "me") -> User:
        return _current_user(store, user_ref)

    @app.get("/v2/users/<user_ref>")
    def get_user(user_ref: str) -> Response:
        return _json(current_user(user_ref).to_api())

    @app.post("/v2/users/<user_ref>/meetings")
    def create_meeting(user_ref: str) -> Response:
        user = current_user(user_ref)
        store.count_meeting_request(user)
        meeting = store.create_meeting(user, parse_meeting_body(_json_body()))
        return _json(meeting, 201)

    @app.get("/v2/users/<user_ref>/meetings")
    def list_user_meetings(user_ref: str) -> Response:
        user = current_user(user_ref)
        kind = request.args.get("type", "scheduled")
        if kind not in LIST_TYPES:
            raise invalid_field("type", f"type must be one of {', '.join(sorted(LIST_TYPES))}.")
        page_size = _page_size(request.args.get("page_size", str(LIST_PAGE_SIZE_DEFAULT)))
        offset = _page_offset(request.args.get("next_page_token", ""), user, kind)
        meetings, total = store.list_meetings(user, kind, offset, page_size)
        following = offset + page_size
        return _json(
            {
                "page_size": page_size,
                "total_records": total,
                "next_page_token": _page_token(user, kind, following) if following < total else "",
                "meetings": meetings,
            }
        )


def _register_meetings_api(app: Flask, store: Store) -> None:
    def current_user() -> User:
        return _current_user(store)

    @app.get("/v2/meetings/<meeting_id>")
    def get_meeting(meeting_id: str) -> Response:
        return _json(store.get_meeting(current_user(), meeting_id))

    @app.patch("/v2/meetings/<meeting_id>")
    def update_meeting(meeting_id: str) -> Response:
        user = current_user()
        store.count_meeting_request(user)
        body = _json_body()
        occurrence_id = request.args.get("occurrence_id")
        if occurrence_id is None:
            store.update_meeting(user, meeting_id, parse_meeting_body(body))
        else:
            store.update_occurrence(user, meeting_id, occurrence_id, parse_meeting_body(_occurrence_body(body)))
        return Response(status=204)

    @app.delete("/v2/meetings/<meeting_id>")
    def delete_meeting(meeting_id: str) -> Response:
        user = current_user()
        occurrence_id = request.args.get("occurrence_id")
        if occurrence_id is None:
            store.delete_meeting(user, meeting_id)
        else:
            store.count_meeting_request(user)  # an occurrence delete is an update of the series
            store.delete_occurrence(user, meeting_id, occurrence_id)
        return Response(status=204)

    @app.get("/j/<int:meeting_id>")
    def join(meeting_id: int) -> Response:
        for meeting in store.meetings():
            if meeting["id"] == meeting_id:
                return _html(pages.join_page(meeting_id, meeting["topic"]))
        return _html(pages.error_page("This meeting does not exist."), 404)


def _occurrence_body(body: dict[str, Any]) -> dict[str, Any]:
    """One occurrence can only get a new start, duration, agenda or settings (Zoom's code 300 otherwise)."""
    refused = sorted(set(body) - OCCURRENCE_FIELDS)
    if refused:
        raise invalid_field(
            refused[0][:40], "Only start_time, duration, agenda and settings can change for one occurrence."
        )
    return body


def _page_size(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= LIST_PAGE_SIZE_MAX:
        raise invalid_field("page_size", f"page_size must be a whole number from 1 to {LIST_PAGE_SIZE_MAX}.")
    return int(raw)


def _page_token(user: User, kind: str, offset: int) -> str:
    raw = json.dumps({"u": user.id, "t": kind, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_offset(token: str, user: User, kind: str) -> int:
    """Where a next_page_token continues; it is only good for the same user and list type, as at Zoom."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = data["o"] if data["u"] == user.id and data["t"] == kind else None
    except (ValueError, TypeError, KeyError):
        offset = None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise invalid_field("next_page_token", "Invalid next_page_token.")
    return offset


# --- /_emulator: controls for tests and the local stack (not part of Zoom)


def _control_body(*required: str) -> dict[str, Any]:
    body = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    missing = [name for name in required if name not in body]
    if missing:
        raise BadRequest(f"Missing fields: {', '.join(missing)}.")
    return body


def _fault_fields(body: dict[str, Any]) -> dict[str, Any]:
    for name, value in body.items():
        allowed = FAULT_FIELDS.get(name)
        if allowed is None:
            raise BadRequest(f"Unknown field: {name}.")
        if isinstance(value, bool) != (bool in allowed) or not isinstance(value, allowed):
            raise BadRequest(f"Wrong type for {name}.")
    headers = body.get("headers", {})
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in headers.items()):
        raise BadRequest("headers must map names to strings.")
    return body


def _optional_url(body: dict[str, Any], name: str) -> str | None:
    url = body.get(name)
    if url is not None and not isinstance(url, str):
        raise BadRequest(f"{name} must be a string.")
    return url


def _register_fault_controls(app: Flask, store: Store) -> None:
    @app.post(f"{CONTROL_PREFIX}/faults")
    def add_fault() -> Response:
        try:
            fault = store.add_fault(**_fault_fields(_control_body()))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return _json(asdict(fault), 201)

    @app.get(f"{CONTROL_PREFIX}/faults")
    def list_faults() -> Response:
        return _json([asdict(fault) for fault in store.faults()])

    @app.delete(f"{CONTROL_PREFIX}/faults")
    def clear_faults() -> Response:
        store.clear_faults()
        return Response(status=204)

    @app.post(f"{CONTROL_PREFIX}/latency")
    def set_latency() -> Response:
        ms = _control_body("ms")["ms"]
        if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
            raise BadRequest("ms must be a whole number of milliseconds, 0 or more.")
        store.set_latency(ms)
        return _json({"ms": ms})


def _register_limit_controls(app: Flask, store: Store) -> None:
    config = store.config

    @app.post(f"{CONTROL_PREFIX}/daily-limit")
    def set_daily_limit() -> Response:
        body = _control_body()
        for name in ("limit", "window_seconds"):
            value = body.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise BadRequest(f"{name} must be a whole number, 1 or more.")
        store.set_daily_limit(body.get("limit"), body.get("window_seconds"))
        return _json({"limit": config.daily_meeting_limit, "window_seconds": config.daily_window_s})


def _register_state_controls(app: Flask, store: Store) -> None:
    @app.get(f"{CONTROL_PREFIX}/calls")
    def list_calls() -> Response:
        return _json(store.calls)

    @app.delete(f"{CONTROL_PREFIX}/calls")
    def clear_calls() -> Response:
        store.clear_calls()
        return Response(status=204)

    @app.post(f"{CONTROL_PREFIX}/clock")
    def advance_clock() -> Response:
        seconds = _control_body("advance_seconds")["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise BadRequest("advance_seconds must be a number, 0 or more.")
        return _json({"offset_seconds": store.advance_clock(seconds)})

    @app.post(f"{CONTROL_PREFIX}/reset")
    def reset() -> Response:
        store.reset()
        return Response(status=204)


def _register_meeting_controls(app: Flask, store: Store) -> None:
    config = store.config

    @app.get(f"{CONTROL_PREFIX}/meetings")
    def list_meetings() -> Response:
        return _json(store.meetings())

    @app.delete(f"{CONTROL_PREFIX}/meetings/<int:meeting_id>")
    def remove_meeting(meeting_id: int) -> Response:
        webhook_url = _optional_url(_control_body(), "webhook_url")
        occurrence_id = request.args.get("occurrence_id")
        meeting = store.remove_meeting(meeting_id, occurrence_id)
        if meeting is None:
            raise NotFound(f"Meeting or occurrence does not exist: {meeting_id}.")
        delivery = None
        if webhook_url:
            host = store.user_by_email(meeting["host_email"])
            payload = webhooks.meeting_deleted_payload(meeting, host.account_id if host else "", occurrence_id)
            delivery = webhooks.send_event(webhook_url, config.webhook_secret, "meeting.deleted", payload)
        return _json({"meeting": meeting, "webhook": delivery.to_json() if delivery else None})


def _register_user_controls(app: Flask, store: Store) -> None:
    config = store.config

    @app.post(f"{CONTROL_PREFIX}/users/<email>/expire-access-tokens")
    def expire_access_tokens(email: str) -> Response:
        if store.user_by_email(email) is None:
            raise NotFound(f"No user {email} has signed in.")
        return _json({"expired": store.expire_access_tokens(email)})

    @app.post(f"{CONTROL_PREFIX}/users/<email>/settings")
    def user_settings(email: str) -> Response:
        body = _control_body("use_pmi")
        if not isinstance(body["use_pmi"], bool):
            raise BadRequest("use_pmi must be a boolean.")
        user = store.user_by_email(email)
        if user is None:
            raise NotFound("No such user has signed in.")
        store.set_use_pmi(user, body["use_pmi"])
        return _json({"use_pmi": body["use_pmi"]})

    @app.post(f"{CONTROL_PREFIX}/users/<email>/deauthorize")
    def deauthorize(email: str) -> Response:
        webhook_url = _optional_url(_control_body(), "webhook_url")
        user = store.user_by_email(email)
        if user is None:
            raise NotFound(f"No user {email} has signed in.")
        revoked = store.deauthorize(email)
        delivery = None
        if webhook_url:
            payload = webhooks.app_deauthorized_payload(user.id, user.account_id, config.client_id)
            delivery = webhooks.send_event(webhook_url, config.webhook_secret, "app_deauthorized", payload)
        return _json({"revoked": revoked, "user": user.to_api(), "webhook": delivery.to_json() if delivery else None})


def _register_webhook_controls(app: Flask, store: Store) -> None:
    config = store.config

    @app.post(f"{CONTROL_PREFIX}/webhooks/send")
    def send_webhook() -> Response:
        url, event, payload, timestamp, secret = _webhook_to_send(_control_body("url", "event"))
        delivery = webhooks.send_event(url, secret or config.webhook_secret, event, payload, timestamp=timestamp)
        return _json(delivery.to_json())

    @app.post(f"{CONTROL_PREFIX}/webhooks/validate")
    def validate_webhook_endpoint() -> Response:
        url = _optional_url(_control_body("url"), "url")
        return _json(webhooks.validate_endpoint(url or "", config.webhook_secret))


def _webhook_to_send(body: dict[str, Any]) -> tuple[str, str, dict[str, Any], int | None, str | None]:
    """url, event, payload, timestamp and secret of a /webhooks/send body, each checked."""
    payload, timestamp, secret = body.get("payload", {}), body.get("timestamp"), body.get("secret")
    if not isinstance(body["url"], str) or not isinstance(body["event"], str) or not isinstance(payload, dict):
        raise BadRequest("url and event must be strings and payload an object.")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)):
        raise BadRequest("timestamp must be epoch seconds.")
    if secret is not None and not isinstance(secret, str):
        raise BadRequest("secret must be a string.")
    return body["url"], body["event"], payload, timestamp, secret
