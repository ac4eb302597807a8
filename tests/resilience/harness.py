"""What the resilience tests share: HTTP users of the stack, a registry of every secret handed out (to look for
its bytes in tables and logs), and a failing AWS endpoint (a proxy in front of the moto server that answers
chosen operations with AWS errors)."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import requests

from devstack.zoom_emulator import EmulatorHandle, complete_consent

if TYPE_CHECKING:
    from tests.integration.connection.zoom_flow import Person
    from tests.integration.meetings.stream_tap import CalendarTable

ZOOM_PASSWORD = "any-password"  # the emulator signs in any email with any password
HTTP_TIMEOUT_S = 30.0


# ---------------------------------------------------------------- users of the stack, over HTTP


@dataclass
class ApiUser:
    api_url: str
    token: str
    user_id: str
    username: str
    upn: str
    password: str = ""
    http: requests.Session = field(default_factory=requests.Session, repr=False)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        token: str | None = None,
        timeout: float = HTTP_TIMEOUT_S,
    ) -> requests.Response:
        auth = {"Authorization": f"Bearer {token or self.token}"}
        return self.http.request(
            method, f"{self.api_url}{path}", json=body, timeout=timeout, headers={**auth, **(headers or {})}
        )

    def connected(self) -> bool:
        return bool(self.call("GET", "/v1/features").json()["zoom"]["connected"])

    def connect_zoom(self, secrets: SecretRegistry | None = None) -> str:
        """The consent flow as the user's browser goes through it; returns the callback URL it followed."""
        authorize_url = self.call("GET", "/v1/zoom/authorize").json()["authorize_url"]
        location = complete_consent(authorize_url, self.upn, ZOOM_PASSWORD)
        if secrets is not None:
            secrets.add_query(location)
        answer = requests.get(location, timeout=HTTP_TIMEOUT_S)
        assert answer.status_code == 200, answer.text
        return location


def sign_in(api_url: str, demo: dict[str, str], secrets: SecretRegistry | None = None) -> ApiUser:
    answer = requests.post(
        f"{api_url}/v1/session",
        json={"username": demo["username"], "password": demo["password"]},
        timeout=HTTP_TIMEOUT_S,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    if secrets is not None:
        secrets.add("session token", body["token"])
    return ApiUser(api_url, body["token"], body["user"]["id"], demo["username"], demo["upn"], demo["password"])


def error_code(answer: requests.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


# ---------------------------------------------------------------- secrets and where they must never appear


class SecretRegistry:
    """Every secret handed out during the run (Zoom tokens and codes, session tokens, OAuth states)."""

    MIN_LENGTH = 16  # shorter strings would match by chance

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, label: str, value: str) -> None:
        if isinstance(value, str) and len(value) >= self.MIN_LENGTH:
            with self._lock:
                self._secrets[value] = label

    def add_query(self, url: str) -> None:
        """The code and state of a redirect URL."""
        for name, values in parse_qs(urlsplit(url).query).items():
            if name in ("code", "state"):
                for value in values:
                    self.add(f"oauth {name}", value)

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(label, value) for value, label in self._secrets.items()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._secrets)

    def labels(self) -> set[str]:
        with self._lock:
            return set(self._secrets.values())

    def find(self, text: str) -> list[str]:
        """`label (encoding)` of every secret whose bytes appear in `text`, raw, base64 or hex, with the
        line it appears in (shortened)."""
        found = []
        for label, value in self.items():
            for encoding, needle in needles(value).items():
                at = text.find(needle)
                if at >= 0:
                    start = text.rfind("\n", 0, at) + 1
                    end = text.find("\n", at)
                    line = text[start : end if end >= 0 else len(text)]
                    found.append(f"{label} ({encoding}) in: {line[:200]}")
                    break
        return found


def needles(secret: str) -> dict[str, str]:
    """The forms a secret's bytes can take in storage or logs: raw, hex, and base64 (standard and URL-safe)
    at each of the three alignments it can have inside a longer encoded value."""
    raw = secret.encode()
    forms = {"raw": secret, "hex": raw.hex(), "HEX": raw.hex().upper()}
    for shift in range(3):
        chunk = raw[shift : shift + 3 * ((len(raw) - shift) // 3)]
        forms[f"base64+{shift}"] = base64.b64encode(chunk).decode()
        forms[f"base64url+{shift}"] = base64.urlsafe_b64encode(chunk).decode()
    return forms


def record_issued_secrets(emulator: EmulatorHandle, registry: SecretRegistry) -> None:
    """Wraps the emulator's store so every code and token it issues from now on is registered."""
    store = emulator.state
    issue_tokens, issue_code = store._issue_tokens, store.issue_code

    def tokens(grant: Any) -> dict[str, Any]:
        answer = issue_tokens(grant)
        registry.add("zoom access token", answer["access_token"])
        registry.add("zoom refresh token", answer["refresh_token"])
        return answer

    def code(*args: Any, **kwargs: Any) -> str:
        value = issue_code(*args, **kwargs)
        registry.add("oauth code", value)
        return value

    store._issue_tokens = tokens  # type: ignore[method-assign]
    store.issue_code = code  # type: ignore[method-assign]


def _text_of(value: Any) -> str:
    """A scanned item as text; binary attributes appear both as their bytes and base64-encoded."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1") + " " + base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return " ".join(f"{k}={_text_of(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return " ".join(_text_of(v) for v in value)
    return str(value)


def table_dump(dynamodb: Any) -> dict[str, str]:
    """Every item of every table of a DynamoDB endpoint, as text, by table."""
    dump = {}
    for name in dynamodb.get_paginator("list_tables").paginate().build_full_result()["TableNames"]:
        items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=name) for item in page["Items"]]
        dump[name] = _text_of(items)
    return dump


def log_dump(paths: Iterable[Path]) -> dict[str, str]:
    return {str(path): path.read_text(errors="replace") for path in paths if path.is_file()}


# ---------------------------------------------------------------- a failing AWS endpoint


@dataclass
class AwsFault:
    target: str  # X-Amz-Target, e.g. "DynamoDB_20120810.UpdateItem"; "*" for any
    code: str  # the AWS error code, e.g. "ProvisionedThroughputExceededException"
    status: int = 400
    times: int = 1
    when: Callable[[dict[str, Any]], bool] = lambda _: True  # on the request's JSON body
    message: str = "injected by the resilience suite"


class AwsFaultProxy:
    """An AWS endpoint in front of the moto server: forwards every request untouched, except that requests
    matching a queued fault get that AWS error instead (JSON protocol: DynamoDB, KMS, SSM, SQS)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._faults: list[AwsFault] = []
        self._lock = threading.Lock()
        self.calls: list[tuple[str, bool]] = []  # (target, answered by a fault)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                fault = proxy._take(target, body)
                with proxy._lock:
                    proxy.calls.append((target, fault is not None))
                if fault is not None:
                    payload = json.dumps({"__type": fault.code, "message": fault.message}).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("x-amzn-ErrorType", fault.code)
                    self.send_header("x-amzn-RequestId", "injected")
                    self.send_header("x-amz-crc32", str(binascii.crc32(payload)))
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                connection = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
                    headers["Host"] = "{}:{}".format(*proxy._upstream)
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                    self.send_response(answer.status)
                    for key, value in answer.getheaders():
                        if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="aws-fault-proxy", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(
        self,
        target: str,
        code: str,
        *,
        status: int = 400,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        with self._lock:
            self._faults.append(AwsFault(target, code, status, times, when or (lambda _: True)))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.calls.clear()

    def injected(self) -> list[str]:
        with self._lock:
            return [target for target, faulted in self.calls if faulted]

    def pending(self) -> int:
        with self._lock:
            return sum(fault.times for fault in self._faults)

    def _take(self, target: str, body: bytes) -> AwsFault | None:
        with self._lock:
            for fault in self._faults:
                if fault.target not in ("*", target):
                    continue
                try:
                    parsed = json.loads(body) if body else {}
                except ValueError:
                    parsed = {}
                if not fault.when(parsed if isinstance(parsed, dict) else {}):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
            return None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def table_is(name_part: str) -> Callable[[dict[str, Any]], bool]:
    """A fault condition: the request names a table whose name contains `name_part`."""
    return lambda body: name_part in str(body.get("TableName", ""))


# ---------------------------------------------------------------- handlers in process, with the events AWS builds


@dataclass(frozen=True)
class Answer:
    """A Lambda proxy result, read as a client reads the HTTP answer."""

    status: int
    headers: dict[str, str]
    text: str

    @classmethod
    def of(cls, result: dict[str, Any]) -> Answer:
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key.lower()] = str(values[-1])
        return cls(int(result["statusCode"]), headers, result.get("body") or "")

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def code(self) -> str | None:
        body = self.json() if self.text.startswith("{") else None
        error = body.get("error") if isinstance(body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


def _api_routes() -> list[tuple[str, str, str]]:
    """(METHOD, resource template, function folder) of every API route in template.yaml."""
    from devstack.template import load_template, resources_of_type

    routes = []
    for spec in resources_of_type(load_template(), "AWS::Serverless::Function").values():
        folder = spec["Properties"]["CodeUri"].rstrip("/").rsplit("/", 1)[-1]
        for event in (spec["Properties"].get("Events") or {}).values():
            if event["Type"] == "Api":
                routes.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"], folder))
    return routes


def route_of(method: str, path: str) -> tuple[str, dict[str, str], str]:
    """The template route a request takes: (resource, path parameters, function folder)."""
    import re

    for route_method, resource, folder in _api_routes():
        if route_method != method:
            continue
        names = re.findall(r"\{(\w+)\}", resource)
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(resource)) + "$"
        found = re.match(pattern, urlsplit(path).path)
        if found:
            return resource, dict(zip(names, found.groups(), strict=True)), folder
    raise KeyError(f"no route for {method} {path}")


def invoke_api(
    functions: dict[str, Any],
    method: str,
    path: str,
    authorizer: dict[str, Any] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    remaining_s: float = 25.0,
) -> Answer:
    """Calls the function API Gateway would call, with the event it would build (HTTP on loopback)."""
    from devstack.events import api_event
    from tests.support.lambda_context import FakeLambdaContext

    resource, parameters, folder = route_of(method, path)
    event = api_event(
        method,
        path,
        resource=resource,
        path_parameters=parameters or None,
        headers={"X-Forwarded-Proto": "http", **(headers or {})},
        body=body if isinstance(body, str) or body is None else json.dumps(body),
        authorizer=authorizer,
    )
    result = functions[folder].handler(event, FakeLambdaContext(remaining_ms=int(remaining_s * 1000)))
    return Answer.of(result)


def consent_query(functions: dict[str, Any], person: Person) -> str:
    """`person` consents at the emulator's page; the query (code, state) Zoom sends the browser back with."""
    from tests.integration.connection.zoom_flow import authorize_url

    location = complete_consent(authorize_url(functions["zoom_oauth"], person), person.email, "any-password")
    return location.split("?", 1)[1]


def callback(functions: dict[str, Any], query: str) -> Answer:
    """The browser arriving from Zoom at GET /v1/zoom/callback."""
    return invoke_api(functions, "GET", f"/v1/zoom/callback?{query}")


def connected(functions: dict[str, Any], person: Person) -> bool:
    """What GET /v1/features tells `person` about their Zoom connection."""
    return bool(invoke_api(functions, "GET", "/v1/features", person.authorizer).json()["zoom"]["connected"])


def deliver_records(
    functions: dict[str, Any],
    calendar: CalendarTable,
    user_id: str,
    records: list[dict[str, Any]] | None = None,
    replayed: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """This user's new stream records of `calendar` (or `records` again) through the stream function, as one
    batch, as the event source mapping (or, `replayed`, the DLQ replay) hands them over: (its answer, the records)."""
    from link_zoom.domain.calendar_events import REPLAYED_KEY
    from tests.support.lambda_context import FakeLambdaContext

    if records is None:
        records = [r for r in calendar.new_records() if r["dynamodb"]["Keys"]["user_id"]["S"] == user_id]
    event: dict[str, Any] = {"Records": records}
    if replayed:
        event[REPLAYED_KEY] = True
    answer = functions["calendar_stream"].handler(event, FakeLambdaContext(remaining_ms=120_000))
    return answer, records
