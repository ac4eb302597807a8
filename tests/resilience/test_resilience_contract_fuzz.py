"""schemathesis against docs/openapi.yaml on the running stack, signed in: no 5xx on any route, and every
response conforms to the document (its status code is documented, its content type and body match).

Each operation gets a bounded, deterministic run of valid (positive) and invalid (negative) requests. What
would hurt the rest of the suite is contained: every DELETE /v1/session case revokes a session of its own,
sign-in cases never name a demo user (their throttle counts stay untouched), admin routes run as the admin
and the switch is put back, and webhook bodies are signed with the app's secret so that they get past the
signature check to the parser.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.stack_process import StackProcess
from devstack.template import ROOT
from devstack.zoom_emulator import EmulatorHandle, sign_webhook
from tests.resilience.harness import ApiUser, SecretRegistry, sign_in

OPENAPI = ROOT / "docs" / "openapi.yaml"
EXAMPLES_PER_MODE = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
FUZZ_USERNAME = "fuzz-only"  # throttled on its own; never a demo user
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def _labels() -> list[str]:
    document = yaml.safe_load(OPENAPI.read_text())
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    ]


@dataclass
class Findings:
    """Failures of one operation's run, kept (rather than raised) so the run goes on and reports them all."""

    label: str
    failures: dict[str, str] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, case: Any, exc: BaseException) -> None:
        key = " ".join(str(exc).split())[:300]
        if key not in self.failures:
            self.failures[key] = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r:.300}"

    def report(self) -> str:
        return "\n".join(f"- {failure}\n    e.g. {example}" for failure, example in self.failures.items())


@pytest.fixture(scope="module")
def schema() -> Any:
    return schemathesis.openapi.from_path(OPENAPI)


@pytest.fixture
def switch_restored(admin: ApiUser) -> Iterator[None]:
    yield
    admin.call("PUT", "/v1/admin/features/zoom", {"enabled": True})


def _demo_accounts(stack: StackProcess) -> set[str]:
    return {u["username"].casefold() for u in stack.demo_users}


def _account_part(username: str) -> str:
    name = username.strip()
    if "\\" in name:
        return name.partition("\\")[2]
    if "@" in name:
        return name.rpartition("@")[0]
    return name


@pytest.mark.parametrize("label", _labels())
def test_every_response_conforms_and_none_is_a_5xx(
    label: str,
    schema: Any,
    stack: StackProcess,
    bob_connected: ApiUser,
    admin: ApiUser,
    zoom_on: EmulatorHandle,
    secrets: SecretRegistry,
    switch_restored: None,
) -> None:
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    findings = Findings(label)
    target = _Target(method, path, operation, stack, admin, bob_connected, secrets, zoom_on.config.webhook_secret)
    send = target.send

    def run(mode: GenerationMode) -> None:
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_MODE,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected, not raised
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            try:
                response = send(case)
            except requests.RequestException as exc:
                findings.add(case, exc)
                return
            findings.statuses[response.status_code] = findings.statuses.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
                findings.add(case, exc)

        try:
            one()
        except hypothesis.errors.Unsatisfiable:
            # Nothing of the request can be made invalid (no parameters, no body): nothing to do.
            assert mode == GenerationMode.NEGATIVE, label

    run(GenerationMode.POSITIVE)
    run(GenerationMode.NEGATIVE)
    print(f"{label}: statuses {dict(sorted(findings.statuses.items()))}")
    assert not findings.failures, f"{label}:\n{findings.report()}"
    assert not [status for status in findings.statuses if status >= 500], findings.statuses


@dataclass
class _Target:
    """One operation of the stack, called as a client would: signed in where the document says so, webhook bodies
    signed as Zoom signs them, and sign-in cases kept away from the demo accounts."""

    method: str
    path: str
    operation: Any
    stack: StackProcess
    admin: ApiUser
    bob: ApiUser
    secrets: SecretRegistry
    webhook_secret: str
    http: requests.Session = field(default_factory=requests.Session)

    def send(self, case: Any) -> requests.Response:
        headers = dict(case.headers or {})
        self._keep_off_demo_accounts(case)
        if operation_secured(self.operation):
            headers["Authorization"] = f"Bearer {self._token()}"
        if self.path == "/v1/zoom/webhook" and case.body is not None and isinstance(case.body, dict | list):
            # Signed as Zoom signs: the handler then parses and routes the (generated) event.
            raw = json.dumps(case.body).encode()
            timestamp = str(int(time.time()))
            headers.update(
                {
                    "x-zm-request-timestamp": timestamp,
                    "x-zm-signature": sign_webhook(self.webhook_secret, timestamp, raw),
                    "Content-Type": "application/json",
                }
            )
            return case.call(base_url=self.stack.api_url, session=self.http, headers=headers, data=raw)
        return case.call(base_url=self.stack.api_url, session=self.http, headers=headers)

    def _keep_off_demo_accounts(self, case: Any) -> None:
        if self.path != "/v1/session" or self.method != "POST" or not isinstance(case.body, dict):
            return
        username = case.body.get("username")
        if isinstance(username, str) and _account_part(username).casefold() in _demo_accounts(self.stack):
            case.body["username"] = FUZZ_USERNAME

    def _token(self) -> str:
        if self.path == "/v1/session" and self.method == "DELETE":
            # Each case revokes a session of its own: the suite's sessions live on.
            return sign_in(self.stack.api_url, self.stack.user("user"), self.secrets).token
        return self.admin.token if self.path.startswith("/v1/admin/") else self.bob.token


def operation_secured(operation: Any) -> bool:
    """True unless the operation says `security: []` (the document's default is the session token)."""
    security = operation.definition.raw.get("security")
    return security is None or bool(security)


# ---------------------------------------------------------------- what the fuzzing found, pinned


@pytest.mark.parametrize(
    ("start", "end", "status", "start_time"),
    [
        # Years before 1000: strftime's %Y wrote "32-01-01T..." (which nothing parses back): a 500.
        ("0032-01-01T00:07:11Z", "2000-01-01T00:03:22Z", 200, "0032-01-01T00:07:11Z"),
        # Before year 1 once in UTC: converting overflowed: a 500.
        ("0001-01-01T00:00:00+01:00", "2000-01-01T00:00:00Z", 400, None),
        ("9999-12-31T23:00:00Z", "9999-12-31T23:59:59-01:00", 400, None),
    ],
)
def test_event_times_at_the_ends_of_the_calendar_are_answered(
    start: str, end: str, status: int, start_time: str | None, bob_connected: ApiUser
) -> None:
    answer = bob_connected.call(
        "PUT", f"/v1/events/ends-{time.time_ns()}/zoom", {"topic": "t", "start": start, "end": end}
    )
    assert answer.status_code == status, answer.text
    if start_time:
        assert answer.json()["start_time"] == start_time
    else:
        assert answer.json()["error"]["code"] == "invalid_time_range"


@pytest.mark.parametrize("event_id", ["a?b", "a#b", "emoji-\U0001f600", "tab\there", "\u00b1\n]", "x" * 513])
def test_event_ids_the_router_cannot_take_are_a_400(event_id: str, bob_connected: ApiUser) -> None:
    from urllib.parse import quote

    for method, body in (
        ("PUT", {"topic": "t", "start": "2099-01-01T10:00:00Z", "end": "2099-01-01T11:00:00Z"}),
        ("DELETE", None),
    ):
        answer = bob_connected.call(method, f"/v1/events/{quote(event_id, safe='')}/zoom", body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request"), (method, answer.text)
