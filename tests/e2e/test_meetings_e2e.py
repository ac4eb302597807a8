"""Meetings through the stack `make run` starts: HTTP to the local gateway, calendar writes to its moto server,
the stream and queue pollers, the Zoom emulator (whose call log counts what reached "Zoom")."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devstack.aws import aws_client
from devstack.zoom_emulator import complete_consent
from tests.e2e.conftest import E2EStack
from tests.support.calendar import CalendarWrites
from tests.support.waiting import wait_for

FUTURE = {
    "subject": "Quarterly planning",
    "start": "2099-03-29T01:30:00+01:00",
    "end": "2099-03-29T03:30:00+02:00",
    "time_zone": "Europe/Berlin",
}  # across Berlin's DST change: one hour, 00:30Z
CREATE = ("POST", "/v2/users/me/meetings")


@dataclass
class Emulator:
    url: str

    def _http(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{self.url}/_emulator{path}", json=body, timeout=10)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def calls(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        return [
            c
            for c in self._http("GET", "/calls")
            if c["path"].startswith("/v2/")
            and (method is None or c["method"] == method)
            and (path is None or c["path"] == path)
        ]

    def clear(self) -> None:
        self._http("DELETE", "/calls")
        self._http("DELETE", "/faults")
        self._http("POST", "/latency", {"ms": 0})

    def fault(self, method: str, path: str, **fields: Any) -> None:
        self._http("POST", "/faults", {"method": method, "path": path, **fields})

    def latency(self, ms: int) -> None:
        self._http("POST", "/latency", {"ms": ms})

    def meetings(self) -> dict[str, dict[str, Any]]:
        return {str(m["id"]): m for m in self._http("GET", "/meetings")}

    def remove(self, meeting_id: str, webhook_url: str | None = None) -> Any:
        return self._http("DELETE", f"/meetings/{meeting_id}", {"webhook_url": webhook_url} if webhook_url else {})


@dataclass
class User:
    api_url: str
    token: str
    user_id: str
    upn: str

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 30
    ) -> requests.Response:
        return requests.request(
            method,
            f"{self.api_url}{path}",
            json=body,
            timeout=timeout,
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
        )

    def connect_zoom(self) -> None:
        authorize_url = self.call("GET", "/v1/zoom/authorize").json()["authorize_url"]
        location = complete_consent(authorize_url, self.upn, "any-password")
        assert requests.get(location, timeout=30).status_code == 200

    def disconnect_zoom(self) -> None:
        assert self.call("DELETE", "/v1/account/preferences/Zoom/oauth").status_code in (204, 404)


def sign_in(stack: E2EStack, role: str) -> User:
    demo = stack.user(role)
    answer = requests.post(
        f"{stack.api_url}/v1/session", json={"username": demo["username"], "password": demo["password"]}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return User(stack.api_url, body["token"], body["user"]["id"], demo["upn"])


class Calendar(CalendarWrites):
    """The Link server's writes to the stack's calendar table."""

    def __init__(self, stack: E2EStack) -> None:
        super().__init__(stack.aws("dynamodb"), stack.info["calendar_table"])

    def status_of(self, user_id: str, event_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_for(lambda: (item := self.item(user_id, event_id)).get("zoom_status") == status and item, timeout)


@pytest.fixture(scope="session")
def emulator(stack: E2EStack) -> Emulator:
    assert stack.zoom_emulator_url, "these tests need the stack's own Zoom emulator"
    return Emulator(stack.zoom_emulator_url)


@pytest.fixture(scope="session")
def admin(stack: E2EStack) -> User:
    return sign_in(stack, "admin")


@pytest.fixture(scope="session")
def alice(stack: E2EStack, admin: User) -> User:
    """The demo user, connected to Zoom once for the session; the switch on."""
    assert admin.call("PUT", "/v1/admin/features/zoom", {"enabled": True}).json() == {"enabled": True}
    user = sign_in(stack, "user")
    user.connect_zoom()
    return user


@pytest.fixture
def zoom(emulator: Emulator, alice: User, admin: User) -> Iterator[Emulator]:
    admin.call("PUT", "/v1/admin/features/zoom", {"enabled": True})
    emulator.clear()
    yield emulator
    emulator.clear()


@pytest.fixture(scope="session")
def calendar(stack: E2EStack) -> Calendar:
    return Calendar(stack)


def settle(seconds: float = 3.0) -> None:
    """Longer than the stream's delivery (< 2 s) plus the handler's work: whatever was coming has come."""
    time.sleep(seconds)


# ---------------------------------------------------------------- routes


def test_compose_link_over_http_with_an_idempotency_key(zoom: Emulator, alice: User) -> None:
    key = {"Idempotency-Key": f"mail-{uuid.uuid4()}"}
    first = alice.call("POST", "/v1/compose-link", {"topic": "From an email", "duration_minutes": 25}, key)
    again = alice.call("POST", "/v1/compose-link", {"topic": "From an email", "duration_minutes": 25}, key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    answer = first.json()
    meeting = zoom.meetings()[answer["meeting_id"]]
    assert (meeting["type"], meeting["duration"], meeting["start_time"]) == (2, 25, answer["start_time"])
    assert len(zoom.calls(*CREATE)) == 1

    reused = alice.call("POST", "/v1/compose-link", {"topic": "Another email", "duration_minutes": 25}, key)
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert len(zoom.calls(*CREATE)) == 1


def test_event_routes_create_move_once_and_delete(zoom: Emulator, alice: User) -> None:
    path = f"/v1/events/{uuid.uuid4()}/zoom"
    body = {
        "topic": "Review",
        "start": "2099-11-01T01:30:00-04:00",
        "end": "2099-11-01T01:15:00-05:00",
        "time_zone": "America/New_York",
    }
    first = alice.call("PUT", path, body)
    assert first.status_code == 200, first.text
    assert (first.json()["start_time"], first.json()["duration_minutes"]) == ("2099-11-01T05:30:00Z", 45)
    assert alice.call("PUT", path, body).json() == first.json()
    moved = alice.call("PUT", path, {**body, "topic": "Review (moved)"})
    meeting_id = first.json()["meeting_id"]
    assert moved.json()["meeting_id"] == meeting_id
    assert [c["method"] for c in zoom.calls()] == ["POST", "PATCH"]
    assert alice.call("DELETE", path).status_code == 204
    assert meeting_id not in zoom.meetings()
    assert alice.call("DELETE", path).status_code == 204
    assert alice.call("PUT", path, {**body, "end": body["start"]}).json()["error"]["code"] == "invalid_time_range"


COMPOSE_FAULTS = [
    ({"status": 429, "retry_after": 1}, 201),
    ({"status": 429}, 201),
    ({"status": 429, "retry_after": 3600}, 429),
    ({"status": 500}, 502),  # Zoom may have made it: a create is never re-sent blind
    ({"status": 503, "times": 3}, 502),
    ({"status": 401}, 201),  # the access token is refreshed once and the call retried
    ({"status": 201, "body": "{not json"}, 502),  # an unreadable answer to a create is never re-sent
    ({"delay_ms": 8500}, 201),  # slower than a move's read timeout: a create waits, and is not sent twice
]


@pytest.mark.parametrize(
    ("fault", "status"),
    COMPOSE_FAULTS,
    ids=["429-retry-after", "429-backoff", "429-daily", "500", "503", "401", "malformed", "timeout"],
)
def test_compose_link_zoom_fault_matrix(zoom: Emulator, alice: User, fault: dict[str, Any], status: int) -> None:
    zoom.fault("POST", "/v2/users/me/meetings", **fault)
    answer = alice.call("POST", "/v1/compose-link", {})
    assert answer.status_code == status, answer.text
    if status == 429:
        assert answer.json()["error"]["code"] == "zoom_rate_limited" and int(answer.headers["Retry-After"]) > 60
    if status == 502:
        assert answer.json()["error"]["code"] == "zoom_unavailable"
    if fault.get("delay_ms") or fault.get("status", 0) >= 500:
        assert len(zoom.calls(*CREATE)) == 1


@pytest.mark.parametrize(
    ("method", "fault", "status"),
    [
        ("PATCH", {"status": 500}, 200),
        ("PATCH", {"status": 429, "retry_after": 1}, 200),
        ("PATCH", {"status": 404}, 200),  # deleted at Zoom meanwhile: a new meeting replaces it
        ("PATCH", {"status": 503, "times": 3}, 502),
        ("DELETE", {"status": 404}, 204),  # 3001: counts as deleted
        ("DELETE", {"status": 500}, 204),
        ("DELETE", {"status": 401}, 204),
    ],
)
def test_event_route_zoom_fault_matrix(
    zoom: Emulator, alice: User, method: str, fault: dict[str, Any], status: int
) -> None:
    path = f"/v1/events/{uuid.uuid4()}/zoom"
    body = {"topic": "Faults", "start": "2099-01-01T10:00:00Z", "end": "2099-01-01T10:30:00Z"}
    meeting_id = alice.call("PUT", path, body).json()["meeting_id"]
    zoom.fault(method, f"/v2/meetings/{meeting_id}", **fault)
    if method == "PATCH":
        answer = alice.call("PUT", path, {**body, "end": "2099-01-01T11:00:00Z"})
    else:
        answer = alice.call("DELETE", path)
    assert answer.status_code == status, answer.text


# ---------------------------------------------------------------- the calendar stream


def test_stream_create_move_once_no_calls_for_unrelated_edits_toggle_and_remove(
    zoom: Emulator, alice: User, calendar: Calendar
) -> None:
    event_id = f"e2e-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    item = calendar.status_of(alice.user_id, event_id, "scheduled")
    meeting_id = item["zoom_meeting_id"]
    meeting = zoom.meetings()[meeting_id]
    assert (meeting["start_time"], meeting["duration"], meeting["timezone"]) == (
        "2099-03-29T00:30:00Z",
        60,
        "Europe/Berlin",
    )
    settle()  # the write-back's own stream record comes and goes
    assert len(zoom.calls()) == 1

    zoom.clear()
    calendar.update(alice.user_id, event_id, location="Room 12", body="Agenda attached")
    calendar.update(alice.user_id, event_id, subject=FUTURE["subject"])  # rewritten, unchanged
    settle()
    assert zoom.calls() == []

    calendar.update(alice.user_id, event_id, end="2099-03-29T04:00:00+02:00")
    wait_for(lambda: zoom.meetings()[meeting_id]["duration"] == 90)
    settle()
    assert [(c["method"], c["path"]) for c in zoom.calls()] == [("PATCH", f"/v2/meetings/{meeting_id}")]

    zoom.clear()
    calendar.update(alice.user_id, event_id, zoom=False)
    wait_for(lambda: meeting_id not in zoom.meetings())
    wait_for(lambda: "zoom_status" not in calendar.item(alice.user_id, event_id))
    calendar.update(alice.user_id, event_id, zoom=True)
    second = calendar.status_of(alice.user_id, event_id, "scheduled")["zoom_meeting_id"]
    assert second != meeting_id

    zoom.remove(second)  # deleted in the Zoom app, no webhook: our delete answers 3001
    calendar.delete(alice.user_id, event_id)
    wait_for(lambda: zoom.calls("DELETE", f"/v2/meetings/{second}"))
    assert zoom.calls("DELETE", f"/v2/meetings/{second}")[0]["status"] == 404
    settle(2)
    assert len(zoom.calls("DELETE", f"/v2/meetings/{second}")) == 1


def test_replayed_and_concurrent_records_make_one_meeting(
    zoom: Emulator, alice: User, calendar: Calendar, stack: E2EStack
) -> None:
    """The same INSERT record delivered many times at once (as retries and a replay would) makes one meeting."""
    zoom.latency(100)
    event_id = f"e2e-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    meeting_id = calendar.status_of(alice.user_id, event_id, "scheduled")["zoom_meeting_id"]
    records = _stream_records(stack, alice.user_id, event_id)
    lam = aws_client("lambda", stack.info["lambda_endpoint_url"])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: json.loads(
                    lam.invoke(FunctionName="CalendarStreamFunction", Payload=json.dumps({"Records": records * 3}))[
                        "Payload"
                    ].read()
                ),
                range(4),
            )
        )
    assert all(answer == {"batchItemFailures": []} for answer in answers)
    assert len(zoom.calls(*CREATE)) == 1
    assert calendar.item(alice.user_id, event_id)["zoom_meeting_id"] == meeting_id


def _stream_records(stack: E2EStack, user_id: str, event_id: str) -> list[dict[str, Any]]:
    from link_zoom.adapters.stream_dead_letters import as_lambda_record

    table = stack.aws("dynamodb").describe_table(TableName=stack.info["calendar_table"])["Table"]
    streams = stack.aws("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=table["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    found = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        found += [
            as_lambda_record(r, table["LatestStreamArn"])
            for r in page["Records"]
            if r["dynamodb"]["Keys"]["event_id"]["S"] == event_id and r["dynamodb"]["Keys"]["user_id"]["S"] == user_id
        ]
        iterator = page.get("NextShardIterator") if page["Records"] else None
    return found


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ({"status": 429, "retry_after": 1}, "scheduled"),
        ({"status": 429}, "scheduled"),
        ({"status": 500}, "scheduled"),
        ({"status": 500, "after_handling": True}, "scheduled"),  # made, then 500: adopted, not made twice
        ({"status": 503, "times": 3}, "scheduled"),  # the record fails; the stream mapping's retry succeeds
        ({"delay_ms": 8500}, "scheduled"),  # a slow create is waited for, not sent twice
        ({"status": 201, "body": "nonsense"}, "scheduled"),
        ({"status": 401}, "scheduled"),
        ({"status": 400, "body": '{"code": 300, "message": "Invalid field."}'}, "failed"),
    ],
)
def test_stream_zoom_fault_matrix(
    zoom: Emulator, alice: User, calendar: Calendar, fault: dict[str, Any], outcome: str
) -> None:
    event_id = f"e2e-{uuid.uuid4()}"
    before = len(zoom.meetings())
    zoom.fault("POST", "/v2/users/me/meetings", **fault)
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    item = calendar.status_of(alice.user_id, event_id, outcome, timeout=30)
    if outcome == "failed":
        assert item["zoom_error"].startswith("Zoom refused")
    else:
        assert item["zoom_meeting_id"] in zoom.meetings()
        assert len(zoom.meetings()) == before + 1  # whatever the fault, one meeting


def test_zoom_down_longer_than_every_stream_retry_heals_without_a_person(
    zoom: Emulator, alice: User, calendar: Calendar, stack: E2EStack
) -> None:
    """Records that fail every stream retry land in the DLQ, are turned into per-event work at once and retried
    with back-off: once Zoom is back, every event written meanwhile has its one meeting, nobody replayed."""
    sqs = stack.aws("sqs")
    dlq = stack.info["calendar_stream_dlq_url"]
    events = [f"e2e-{uuid.uuid4()}" for _ in range(3)]
    before = len(zoom.meetings())
    zoom.fault("POST", "/v2/users/me/meetings", status=503, times=10_000)
    for event_id in events:
        calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    # Every stream retry fails (6 attempts each), and the work retried from the queue fails too for a while.
    wait_for(lambda: len(zoom.calls(*CREATE)) >= 3 * 8, timeout=120, interval=0.5)
    for event_id in events:
        assert calendar.item(alice.user_id, event_id).get("zoom_status") is None
    zoom.clear()  # Zoom is back
    for event_id in events:
        item = calendar.status_of(alice.user_id, event_id, "scheduled", timeout=90)
        assert item["zoom_meeting_id"] in zoom.meetings()
    assert len(zoom.meetings()) == before + 3, "one meeting per event, none twice"
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1), "the DLQ was emptied by itself"


def test_zooms_daily_limit_is_waited_out_rate_limited_then_scheduled(
    zoom: Emulator, alice: User, calendar: Calendar
) -> None:
    """Over the daily limit an event says `rate_limited`; the service retries it after Zoom's Retry-After (the
    emulator's day shortened to 15 s) and it ends `scheduled`: no record fails, nothing is given up."""
    events = [f"e2e-{uuid.uuid4()}" for _ in range(3)]
    zoom._http("POST", "/daily-limit", {"limit": 1, "window_seconds": 15})
    try:
        for event_id in events:
            calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
        limited = wait_for(
            lambda: [e for e in events if calendar.item(alice.user_id, e).get("zoom_status") == "rate_limited"],
            timeout=30,
            interval=0.2,
        )
        assert calendar.item(alice.user_id, limited[0])["zoom_error"]
        for event_id in events:
            item = calendar.status_of(alice.user_id, event_id, "scheduled", timeout=120)
            assert item["zoom_meeting_id"] in zoom.meetings()
    finally:
        zoom._http("POST", "/daily-limit", {"limit": 100, "window_seconds": 86400})


def test_meeting_deleted_at_zoom_marks_the_event(
    zoom: Emulator, alice: User, calendar: Calendar, stack: E2EStack
) -> None:
    event_id = f"e2e-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    meeting_id = calendar.status_of(alice.user_id, event_id, "scheduled")["zoom_meeting_id"]
    delivery = zoom.remove(meeting_id, webhook_url=f"{stack.api_url}/v1/zoom/webhook")
    assert delivery["webhook"]["status"] == 200, delivery
    item = calendar.status_of(alice.user_id, event_id, "deleted_at_zoom")
    assert "zoom_meeting_id" not in item and "zoom_join_url" not in item
    zoom.clear()
    settle()
    assert zoom.calls() == []


def test_the_sweep_after_connecting_gives_waiting_events_their_meetings(
    zoom: Emulator, admin: User, calendar: Calendar
) -> None:
    admin.disconnect_zoom()
    waiting, ended = f"e2e-{uuid.uuid4()}", f"e2e-{uuid.uuid4()}"
    calendar.put(admin.user_id, waiting, **FUTURE, zoom=True)
    calendar.put(
        admin.user_id, ended, **{**FUTURE, "start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"}, zoom=True
    )
    item = calendar.status_of(admin.user_id, waiting, "authorization_required")
    assert item["zoom_error"]
    calendar.status_of(admin.user_id, ended, "authorization_required")

    began = time.monotonic()
    admin.connect_zoom()
    scheduled = calendar.status_of(admin.user_id, waiting, "scheduled", timeout=60)
    print(f"sweep after connect: {time.monotonic() - began:.1f} s")
    assert scheduled["zoom_meeting_id"] in zoom.meetings()
    assert calendar.item(admin.user_id, ended)["zoom_status"] == "authorization_required"


def test_with_the_switch_off_events_get_feature_disabled_and_deletes_still_happen(
    zoom: Emulator, alice: User, admin: User, calendar: Calendar
) -> None:
    kept = f"e2e-{uuid.uuid4()}"
    calendar.put(alice.user_id, kept, **FUTURE, zoom=True)
    meeting_id = calendar.status_of(alice.user_id, kept, "scheduled")["zoom_meeting_id"]
    settle()
    zoom.clear()
    admin.call("PUT", "/v1/admin/features/zoom", {"enabled": False})
    try:
        fresh = f"e2e-{uuid.uuid4()}"
        calendar.put(alice.user_id, fresh, **FUTURE, zoom=True)
        assert calendar.status_of(alice.user_id, fresh, "feature_disabled")["zoom_error"]
        assert alice.call("POST", "/v1/compose-link", {}).json()["error"]["code"] == "feature_disabled"
        calendar.delete(alice.user_id, kept)
        wait_for(lambda: meeting_id not in zoom.meetings())
        assert len(zoom.calls(*CREATE)) == 0
    finally:
        admin.call("PUT", "/v1/admin/features/zoom", {"enabled": True})
