"""The My Account page as served: self-contained, a strict policy, and the contract's accessible names."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from devstack.events import api_event
from tests.support.functions import load_function
from tests.support.lambda_context import FakeLambdaContext


class Names(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self.texts: list[str] = []
        self.external: list[str] = []
        self.tags: list[tuple[str, dict[str, Any]]] = []
        self._label_for: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "label":
            self._label_for = attributes.get("for")
        for name in ("src", "href", "action"):
            value = attributes.get(name)
            if value and not value.startswith("data:"):
                self.external.append(value)

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(data.strip())
            if self._label_for:
                self.labels[data.strip()] = self._label_for
                self._label_for = None


@pytest.fixture(scope="module")
def page() -> dict[str, Any]:
    return load_function("account").handler(api_event("GET", "/account"), FakeLambdaContext())


def test_the_page_is_html_with_a_strict_policy(page: dict[str, Any]) -> None:
    headers = {k: v[0] for k, v in page["multiValueHeaders"].items()}
    assert page["statusCode"] == 200
    assert headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]{44}'", policy)
    assert headers["X-Frame-Options"] == "DENY"


def test_the_page_is_self_contained_and_calls_the_api_with_relative_urls(page: dict[str, Any]) -> None:
    parser = Names()
    parser.feed(page["body"])
    assert parser.external == []
    assert '"v1/session"' in page["body"]
    assert '"/v1/' not in page["body"]
    assert "localStorage" not in page["body"]
    assert "innerHTML" not in page["body"]


def test_the_page_has_the_contracts_accessible_names(page: dict[str, Any]) -> None:
    parser = Names()
    parser.feed(page["body"])
    assert parser.labels["Username"] == "username"
    assert parser.labels["Password"] == "password"
    assert parser.labels["Zoom integration enabled"] == "zoom-switch"
    for text in ["Sign in", "Sign out", "Menu", "My Account", "User Preferences", "Resource Name", "Preference Tag"]:
        assert text in parser.texts, text
    switch = next(attributes for _, attributes in parser.tags if attributes.get("id") == "zoom-switch")
    assert (switch["type"], switch["role"]) == ("checkbox", "switch")
    assert "`Delete ${pref.resource} ${pref.tag}`" in page["body"]
    assert "window.confirm(" in page["body"]  # deletion asks first
