"""The Zoom fault matrix: every way Zoom fails, on every path that calls Zoom.

Paths: POST /v1/compose-link; PUT /v1/events/{id}/zoom creating and moving; DELETE /v1/events/{id}/zoom; the
calendar stream's INSERT, MODIFY and REMOVE; the callback's token exchange (and its GET /users/me); the refresh;
the revoke on disconnect. Faults: 429 with and without Retry-After (once, and until the budget is spent), 500,
503, timeouts (Zoom answering after our read timeout, having done the work), 401 (once: an expired token; for
good: the app was removed), 404/3001 (the meeting deleted at Zoom) and malformed JSON.

Every answer keeps the contract: 429 zoom_rate_limited with Retry-After, 502 zoom_unavailable, 403
zoom_authorization_required with an authorize_url, never another 5xx, no token in any body. Every case ends,
after Zoom recovers, with exactly one meeting where one is wanted; stream records that fail are reported as
batch item failures and succeed when delivered again (through the stack: retried, then the DLQ).

In process (handlers with the events AWS builds) with Zoom's read timeouts cut to READ_TIMEOUT_S.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.stack_process import StackProcess
from devstack.zoom_emulator import EmulatorHandle
from tests.integration.connection.zoom_flow import Person, new_person
from tests.integration.meetings.stream_tap import CalendarTable
from tests.resilience.harness import (
    Answer,
    ApiUser,
    SecretRegistry,
    callback,
    connected,
    consent_query,
    error_code,
    invoke_api,
)
from tests.resilience.harness import deliver_records as deliver
from tests.support.waiting import wait_for

CREATE = ("POST", "/v2/users/me/meetings")
FUTURE = {
    "subject": "Fault drill",
    "start": "2099-06-01T10:00:00+02:00",
    "end": "2099-06-01T11:00:00+02:00",
    "time_zone": "Europe/Berlin",
}
MOVED_END = "2099-06-01T11:30:00+02:00"
EVENT_BODY = {"topic": "Fault drill", "start": FUTURE["start"], "end": FUTURE["end"]}
READ_TIMEOUT_S = 1.0  # Zoom's read timeouts in this module (production: 8 s, and 20 s for a create)
SLOW_MS = 1400  # longer than READ_TIMEOUT_S: Zoom answers (and acts) after we gave up


@dataclass(frozen=True)
class Fault:
    name: str
    spec: dict[str, Any]
    lasting: bool  # outlasts one call's retries (the request fails); else a retry within the call succeeds
    # What the fault is on a PATCH or DELETE, when it differs (their success has no body to be malformed).
    spec_without_body: dict[str, Any] | None = None

    @property
    def slow(self) -> bool:
        return bool(self.spec.get("delay_ms")) and self.spec.get("status") is None

    @property
    def unreadable_success(self) -> bool:
        status = self.spec.get("status")
        return status is not None and 200 <= status < 300 and self.spec.get("body") is not None

    @property
    def server_error(self) -> bool:
        return (self.spec.get("status") or 0) >= 500

    def lasting_for(self, method: str) -> bool:
        """A create is never re-sent once it may have reached Zoom: one slow, unreadable or 5xx answer fails it."""
        return self.lasting or ((self.slow or self.unreadable_success or self.server_error) and method == "POST")

    def on(self, zoom: EmulatorHandle, method: str, path: str) -> None:
        spec = self.spec if method in ("POST", "GET") or self.spec_without_body is None else self.spec_without_body
        zoom.add_fault(method, path, **spec)


FAULTS = [
    Fault("429 with Retry-After", {"status": 429, "retry_after": 1}, False),
    Fault("429 without Retry-After", {"status": 429}, False),
    Fault("429 Retry-After beyond the budget", {"status": 429, "retry_after": 3600}, True),
    Fault("429 without Retry-After, repeated", {"status": 429, "times": 10}, True),
    Fault("500", {"status": 500}, False),
    Fault("503 repeated", {"status": 503, "times": 10}, True),
    Fault("timeout", {"delay_ms": SLOW_MS}, False),
    Fault("timeout repeated", {"delay_ms": SLOW_MS, "times": 10}, True),
    Fault("401 (expired token)", {"status": 401}, False),
    Fault("401 repeated (app removed)", {"status": 401, "times": 10}, True),
    Fault("malformed JSON", {"status": 201, "body": "{not json"}, False, {"status": 500, "body": "{not json"}),
]
FAULT_IDS = [f.name for f in FAULTS]


@pytest.fixture(autouse=True)
def fast_retries(zoom: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zoom's back-offs scaled down with the read timeout: the matrix runs in seconds, the logic unchanged."""
    from link_zoom import config
    from link_zoom.adapters import zoom_meetings, zoom_oauth

    monkeypatch.setattr(config, "ZOOM_READ_TIMEOUT_S", READ_TIMEOUT_S)
    monkeypatch.setattr(config, "ZOOM_CREATE_READ_TIMEOUT_S", READ_TIMEOUT_S, raising=False)
    monkeypatch.setattr(zoom_oauth, "TIMEOUT", (config.ZOOM_CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
    monkeypatch.setattr(zoom_meetings, "BACKOFF_BASE_S", 0.05)
    monkeypatch.setattr(zoom_meetings, "RATE_LIMIT_BACKOFF_S", 0.1)


def expected(fault: Fault, method: str) -> tuple[int | None, str | None]:
    """What a request answers when this fault hits its Zoom call (`method`): (status, error code); None: success."""
    if not fault.lasting_for(method):
        return None, None
    if fault.spec.get("status") == 429:
        return 429, "zoom_rate_limited"
    if fault.spec.get("status") == 401:
        return 403, "zoom_authorization_required"
    return 502, "zoom_unavailable"


def check_contract(answer: Answer, secrets: SecretRegistry) -> None:
    """What every answer under Zoom faults keeps to, whatever the path."""
    assert answer.status < 500 or (answer.status == 502 and answer.code == "zoom_unavailable"), answer
    assert "Traceback" not in answer.text and not secrets.find(answer.text), answer
    if answer.status >= 400:
        assert answer.code and answer.json()["error"]["message"], answer
    if answer.status == 429:
        assert answer.code == "zoom_rate_limited" and int(answer.headers["retry-after"]) >= 1, answer
    if answer.code == "zoom_authorization_required":
        assert answer.json()["error"]["authorize_url"].startswith("http"), answer


def meetings_of(zoom: EmulatorHandle, person: Person) -> dict[str, dict[str, Any]]:
    return {str(m["id"]): m for m in zoom.state.meetings() if m["host_email"] == person.email.lower()}


def settle_slow_calls(fault: Fault) -> None:
    """A slow fault's requests reach the emulator's handler only after their delay, some time after our read
    timeout gave up on them: let them land."""
    if fault.spec.get("delay_ms"):
        time.sleep(fault.spec["delay_ms"] / 1000 - READ_TIMEOUT_S + 0.2)


def answers_as_the_fault_says(answer: Answer, fault: Fault, method: str, ok: int, secrets: SecretRegistry) -> None:
    """The answer keeps the contract and is what `fault` on its Zoom call (`method`) makes it (`ok` when the call
    recovers); then a slow fault's calls have landed."""
    check_contract(answer, secrets)
    status, code = expected(fault, method)
    assert (answer.status, answer.code) == (status or ok, code), answer
    settle_slow_calls(fault)


def reconnect_if_removed(functions: dict[str, Any], person: Person, fault: Fault) -> None:
    if fault.lasting and fault.spec.get("status") == 401:
        from tests.integration.connection.zoom_flow import connect

        connect(functions["zoom_oauth"], person)


def event_path() -> str:
    return f"/v1/events/evt-{uuid.uuid4()}/zoom"


def event_with_meeting(functions: dict[str, Any], person: Person) -> tuple[str, str]:
    """A new event's meeting made through PUT: (the event's path, the meeting id)."""
    path = event_path()
    return path, invoke_api(functions, "PUT", path, person.authorizer, EVENT_BODY).json()["meeting_id"]


CREATE_FAULTS = FAULTS


# ---------------------------------------------------------------- POST /v1/compose-link


@pytest.mark.parametrize("fault", CREATE_FAULTS, ids=FAULT_IDS)
def test_compose_link(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, secrets: SecretRegistry
) -> None:
    fault.on(zoom, *CREATE)
    answer = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {"topic": "Under fire"})
    answers_as_the_fault_says(answer, fault, "POST", 201, secrets)
    made = meetings_of(zoom, person)
    if answer.status == 201:
        assert list(made) == [answer.json()["meeting_id"]], "exactly the meeting answered, no other"
    elif not fault.slow:  # (a slow Zoom made one after all: see test_a_create_zoom_answers_too_late_for)
        assert made == {}, "a failed compose-link leaves no meeting at Zoom"


# ---------------------------------------------------------------- PUT /v1/events/{id}/zoom


@pytest.mark.parametrize("fault", CREATE_FAULTS, ids=FAULT_IDS)
def test_put_event_creating(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, secrets: SecretRegistry
) -> None:
    path = event_path()
    fault.on(zoom, *CREATE)
    answer = invoke_api(functions, "PUT", path, person.authorizer, EVENT_BODY)
    answers_as_the_fault_says(answer, fault, "POST", 200, secrets)
    zoom.clear_faults()
    reconnect_if_removed(functions, person, fault)
    again = invoke_api(functions, "PUT", path, person.authorizer, EVENT_BODY)
    assert again.status == 200, again
    linked = again.json()["meeting_id"]
    assert linked in meetings_of(zoom, person)
    if not fault.slow:  # (see test_a_create_zoom_answers_too_late_for)
        assert list(meetings_of(zoom, person)) == [linked], "one meeting for the event"


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_put_event_moving(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, secrets: SecretRegistry
) -> None:
    path, meeting_id = event_with_meeting(functions, person)
    fault.on(zoom, "PATCH", f"/v2/meetings/{meeting_id}")
    moved = {**EVENT_BODY, "end": MOVED_END}
    answer = invoke_api(functions, "PUT", path, person.authorizer, moved)
    answers_as_the_fault_says(answer, fault, "PATCH", 200, secrets)
    zoom.clear_faults()
    reconnect_if_removed(functions, person, fault)
    again = invoke_api(functions, "PUT", path, person.authorizer, moved)
    assert again.status == 200 and again.json()["duration_minutes"] == 90, again
    meetings = meetings_of(zoom, person)
    assert list(meetings) == [again.json()["meeting_id"]] and meetings[again.json()["meeting_id"]]["duration"] == 90


def test_put_event_moving_a_meeting_deleted_at_zoom_makes_one_new_meeting(
    zoom: EmulatorHandle, functions: dict[str, Any], person: Person, secrets: SecretRegistry
) -> None:
    path, first = event_with_meeting(functions, person)
    zoom.state.remove_meeting(int(first))  # the host deleted it in the Zoom app: PATCH answers 404, code 3001
    answer = invoke_api(functions, "PUT", path, person.authorizer, {**EVENT_BODY, "end": MOVED_END})
    check_contract(answer, secrets)
    assert answer.status == 200 and answer.json()["meeting_id"] != first
    assert list(meetings_of(zoom, person)) == [answer.json()["meeting_id"]]


# ---------------------------------------------------------------- DELETE /v1/events/{id}/zoom


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_delete_event(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, secrets: SecretRegistry
) -> None:
    path, meeting_id = event_with_meeting(functions, person)
    fault.on(zoom, "DELETE", f"/v2/meetings/{meeting_id}")
    answer = invoke_api(functions, "DELETE", path, person.authorizer)
    check_contract(answer, secrets)
    status, code = expected(fault, "DELETE")
    if code == "zoom_authorization_required":
        # Removal always works: with the app removed nobody can delete the meeting any more; it is forgotten.
        status, code = None, None
    assert (answer.status, answer.code) == (status or 204, code), answer
    settle_slow_calls(fault)
    zoom.clear_faults()
    if status is None and fault.spec.get("status") != 401:
        assert meetings_of(zoom, person) == {}
    assert invoke_api(functions, "DELETE", path, person.authorizer).status == 204
    if not (fault.lasting and fault.spec.get("status") == 401):
        assert meetings_of(zoom, person) == {}, "a retried delete removes it"


def test_delete_event_whose_meeting_zoom_no_longer_has(
    zoom: EmulatorHandle, functions: dict[str, Any], person: Person
) -> None:
    path, meeting_id = event_with_meeting(functions, person)
    zoom.state.remove_meeting(int(meeting_id))
    zoom.clear_calls()
    assert invoke_api(functions, "DELETE", path, person.authorizer).status == 204
    assert [(c["method"], c["status"]) for c in zoom.calls] == [("DELETE", 404)]  # 3001 counts as deleted


# ---------------------------------------------------------------- the calendar stream


@pytest.fixture
def calendar(local_aws: LocalResources, zoom: EmulatorHandle) -> CalendarTable:
    return CalendarTable(local_aws)


def scheduled_event(functions: dict[str, Any], calendar: CalendarTable, person: Person) -> tuple[str, str]:
    """An event with Zoom on, its records delivered (the write-back's own one makes no Zoom call): (event id,
    meeting id)."""
    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(person.user_id, event_id, **FUTURE, zoom=True)
    deliver(functions, calendar, person.user_id)
    meeting_id = calendar.item(person.user_id, event_id)["zoom_meeting_id"]
    deliver(functions, calendar, person.user_id)
    return event_id, meeting_id


def failed_sequences(answer: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def stream_outcome(fault: Fault, method: str) -> str:
    """What a stream record does when this fault hits its Zoom call: `ok`, `retry` (a batch item failure,
    nothing written), `rate_limited` (the record succeeds, the item says `rate_limited` and the event is queued)
    or `authorization_required` (the app was removed: the item says so, no retry)."""
    if not fault.lasting_for(method):
        return "ok"
    if fault.spec.get("status") == 429:
        return "rate_limited"  # the record succeeds; the per-event work queue retries after Retry-After
    return "authorization_required" if fault.spec.get("status") == 401 else "retry"


@pytest.mark.parametrize("fault", CREATE_FAULTS, ids=FAULT_IDS)
def test_stream_insert(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, calendar: CalendarTable
) -> None:
    event_id = f"evt-{uuid.uuid4()}"
    fault.on(zoom, *CREATE)
    calendar.put(person.user_id, event_id, **FUTURE, zoom=True)
    answer, records = deliver(functions, calendar, person.user_id)
    outcome = stream_outcome(fault, "POST")
    item = calendar.item(person.user_id, event_id)
    settle_slow_calls(fault)
    if outcome == "rate_limited":
        assert answer == {"batchItemFailures": []} and item["zoom_status"] == "rate_limited"
        zoom.clear_faults()
        answer, _ = deliver(functions, calendar, person.user_id, records)  # what the queued work does later
        item = calendar.item(person.user_id, event_id)
    elif outcome == "retry":
        assert failed_sequences(answer) == [records[0]["dynamodb"]["SequenceNumber"]]
        assert "zoom_status" not in item, "nothing written for a record that is retried"
        if fault.slow:
            return  # (a slow Zoom made one after all: see test_a_create_zoom_answers_too_late_for)
        assert meetings_of(zoom, person) == {}
        zoom.clear_faults()
        answer, _ = deliver(functions, calendar, person.user_id, records)  # Lambda's retry of the same record
        item = calendar.item(person.user_id, event_id)
    elif outcome == "authorization_required":
        assert answer == {"batchItemFailures": []} and item["zoom_status"] == "authorization_required"
        return
    assert answer == {"batchItemFailures": []}
    assert item["zoom_status"] == "scheduled"
    meetings = meetings_of(zoom, person)
    assert list(meetings) == [item["zoom_meeting_id"]], "one meeting, the one the item names"
    assert (meetings[item["zoom_meeting_id"]]["start_time"], meetings[item["zoom_meeting_id"]]["duration"]) == (
        "2099-06-01T08:00:00Z",
        60,
    )


LOST_ANSWERS = [
    Fault("timeout", {"delay_ms": SLOW_MS}, False),
    # Zoom made the meeting and answered 201, with a body nobody can read.
    Fault("unreadable 201", {"status": 201, "body": "{not json", "after_handling": True}, False),
    # Zoom made the meeting, then answered 500 ("make it, then fail").
    Fault("made, then 500", {"status": 500, "after_handling": True}, False),
]


@pytest.mark.parametrize("slow", LOST_ANSWERS, ids=[f.name for f in LOST_ANSWERS])
@pytest.mark.parametrize("path_kind", ["PUT", "stream"])
def test_a_create_zoom_answers_too_late_for_leaves_no_second_meeting(
    path_kind: str,
    slow: Fault,
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    person: Person,
    calendar: CalendarTable,
) -> None:
    """The retry (the client's, or the stream's redelivery) finds the meeting the lost create made and adopts it."""
    calls_before = len(zoom.calls)
    slow.on(zoom, *CREATE)
    event_id = f"evt-{uuid.uuid4()}"
    if path_kind == "PUT":
        assert invoke_api(functions, "PUT", f"/v1/events/{event_id}/zoom", person.authorizer, EVENT_BODY).status == 502
        settle_slow_calls(slow)
        assert invoke_api(functions, "PUT", f"/v1/events/{event_id}/zoom", person.authorizer, EVENT_BODY).status == 200
    else:
        calendar.put(person.user_id, event_id, **FUTURE, zoom=True)
        answer, records = deliver(functions, calendar, person.user_id)
        assert failed_sequences(answer)
        settle_slow_calls(slow)
        assert deliver(functions, calendar, person.user_id, records)[0] == {"batchItemFailures": []}
        assert calendar.item(person.user_id, event_id)["zoom_status"] == "scheduled"
    assert len(meetings_of(zoom, person)) == 1, meetings_of(zoom, person)
    creates = [c for c in zoom.calls[calls_before:] if (c["method"], c["path"]) == CREATE]
    assert len(creates) == 1, "the retry looked the meeting up instead of creating another"


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_stream_modify(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, calendar: CalendarTable
) -> None:
    event_id, meeting_id = scheduled_event(functions, calendar, person)
    fault.on(zoom, "PATCH", f"/v2/meetings/{meeting_id}")
    calendar.update(person.user_id, event_id, end=MOVED_END)
    answer, records = deliver(functions, calendar, person.user_id)
    settle_slow_calls(fault)
    outcome = stream_outcome(fault, "PATCH")
    if outcome == "rate_limited":
        assert answer == {"batchItemFailures": []}
        assert calendar.item(person.user_id, event_id)["zoom_status"] == "rate_limited"
        zoom.clear_faults()
        answer, _ = deliver(functions, calendar, person.user_id, records)  # what the queued work does later
    elif outcome == "retry":
        assert failed_sequences(answer) == [records[0]["dynamodb"]["SequenceNumber"]]
        if not fault.slow:  # a slow Zoom moved it after all
            assert meetings_of(zoom, person)[meeting_id]["duration"] == 60
        zoom.clear_faults()
        answer, _ = deliver(functions, calendar, person.user_id, records)
    elif outcome == "authorization_required":
        assert answer == {"batchItemFailures": []}
        assert calendar.item(person.user_id, event_id)["zoom_status"] == "authorization_required"
        return
    assert answer == {"batchItemFailures": []}
    assert list(meetings_of(zoom, person)) == [meeting_id]
    assert meetings_of(zoom, person)[meeting_id]["duration"] == 90
    assert calendar.item(person.user_id, event_id)["zoom_status"] == "scheduled"


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_stream_remove(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, calendar: CalendarTable
) -> None:
    event_id, meeting_id = scheduled_event(functions, calendar, person)
    fault.on(zoom, "DELETE", f"/v2/meetings/{meeting_id}")
    calendar.delete(person.user_id, event_id)
    answer, records = deliver(functions, calendar, person.user_id)
    settle_slow_calls(fault)
    outcome = stream_outcome(fault, "DELETE")
    if outcome == "rate_limited":
        assert answer == {"batchItemFailures": []} and meeting_id in meetings_of(zoom, person)
        zoom.clear_faults()
        answer, _ = deliver(functions, calendar, person.user_id, records)  # what the queued work does later
    elif outcome == "retry":
        assert failed_sequences(answer) == [records[0]["dynamodb"]["SequenceNumber"]]
        if not fault.slow:  # a slow Zoom deleted it after all
            assert meeting_id in meetings_of(zoom, person)
        zoom.clear_faults()
        answer, _ = deliver(functions, calendar, person.user_id, records)
    assert answer == {"batchItemFailures": []}
    if outcome != "authorization_required":
        assert meetings_of(zoom, person) == {}


def test_stream_remove_of_a_meeting_zoom_no_longer_has(
    zoom: EmulatorHandle, functions: dict[str, Any], person: Person, calendar: CalendarTable
) -> None:
    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(person.user_id, event_id, **FUTURE, zoom=True)
    deliver(functions, calendar, person.user_id)
    zoom.state.remove_meeting(int(calendar.item(person.user_id, event_id)["zoom_meeting_id"]))
    deliver(functions, calendar, person.user_id)
    calendar.delete(person.user_id, event_id)
    answer, _ = deliver(functions, calendar, person.user_id)
    assert answer == {"batchItemFailures": []}  # 404/3001 counts as deleted


# ---------------------------------------------------------------- the callback's token exchange


TOKEN_FAULTS = [
    Fault("429", {"status": 429, "retry_after": 1}, True),
    Fault("500", {"status": 500}, True),
    Fault("503", {"status": 503}, True),
    Fault("timeout", {"delay_ms": SLOW_MS}, True),
    Fault("401 invalid_client", {"status": 401}, True),
    Fault("400 invalid_grant", {"status": 400}, True),
    Fault("404", {"status": 404}, True),
    Fault("malformed JSON", {"status": 200, "body": "{not json"}, True),
]


@pytest.mark.parametrize("fault", TOKEN_FAULTS, ids=[f.name for f in TOKEN_FAULTS])
def test_callback_token_exchange(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], secrets: SecretRegistry
) -> None:
    someone = new_person("cb")
    query = consent_query(functions, someone)
    fault.on(zoom, "POST", "/oauth/token")
    page = callback(functions, query)
    assert page.status == 502 and page.headers["content-type"].startswith("text/html"), page
    assert not secrets.find(page.text) and "Traceback" not in page.text
    assert not connected(functions, someone)
    settle_slow_calls(fault)
    zoom.clear_faults()
    # The state was spent: the same callback is refused, and starting again connects.
    assert callback(functions, query).status == 400
    assert callback(functions, consent_query(functions, someone)).status == 200
    assert connected(functions, someone)


@pytest.mark.parametrize("status", [401, 500, 503])
def test_callback_users_me_failing_revokes_the_new_grant(
    status: int, zoom: EmulatorHandle, functions: dict[str, Any], secrets: SecretRegistry
) -> None:
    someone = new_person("cb")
    query = consent_query(functions, someone)
    zoom.add_fault("GET", "/v2/users/me", status, times=10)
    page = callback(functions, query)
    assert page.status == 502 and not secrets.find(page.text)
    assert not connected(functions, someone)
    assert ("/oauth/revoke", 200) in [(c["path"], c["status"]) for c in zoom.calls], "the unused grant is ended"


# ---------------------------------------------------------------- the refresh


REFRESH_FAULTS = [
    # (fault on POST /oauth/token, answer of the request that needed the refresh, connected afterwards)
    (Fault("429", {"status": 429, "retry_after": 1}, True), (429, "zoom_rate_limited"), True),
    (Fault("500", {"status": 500}, True), (502, "zoom_unavailable"), True),
    (Fault("503", {"status": 503}, True), (502, "zoom_unavailable"), True),
    (Fault("401 invalid_client", {"status": 401}, True), (502, "zoom_unavailable"), True),
    (Fault("malformed JSON", {"status": 200, "body": "{not json"}, True), (502, "zoom_unavailable"), True),
    (Fault("400 invalid_grant", {"status": 400}, True), (403, "zoom_authorization_required"), False),
    # Zoom rotated the refresh token but its answer never arrived: the stored one is dead. The user connects
    # again (403 with an authorize_url), which is all that can be done.
    (Fault("timeout", {"delay_ms": SLOW_MS}, True), (502, "zoom_unavailable"), False),
]


@pytest.mark.parametrize(
    ("fault", "answer_of", "stays_connected"), REFRESH_FAULTS, ids=[f.name for f, _, _ in REFRESH_FAULTS]
)
def test_refresh(
    fault: Fault,
    answer_of: tuple[int, str],
    stays_connected: bool,
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    person: Person,
    secrets: SecretRegistry,
) -> None:
    zoom.state.expire_access_tokens(person.email)  # Zoom answers 401 (code 124): the service refreshes
    fault.on(zoom, "POST", "/oauth/token")
    answer = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {})
    check_contract(answer, secrets)
    assert (answer.status, answer.code) == answer_of, answer
    settle_slow_calls(fault)
    zoom.clear_faults()
    again = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {})
    check_contract(again, secrets)
    if stays_connected:
        assert again.status == 201, "the lock was released and the connection kept: the next request refreshes"
        assert len(meetings_of(zoom, person)) == 1
    else:
        assert (again.status, again.code) == (403, "zoom_authorization_required")
        assert not connected(functions, person)


def test_refresh_rate_limited_is_zoom_rate_limited(
    zoom: EmulatorHandle, functions: dict[str, Any], person: Person
) -> None:
    zoom.state.expire_access_tokens(person.email)
    zoom.add_fault("POST", "/oauth/token", 429, retry_after=3600)
    answer = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {})
    assert (answer.status, answer.code) == (429, "zoom_rate_limited")
    assert int(answer.headers["retry-after"]) >= 3600, "Zoom's Retry-After is passed on"
    zoom.clear_faults()
    again = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {})
    assert again.status == 201, "the lock was released and the connection kept: the next request refreshes"


# ---------------------------------------------------------------- the revoke on disconnect


@pytest.mark.parametrize(
    "fault",
    [
        Fault("500", {"status": 500}, True),
        Fault("503", {"status": 503}, True),
        Fault("429", {"status": 429}, True),
        Fault("timeout", {"delay_ms": SLOW_MS}, True),
    ],
    ids=lambda f: f.name,
)
def test_disconnect_works_whatever_the_revoke_answers(
    fault: Fault, zoom: EmulatorHandle, functions: dict[str, Any], person: Person
) -> None:
    fault.on(zoom, "POST", "/oauth/revoke")
    answer = invoke_api(functions, "DELETE", "/v1/account/preferences/Zoom/oauth", person.authorizer)
    assert answer.status == 204, answer
    assert not connected(functions, person)
    settle_slow_calls(fault)


# ---------------------------------------------------------------- through the stack


def _drain(sqs: Any, url: str) -> None:
    """Empties a queue (PurgeQueue is allowed once a minute)."""
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def dlq_empty(stack: StackProcess) -> Iterator[Any]:
    sqs = stack.aws("sqs")
    _drain(sqs, stack.info["calendar_stream_dlq_url"])
    yield sqs
    _drain(sqs, stack.info["calendar_stream_dlq_url"])


def test_through_the_gateway_the_answers_keep_their_shape_and_headers(
    bob_connected: ApiUser, zoom_on: EmulatorHandle
) -> None:
    zoom_on.add_fault("POST", "/v2/users/me/meetings", 429, retry_after=3600)
    limited = bob_connected.call("POST", "/v1/compose-link", {})
    assert (limited.status_code, error_code(limited)) == (429, "zoom_rate_limited")
    assert int(limited.headers["Retry-After"]) >= 3600 and limited.headers["Content-Type"] == "application/json"
    zoom_on.add_fault("POST", "/v2/users/me/meetings", 503, times=10)
    failing = bob_connected.call("POST", "/v1/compose-link", {})
    assert (failing.status_code, error_code(failing)) == (502, "zoom_unavailable")


def test_stream_records_that_keep_failing_are_retried_then_dead_lettered_then_healed(
    stack: StackProcess, bob_connected: ApiUser, zoom_on: EmulatorHandle, dlq_empty: Any
) -> None:
    """A REMOVE whose Zoom delete keeps failing: the poller retries it (MaximumRetryAttempts), then sends it to
    the DLQ, where EventWorkFunction turns it into per-event work at once; nothing is lost and nobody replays:
    the work deletes the meeting once Zoom is back."""
    ddb, table = stack.aws("dynamodb"), stack.info["calendar_table"]
    event_id = f"res-{uuid.uuid4()}"
    key = {"user_id": {"S": bob_connected.user_id}, "event_id": {"S": event_id}}
    item = {**key, **{k: {"S": v} for k, v in FUTURE.items()}, "zoom": {"BOOL": True}}
    ddb.put_item(TableName=table, Item=item)

    def meeting_id() -> str | None:
        found = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
        return found.get("zoom_meeting_id", {}).get("S")

    made = wait_for(meeting_id, timeout=15)
    zoom_on.add_fault("DELETE", f"/v2/meetings/{made}", 503, times=1000)
    ddb.delete_item(TableName=table, Key=key)

    def deletes() -> list[dict[str, Any]]:
        return [c for c in zoom_on.calls if c["method"] == "DELETE" and c["path"] == f"/v2/meetings/{made}"]

    # 6 stream invocations (the first delivery and 5 retries) of 3 tries each, then the work queue's retries.
    wait_for(lambda: len(deletes()) > 6 * 3, timeout=90, interval=0.5)
    assert all(c["status"] == 503 for c in deletes())
    assert str(made) in {str(m["id"]) for m in zoom_on.state.meetings()}

    zoom_on.clear_faults()  # Zoom is back: no person does anything
    wait_for(lambda: str(made) not in {str(m["id"]) for m in zoom_on.state.meetings()}, timeout=90, interval=0.5)
    dlq = stack.info["calendar_stream_dlq_url"]
    assert not dlq_empty.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages")
