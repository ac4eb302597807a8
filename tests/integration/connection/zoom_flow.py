"""Helpers for the connection tests: the consent flow as a browser goes through it, handlers, scans, counters."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.aws import LocalResources
from devstack.events import api_event, authorizer_context
from devstack.zoom_emulator import EmulatorHandle, complete_consent
from tests.support.lambda_context import FakeLambdaContext

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "any-password"  # the emulator signs in any email with any password


@dataclass
class Person:
    """A Link user (an AD object GUID) and the Zoom account (email) they consent with."""

    user_id: str
    email: str

    @property
    def authorizer(self) -> dict[str, Any]:
        return authorizer_context(self.user_id, self.email.split("@")[0], False)


def new_person(name: str = "user") -> Person:
    unique = uuid.uuid4()
    return Person(str(unique), f"{name}.{unique.hex[:8]}@corp.example")


def invoke(function: Any, event: dict[str, Any], context: FakeLambdaContext | None = None) -> dict[str, Any]:
    response: dict[str, Any] = function.handler(event, context or FakeLambdaContext())
    return response


def start(oauth_function: Any, person: Person) -> dict[str, Any]:
    """GET /v1/zoom/authorize as the person; the local gateway serves plain HTTP on loopback."""
    event = api_event("GET", "/v1/zoom/authorize", headers={"X-Forwarded-Proto": "http"}, authorizer=person.authorizer)
    return invoke(oauth_function, event)


def authorize_url(oauth_function: Any, person: Person) -> str:
    response = start(oauth_function, person)
    assert response["statusCode"] == 200, response
    return str(json.loads(response["body"])["authorize_url"])


def callback(oauth_function: Any, location_or_query: str) -> dict[str, Any]:
    """GET /v1/zoom/callback with the query Zoom redirected the browser with."""
    query = urlsplit(location_or_query).query if "?" in location_or_query else location_or_query
    return invoke(oauth_function, api_event("GET", f"/v1/zoom/callback?{query}"))


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def connect(oauth_function: Any, person: Person) -> dict[str, Any]:
    """The whole consent flow, as the person's browser would go through it."""
    location = complete_consent(authorize_url(oauth_function, person), person.email, PASSWORD)
    response = callback(oauth_function, location)
    assert response["statusCode"] == 200, response["body"]
    return response


def token_calls(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [call for call in emulator.calls if call["path"] == "/oauth/token"]


def scan_all_tables(local_aws: LocalResources) -> dict[str, list[dict[str, Any]]]:
    """Every item of every table in the moto server, in DynamoDB's wire types, by table."""
    ddb = local_aws.client("dynamodb")
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in ddb.get_paginator("list_tables").paginate().build_full_result()["TableNames"]:
        tables[name] = [item for page in ddb.get_paginator("scan").paginate(TableName=name) for item in page["Items"]]
    return tables


class KmsCounter:
    """Counts the KMS requests the service's own (cached) client makes, by operation."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append(model.name)

    def __len__(self) -> int:
        return len(self.calls)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
