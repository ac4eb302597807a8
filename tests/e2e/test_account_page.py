"""The My Account page in headless Chromium, through the running stack (gateway, authorizer, moto, Samba).

Drives the page only through its accessible names (contract section 2), as a person with a screen reader
or the acceptance tests would. Saves docs/account-page.png.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devstack.template import ROOT
from tests.conftest import reset_process_caches
from tests.e2e.conftest import E2EStack

SCREENSHOT = ROOT / "docs" / "account-page.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 720})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()
    assert problems == []  # no script errors, nothing blocked by the page's own policy


@pytest.fixture
def stack_store(stack: E2EStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The preferences store of the running stack (its moto server), to give users rows to see."""
    region = stack.info["region"]
    env = {
        "AWS_ENDPOINT_URL": stack.aws_endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "PREFERENCES_TABLE": stack.info["tables"]["PreferencesTable"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_process_caches()
    from link_zoom.adapters import preferences_store

    yield preferences_store
    reset_process_caches()


def api(stack: E2EStack, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        stack.api_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def stored_session(page: Page) -> dict[str, Any]:
    return dict(json.loads(page.evaluate("sessionStorage.getItem('link.session')")))


def preferences_panel(page: Page) -> Any:
    """The "User Preferences" table with its column headers, whatever it holds."""
    table = page.get_by_role("table", name="User Preferences")
    expect(table).to_be_visible()
    for header in ["Resource Name", "Preference Tag"]:
        expect(table.get_by_role("columnheader", name=header)).to_be_visible()
    return table


def test_the_preferences_panel_is_there_without_and_with_preferences(
    stack: E2EStack, page: Page, stack_store: Any
) -> None:
    # Given a user with no preferences
    bob = stack.user("user")
    page.goto(f"{stack.api_url}/account")
    sign_in(page, bob["username"], bob["password"])
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()
    token, user_id = stored_session(page)["token"], stored_session(page)["user"]["id"]
    for row in stack_store.list_preferences(user_id):  # the stack is shared by the e2e session
        assert api(stack, "DELETE", f"/v1/account/preferences/{row.resource}/{row.tag}", token)[0] == 204
    page.reload()

    # Then the panel is there, its empty state inside it
    table = preferences_panel(page)
    expect(table.get_by_role("cell", name="You have no saved preferences.")).to_be_visible()

    # Given the same user with one preference, Then the panel holds its row and no empty state
    stack_store.upsert_preference(user_id, "Calendar", "week-start")
    try:
        page.reload()
        table = preferences_panel(page)
        expect(table.get_by_role("row", name="Calendar week-start")).to_be_visible()
        expect(page.get_by_text("You have no saved preferences.")).to_have_count(0)
    finally:
        stack_store.delete_preference(user_id, "Calendar", "week-start")


def test_a_user_signs_in_deletes_a_row_after_confirming_and_signs_out(
    stack: E2EStack, page: Page, stack_store: Any
) -> None:
    bob = stack.user("user")
    page.goto(f"{stack.api_url}/account")

    sign_in(page, bob["username"], "not-" + bob["password"])
    expect(page.get_by_role("alert").filter(has_text="username or password is not correct")).to_be_visible()

    sign_in(page, bob["username"], bob["password"])
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_have_count(0)
    expect(page.get_by_label("Zoom integration enabled")).to_be_hidden()

    session = stored_session(page)
    if not stack_store.list_preferences(session["user"]["id"]):  # the stack is shared by the e2e session
        expect(preferences_panel(page).get_by_text("You have no saved preferences.")).to_be_visible()
    stack_store.upsert_preference(session["user"]["id"], "Zoom", "oauth")
    page.reload()  # the session survives a reload (sessionStorage), the token never shows in the URL
    table = page.get_by_role("table", name="User Preferences")
    expect(table).to_be_visible()
    for header in ["Resource Name", "Preference Tag", "Created", "Updated"]:
        expect(table.get_by_role("columnheader", name=header)).to_be_visible()
    expect(table.get_by_role("row", name="Zoom oauth")).to_be_visible()
    assert session["token"] not in page.url
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []

    asked: list[str] = []

    def answer(accept: bool):  # type: ignore[no-untyped-def]
        def handle(dialog):  # type: ignore[no-untyped-def]
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.get_by_role("button", name="Delete Zoom oauth").click()
    expect(table.get_by_role("row", name="Zoom oauth")).to_be_visible()
    assert asked and asked[0].startswith("Delete Zoom oauth?")

    page.once("dialog", answer(True))
    page.get_by_role("button", name="Delete Zoom oauth").click()
    expect(page.get_by_text("Deleted Zoom oauth.")).to_be_visible()
    expect(page.get_by_role("button", name="Delete Zoom oauth")).to_have_count(0)
    assert stack_store.list_preferences(session["user"]["id"]) == []

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert api(stack, "GET", "/v1/account/preferences", session["token"])[0] == 401


def test_an_admin_flips_the_zoom_switch_from_the_menu_with_the_keyboard(
    stack: E2EStack, page: Page, stack_store: Any
) -> None:
    ada = stack.user("admin")
    page.goto(f"{stack.api_url}/account")
    sign_in(page, ada["upn"], ada["password"])
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()
    token, ada_id = stored_session(page)["token"], stored_session(page)["user"]["id"]
    # A row for the screenshot; one that another test's real connection made is left alone.
    added_row = not stack_store.list_preferences(ada_id)
    if added_row:
        stack_store.upsert_preference(ada_id, "Zoom", "oauth")
    page.reload()
    expect(page.get_by_role("row", name="Zoom oauth")).to_be_visible()

    menu = page.get_by_role("button", name="Menu")
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("button", name="My Account")).to_be_focused()
    switch = page.get_by_role("switch", name="Zoom integration enabled")
    expect(switch).to_be_enabled()
    before = switch.is_checked()

    page.keyboard.press("Tab")
    expect(switch).to_be_focused()
    page.keyboard.press("Space")
    expect(switch).to_be_checked(checked=not before)
    expect(switch).to_be_enabled()  # saved
    assert api(stack, "GET", "/v1/admin/features/zoom", token) == (200, {"enabled": not before})
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    page.keyboard.press("Space")
    expect(switch).to_be_checked(checked=before)
    expect(switch).to_be_enabled()
    assert api(stack, "GET", "/v1/admin/features/zoom", token) == (200, {"enabled": before})

    page.keyboard.press("Escape")
    expect(menu).to_be_focused()
    expect(switch).to_be_hidden()
    menu.click()
    page.get_by_role("button", name="My Account").click()
    expect(page.get_by_role("heading", name="My Account")).to_be_focused()
    if added_row:
        stack_store.delete_preference(ada_id, "Zoom", "oauth")


def test_the_page_needs_no_session_and_every_api_route_still_does(stack: E2EStack) -> None:
    with urllib.request.urlopen(f"{stack.api_url}/account", timeout=10) as response:
        assert response.status == 200
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    status, answer = api(stack, "GET", "/v1/account/preferences")
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert api(stack, "GET", "/v1/features", "x" * 43)[0] == 401
