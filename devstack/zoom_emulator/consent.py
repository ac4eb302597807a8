"""Playing the user on Zoom's consent page, as a browser would: for tests that need a connected user."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


class ConsentError(Exception):
    """The consent page did not behave like Zoom's."""


class _FormParser(HTMLParser):
    """Collects the page's form: its action, inputs, buttons and the labels that name the inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.inputs: list[dict[str, str]] = []
        self.buttons: list[dict[str, str]] = []
        self.labels: dict[str, str] = {}  # input id -> label text
        self._open: dict[str, str] | None = None  # the label or button whose text is being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action = attributes.get("action", "")
        elif tag == "input":
            self.inputs.append(attributes)
        elif tag in ("label", "button"):
            self._open = {**attributes, "tag": tag, "text": ""}

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if self._open is None or self._open["tag"] != tag:
            return
        element, self._open = self._open, None
        element["text"] = element["text"].strip()
        if tag == "label":
            self.labels[element.get("for", "")] = element["text"]
        else:
            self.buttons.append(element)

    def field_labelled(self, label: str) -> str:
        for element in self.inputs:
            if element.get("id") and self.labels.get(element["id"]) == label and element.get("name"):
                return element["name"]
        raise ConsentError(f"No field labelled {label!r} on the consent page.")

    def button_named(self, text: str) -> dict[str, str]:
        for button in self.buttons:
            if button["text"] == text:
                return button
        raise ConsentError(f"No button {text!r} on the consent page.")


def complete_consent(
    authorize_url: str,
    email: str,
    password: str,
    *,
    allow: bool = True,
    session: requests.Session | None = None,
    timeout: float = 10.0,
) -> str:
    """Opens the authorize URL, signs in as `email` and presses Allow (or Decline).

    Returns the URL Zoom sends the browser to: `redirect_uri?code=..&state=..` or `?error=access_denied`.
    """
    http = session or requests.Session()
    page = http.get(authorize_url, timeout=timeout)
    if page.status_code != 200:
        raise ConsentError(f"The authorize page answered {page.status_code}.")
    form = _FormParser()
    form.feed(page.text)
    fields = {item["name"]: item.get("value", "") for item in form.inputs if item.get("type") == "hidden"}
    fields[form.field_labelled("Email")] = email
    fields[form.field_labelled("Password")] = password
    button = form.button_named("Allow" if allow else "Decline")
    fields[button["name"]] = button["value"]
    answer = http.post(urljoin(page.url, form.action), data=fields, allow_redirects=False, timeout=timeout)
    if answer.status_code != 302:
        raise ConsentError(f"The consent form answered {answer.status_code}, not a redirect.")
    return answer.headers["Location"]
