"""Meetings end to end below the gateway: handlers, the moto server's tables and stream, the Zoom emulator."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from devstack.aws import LocalResources
from devstack.events import api_event
from devstack.zoom_emulator import EmulatorHandle, sign_webhook
from tests.integration.connection.zoom_flow import KmsCounter, Person, connect, new_person
from tests.integration.meetings.conftest import body_of, context
from tests.integration.meetings.stream_tap import CalendarTable

pytestmark = pytest.mark.integration

EVENT_PATH = "/v1/events/{event_id}/zoom"
FUTURE = {
    "subject": "Design review",
    "start": "2099-06-01T10:00:00+02:00",
    "end": "2099-06-01T11:00:00+02:00",
    "time_zone": "Europe/Berlin",
}


def request(
    functions: dict[str, Any],
    method: str,
    path: str,
    person: Person,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    event_id = path.split("/")[3] if path.startswith("/v1/events/") else None
    event = api_event(
        method,
        path,
        resource=EVENT_PATH if event_id else None,
        path_parameters={"event_id": event_id} if event_id else None,
        headers={"X-Forwarded-Proto": "http", **(headers or {})},
        body=json.dumps(body) if body is not None else None,
        authorizer=person.authorizer,
    )
    response: dict[str, Any] = functions["meetings"].handler(event, context())
    return response


def meetings_at(zoom: EmulatorHandle) -> dict[str, dict[str, Any]]:
    return {str(m["id"]): m for m in zoom.state.meetings()}


def zoom_calls(zoom: EmulatorHandle, method: str | None = None) -> list[tuple[str, str, int]]:
    return [
        (c["method"], c["path"], c["status"])
        for c in zoom.calls
        if c["path"].startswith("/v2/") and (method is None or c["method"] == method)
    ]


def deliver(functions: dict[str, Any], calendar: CalendarTable) -> dict[str, Any]:
    """Hands the stream's new records to the stream function, as the event source mapping would."""
    records = calendar.new_records()
    answer: dict[str, Any] = functions["calendar_stream"].handler({"Records": records}, context(120, "calendar-stream"))
    return answer


# ---------------------------------------------------------------- compose-link


def test_compose_link_makes_a_scheduled_meeting_starting_this_minute(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    response = request(functions, "POST", "/v1/compose-link", alice, {"topic": "Quick sync", "duration_minutes": 20})
    assert response["statusCode"] == 201, response["body"]
    answer = body_of(response)
    meeting = meetings_at(zoom)[answer["meeting_id"]]
    assert meeting["type"] == 2 and meeting["topic"] == "Quick sync" and meeting["duration"] == 20
    assert meeting["timezone"] == "UTC" and not meeting["start_time_replaced"]
    assert meeting["start_time"] in {answer["start_time"]} and answer["start_time"] in {
        minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:00Z"),
    }
    assert answer["join_url"] == meeting["join_url"] and answer["password"] == meeting["password"]
    assert zoom_calls(zoom) == [("POST", "/v2/users/me/meetings", 201)]


def test_a_repeated_idempotency_key_creates_nothing(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    bob = new_person("bob")
    connect(functions["zoom_oauth"], bob)
    key = {"Idempotency-Key": f"mail-{uuid.uuid4()}"}
    first = request(functions, "POST", "/v1/compose-link", alice, {}, key)
    again = request(functions, "POST", "/v1/compose-link", alice, {}, key)
    assert first["statusCode"] == again["statusCode"] == 201 and body_of(first) == body_of(again)
    bobs = request(functions, "POST", "/v1/compose-link", bob, {}, key)
    assert body_of(bobs)["meeting_id"] != body_of(first)["meeting_id"]
    assert len(zoom_calls(zoom, "POST")) == 2


def test_not_connected_gets_an_authorize_url_to_open_at_once(zoom: EmulatorHandle, functions: dict[str, Any]) -> None:
    stranger = new_person("stranger")
    response = request(functions, "POST", "/v1/compose-link", stranger, {})
    assert response["statusCode"] == 403
    error = body_of(response)["error"]
    assert error["code"] == "zoom_authorization_required"
    url = urlsplit(error["authorize_url"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}" == zoom.oauth_base_url and url.path == "/oauth/authorize"
    assert query["client_id"] == [zoom.config.client_id] and query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"][0].endswith("/v1/zoom/callback")
    assert zoom_calls(zoom) == []


# ---------------------------------------------------------------- PUT / DELETE an event's meeting


@pytest.mark.parametrize(
    ("zone", "start", "end", "utc_start", "minutes"),
    [
        ("Europe/Berlin", "2099-03-29T01:30:00+01:00", "2099-03-29T03:30:00+02:00", "2099-03-29T00:30:00Z", 60),
        ("America/New_York", "2099-11-01T01:30:00-04:00", "2099-11-01T01:15:00-05:00", "2099-11-01T05:30:00Z", 45),
        ("Asia/Kolkata", "2099-01-01T00:10:00+05:30", "2099-01-01T00:55:20+05:30", "2098-12-31T18:40:00Z", 46),
        ("Australia/Lord_Howe", "2099-04-05T01:45:00+11:00", "2099-04-05T01:45:00+10:30", "2099-04-04T14:45:00Z", 30),
    ],
)
def test_event_meetings_are_exact_to_the_minute_in_every_zone(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    zone: str,
    start: str,
    end: str,
    utc_start: str,
    minutes: int,
) -> None:
    body = {"topic": "Zoned", "start": start, "end": end, "time_zone": zone}
    response = request(functions, "PUT", f"/v1/events/{uuid.uuid4()}/zoom", alice, body)
    assert response["statusCode"] == 200, response["body"]
    answer = body_of(response)
    meeting = meetings_at(zoom)[answer["meeting_id"]]
    assert (meeting["start_time"], meeting["duration"], meeting["timezone"]) == (utc_start, minutes, zone)
    assert (answer["start_time"], answer["duration_minutes"]) == (utc_start, minutes)


def test_put_creates_once_moves_only_on_real_changes_and_delete_always_works(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    path = f"/v1/events/{uuid.uuid4()}/zoom"
    body = {"topic": "Weekly", "start": "2099-05-04T09:00:00+02:00", "end": "2099-05-04T09:30:00+02:00"}
    first = body_of(request(functions, "PUT", path, alice, body))
    assert body_of(request(functions, "PUT", path, alice, body)) == first
    assert zoom_calls(zoom) == [("POST", "/v2/users/me/meetings", 201)]

    moved = body_of(request(functions, "PUT", path, alice, {**body, "end": "2099-05-04T10:00:00+02:00"}))
    assert moved["meeting_id"] == first["meeting_id"] and moved["duration_minutes"] == 60
    assert zoom_calls(zoom, "PATCH") == [("PATCH", f"/v2/meetings/{first['meeting_id']}", 204)]

    assert request(functions, "DELETE", path, alice)["statusCode"] == 204
    assert first["meeting_id"] not in meetings_at(zoom)
    zoom.clear_calls()
    assert request(functions, "DELETE", path, alice)["statusCode"] == 204
    assert zoom_calls(zoom) == []


def test_delete_works_with_the_switch_off_and_tolerates_3001(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    from link_zoom.adapters import flag

    path = f"/v1/events/{uuid.uuid4()}/zoom"
    made = body_of(
        request(functions, "PUT", path, alice, {"topic": "x", "start": FUTURE["start"], "end": FUTURE["end"]})
    )
    zoom.state.remove_meeting(int(made["meeting_id"]))  # deleted in the Zoom app
    flag.set_zoom_enabled(False)
    assert request(functions, "DELETE", path, alice)["statusCode"] == 204
    assert zoom_calls(zoom, "DELETE") == [("DELETE", f"/v2/meetings/{made['meeting_id']}", 404)]
    assert (
        request(functions, "PUT", path, alice, {"topic": "x", "start": FUTURE["start"], "end": FUTURE["end"]})[
            "statusCode"
        ]
        == 403
    )


def test_racing_puts_make_one_meeting(zoom: EmulatorHandle, functions: dict[str, Any], alice: Person) -> None:
    zoom.set_latency(150)
    path = f"/v1/events/{uuid.uuid4()}/zoom"
    body = {"topic": "Race", "start": FUTURE["start"], "end": FUTURE["end"]}
    answers: list[dict[str, Any]] = []
    barrier = threading.Barrier(5)

    def put() -> None:
        barrier.wait()
        answers.append(request(functions, "PUT", path, alice, body))

    threads = [threading.Thread(target=put) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a["statusCode"] for a in answers] == [200] * 5
    assert len({body_of(a)["meeting_id"] for a in answers}) == 1
    assert len(zoom_calls(zoom, "POST")) == 1


# ---------------------------------------------------------------- the Zoom fault matrix on the API paths


FAULTS = [
    # (fault, expected status, Zoom requests made)
    (dict(status=429, retry_after=1), 201, 2),
    (dict(status=429), 201, 2),
    (dict(status=429, retry_after=120), 429, 1),
    (dict(status=500), 502, 1),  # Zoom may have made it: a create is never re-sent blind
    (dict(status=503, times=3), 502, 1),
    (dict(status=None, delay_ms=1500), 201, 1),  # slower than a move's read timeout: a create waits for it
    (dict(status=201, body="{not json"), 502, 1),  # a 2xx: Zoom made it, so the create is never re-sent
    (dict(status=400, body='{"code": 300, "message": "Invalid field."}'), 502, 1),
]


@pytest.mark.parametrize(
    ("fault", "status", "requests"),
    FAULTS,
    ids=[
        "429-retry-after",
        "429-backoff",
        "429-too-long",
        "500",
        "503",
        "timeout",
        "malformed-json",
        "300-invalid-field",
    ],
)
def test_compose_link_fault_matrix(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    fault: dict[str, Any],
    status: int,
    requests: int,
) -> None:
    zoom.add_fault("POST", "/v2/users/me/meetings", **fault)
    response = request(functions, "POST", "/v1/compose-link", alice, {})
    assert response["statusCode"] == status, response["body"]
    if fault.get("delay_ms"):
        time.sleep(fault["delay_ms"] / 1000)  # the emulator logs the slow request when it finally answers
    assert len(zoom_calls(zoom, "POST")) == requests
    if status == 429:
        assert body_of(response)["error"]["code"] == "zoom_rate_limited"
        assert int(response["multiValueHeaders"]["Retry-After"][0]) >= 100
    if status == 502:
        assert body_of(response)["error"]["code"] == "zoom_unavailable"


def test_once_the_daily_limit_is_met_the_routes_answer_429_at_once_and_deletes_still_work(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, local_aws: LocalResources
) -> None:
    """Zoom's daily quota at 2 (the emulator's day shortened to 30 s): the third create is Zoom's 429; from then on
    compose-link and PUT answer 429 zoom_rate_limited with Retry-After without asking Zoom, a DELETE still deletes,
    and the marker holds no longer than Zoom's Retry-After."""
    zoom.state.set_daily_limit(2, 30)
    try:
        zoom.state.advance_clock(30 - zoom.state.now() % 30 + 0.05)  # a fresh quota day starts now
        path = f"/v1/events/{uuid.uuid4()}/zoom"
        made = body_of(
            request(functions, "PUT", path, alice, {"topic": "x", "start": FUTURE["start"], "end": FUTURE["end"]})
        )
        assert request(functions, "POST", "/v1/compose-link", alice, {})["statusCode"] == 201
        refused = request(functions, "POST", "/v1/compose-link", alice, {})
        assert refused["statusCode"] == 429 and len(zoom_calls(zoom, "POST")) == 3
        zoom.clear_calls()
        for answer in (
            request(functions, "POST", "/v1/compose-link", alice, {}),
            request(
                functions,
                "PUT",
                f"/v1/events/{uuid.uuid4()}/zoom",
                alice,
                {"topic": "y", "start": FUTURE["start"], "end": FUTURE["end"]},
            ),
            request(functions, "PUT", path, alice, {"topic": "moved", "start": FUTURE["start"], "end": FUTURE["end"]}),
        ):
            assert answer["statusCode"] == 429 and body_of(answer)["error"]["code"] == "zoom_rate_limited"
            assert 1 <= int(answer["multiValueHeaders"]["Retry-After"][0]) <= 30
        assert zoom_calls(zoom) == [], "known limited: nothing sent to Zoom"
        assert request(functions, "DELETE", path, alice)["statusCode"] == 204
        assert zoom_calls(zoom) == [("DELETE", f"/v2/meetings/{made['meeting_id']}", 204)], "deletes never wait"
        marker = local_aws.client("dynamodb").get_item(
            TableName=local_aws.tables["MeetingLinksTable"],
            Key={"user_id": {"S": alice.user_id}, "event_id": {"S": "#zoom-daily-limit"}},
        )["Item"]
        assert 0 < float(marker["zoom_limited_until"]["N"]) - time.time() <= 30, "bounded by Zoom's Retry-After"
    finally:
        zoom.state.set_daily_limit(100, 86400)


def test_a_create_that_times_out_is_not_sent_again(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from link_zoom import config

    monkeypatch.setattr(config, "ZOOM_CREATE_READ_TIMEOUT_S", 0.5)
    zoom.add_fault("POST", "/v2/users/me/meetings", delay_ms=1000)
    response = request(functions, "POST", "/v1/compose-link", alice, {})
    assert response["statusCode"] == 502 and body_of(response)["error"]["code"] == "zoom_unavailable"
    time.sleep(1)  # Zoom finishes the one request it got
    assert len(zoom_calls(zoom, "POST")) == 1


def test_a_slow_move_is_sent_again_after_the_read_timeout(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    path = f"/v1/events/{uuid.uuid4()}/zoom"
    body = {"topic": "Slow", "start": FUTURE["start"], "end": FUTURE["end"]}
    made = body_of(request(functions, "PUT", path, alice, body))
    zoom.add_fault("PATCH", f"/v2/meetings/{made['meeting_id']}", delay_ms=1500)
    response = request(functions, "PUT", path, alice, {**body, "topic": "Slow, moved"})
    assert response["statusCode"] == 200
    time.sleep(1)
    assert len(zoom_calls(zoom, "PATCH")) == 2
    assert meetings_at(zoom)[made["meeting_id"]]["topic"] == "Slow, moved"


def test_compose_link_after_a_401_refreshes_once_and_succeeds(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    zoom.add_fault("POST", "/v2/users/me/meetings", 401)
    response = request(functions, "POST", "/v1/compose-link", alice, {})
    assert response["statusCode"] == 201
    assert [(c["method"], c["path"], c["status"]) for c in zoom.calls] == [
        ("POST", "/v2/users/me/meetings", 401),
        ("POST", "/oauth/token", 200),
        ("POST", "/v2/users/me/meetings", 201),
    ]


def test_a_revoked_app_is_403_authorization_required(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person
) -> None:
    zoom.state.deauthorize(alice.email)
    response = request(functions, "POST", "/v1/compose-link", alice, {})
    assert response["statusCode"] == 403
    assert body_of(response)["error"]["code"] == "zoom_authorization_required"
    path = f"/v1/events/{uuid.uuid4()}/zoom"
    response = request(functions, "PUT", path, alice, {"topic": "t", "start": FUTURE["start"], "end": FUTURE["end"]})
    assert body_of(response)["error"]["code"] == "zoom_authorization_required"


@pytest.mark.parametrize(
    ("fault", "status"),
    [(dict(status=500, times=3), 502), (dict(status=404), 204), (dict(status=429, retry_after=1), 204)],
)
def test_delete_event_fault_matrix(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, fault: dict[str, Any], status: int
) -> None:
    path = f"/v1/events/{uuid.uuid4()}/zoom"
    made = body_of(
        request(functions, "PUT", path, alice, {"topic": "t", "start": FUTURE["start"], "end": FUTURE["end"]})
    )
    zoom.add_fault("DELETE", f"/v2/meetings/{made['meeting_id']}", **fault)
    assert request(functions, "DELETE", path, alice)["statusCode"] == status
    if status == 502:  # kept for a retry, which works
        assert request(functions, "DELETE", path, alice)["statusCode"] == 204
    if fault["status"] != 404:
        assert made["meeting_id"] not in meetings_at(zoom)


# ---------------------------------------------------------------- the calendar stream


def test_the_stream_creates_moves_once_and_ignores_what_zoom_does_not_care_about(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable, local_aws: LocalResources
) -> None:
    from link_zoom.adapters.aws import client

    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    assert deliver(functions, calendar) == {"batchItemFailures": []}
    item = calendar.item(alice.user_id, event_id)
    assert item["zoom_status"] == "scheduled" and "zoom_error" not in item
    meeting = meetings_at(zoom)[item["zoom_meeting_id"]]
    assert item["zoom_join_url"] == meeting["join_url"]
    assert (meeting["start_time"], meeting["duration"], meeting["timezone"], meeting["topic"]) == (
        "2099-06-01T08:00:00Z",
        60,
        "Europe/Berlin",
        "Design review",
    )

    # The write-back's own record, and edits Zoom does not care about: no Zoom call, no KMS call.
    kms = KmsCounter()
    client("kms").meta.events.register("before-call.kms.*", kms)
    try:
        zoom.clear_calls()
        calendar.update(alice.user_id, event_id, location="Room 7")
        calendar.update(alice.user_id, event_id, subject="Design review")  # the same value again
        assert deliver(functions, calendar) == {"batchItemFailures": []}
        assert zoom.calls == [] and len(kms) == 0

        calendar.update(alice.user_id, event_id, start="2099-06-01T10:30:00+02:00")
        deliver(functions, calendar)
        deliver(functions, calendar)  # the write-back's record (none: nothing changed) and nothing else
        assert zoom_calls(zoom) == [("PATCH", f"/v2/meetings/{item['zoom_meeting_id']}", 204)]
        assert meetings_at(zoom)[item["zoom_meeting_id"]]["duration"] == 30
    finally:
        client("kms").meta.events.unregister("before-call.kms.*", kms)


def test_toggling_off_deletes_on_again_creates_and_remove_deletes_tolerating_3001(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    deliver(functions, calendar)
    first = calendar.item(alice.user_id, event_id)["zoom_meeting_id"]

    calendar.update(alice.user_id, event_id, zoom=False)
    deliver(functions, calendar)
    assert first not in meetings_at(zoom)
    assert not {k for k in calendar.item(alice.user_id, event_id) if k.startswith("zoom_")}

    calendar.update(alice.user_id, event_id, zoom=True)
    deliver(functions, calendar)
    second = calendar.item(alice.user_id, event_id)["zoom_meeting_id"]
    assert second != first and second in meetings_at(zoom)

    zoom.state.remove_meeting(int(second))  # gone at Zoom already: the delete answers 3001
    zoom.clear_calls()
    calendar.delete(alice.user_id, event_id)
    assert deliver(functions, calendar) == {"batchItemFailures": []}
    assert zoom_calls(zoom) == [("DELETE", f"/v2/meetings/{second}", 404)]


def test_replayed_and_concurrent_records_make_one_meeting(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    zoom.set_latency(100)
    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    records = calendar.new_records()
    handler = functions["calendar_stream"].handler
    threads = [threading.Thread(target=handler, args=({"Records": records * 2}, context(60))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler({"Records": records}, context(60))  # and once more, much later
    assert len(zoom_calls(zoom, "POST")) == 1
    assert calendar.item(alice.user_id, event_id)["zoom_meeting_id"] in meetings_at(zoom)


def test_a_put_made_meeting_is_the_one_the_insert_uses(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    event_id = f"evt-{uuid.uuid4()}"
    made = body_of(
        request(
            functions,
            "PUT",
            f"/v1/events/{event_id}/zoom",
            alice,
            {
                "topic": FUTURE["subject"],
                "start": FUTURE["start"],
                "end": FUTURE["end"],
                "time_zone": FUTURE["time_zone"],
            },
        )
    )
    zoom.clear_calls()
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    deliver(functions, calendar)
    assert calendar.item(alice.user_id, event_id)["zoom_meeting_id"] == made["meeting_id"]
    assert zoom.calls == []


def test_stream_fault_matrix(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    """Transient faults fail the record for a retry (no status written); a permanent refusal is `failed`; a 429
    is `rate_limited` and queued for after Zoom's Retry-After."""
    transient = f"evt-{uuid.uuid4()}"
    zoom.add_fault("POST", "/v2/users/me/meetings", 503)  # a create is not re-sent after a 5xx
    calendar.put(alice.user_id, transient, **FUTURE, zoom=True)
    answer = deliver(functions, calendar)
    assert len(answer["batchItemFailures"]) == 1
    assert "zoom_status" not in calendar.item(alice.user_id, transient)

    refused = f"evt-{uuid.uuid4()}"
    zoom.add_fault("POST", "/v2/users/me/meetings", 400, body='{"code": 300, "message": "Invalid field."}')
    calendar.put(alice.user_id, refused, **FUTURE, zoom=True)
    assert deliver(functions, calendar) == {"batchItemFailures": []}
    item = calendar.item(alice.user_id, refused)
    assert item["zoom_status"] == "failed" and item["zoom_error"].startswith("Zoom refused")

    limited = f"evt-{uuid.uuid4()}"
    zoom.add_fault("POST", "/v2/users/me/meetings", 429, retry_after=3600)
    calendar.put(alice.user_id, limited, **FUTURE, zoom=True)
    assert deliver(functions, calendar) == {"batchItemFailures": []}  # waited out by the work queue, not the DLQ
    assert calendar.item(alice.user_id, limited)["zoom_status"] == "rate_limited"


def test_an_unconnected_user_waits_then_the_sweep_after_connecting_gives_the_meetings(
    zoom: EmulatorHandle, functions: dict[str, Any], calendar: CalendarTable, local_aws: LocalResources
) -> None:
    carol = new_person("carol")
    calendar.put(carol.user_id, "soon", **FUTURE, zoom=True)
    calendar.put(
        carol.user_id, "ended", **{**FUTURE, "start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"}, zoom=True
    )
    deliver(functions, calendar)
    waiting = calendar.item(carol.user_id, "soon")
    assert waiting["zoom_status"] == "authorization_required" and waiting["zoom_error"]
    assert zoom_calls(zoom) == []

    connect(functions["zoom_oauth"], carol)  # queues the sweep
    sqs = local_aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=local_aws.queues["ConnectSweepQueue"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"user_id": carol.user_id}]
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sweep",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }
    assert functions["connect_sweep"].handler(event, context(300)) == {"batchItemFailures": []}
    assert calendar.item(carol.user_id, "soon")["zoom_status"] == "scheduled"
    assert calendar.item(carol.user_id, "ended")["zoom_status"] == "authorization_required"
    assert len(zoom_calls(zoom, "POST")) == 1


def test_meeting_deleted_at_zoom_reaches_the_item_through_the_webhook(
    zoom: EmulatorHandle, functions: dict[str, Any], alice: Person, calendar: CalendarTable
) -> None:
    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    deliver(functions, calendar)
    meeting_id = calendar.item(alice.user_id, event_id)["zoom_meeting_id"]
    removed = zoom.state.remove_meeting(int(meeting_id))
    assert removed is not None
    body = json.dumps(
        {
            "event": "meeting.deleted",
            "event_ts": int(time.time() * 1000),
            "payload": {"account_id": "a", "object": {"id": int(meeting_id), "host_id": "h"}},
        }
    ).encode()
    stamp = str(int(time.time()))
    event = api_event(
        "POST",
        "/v1/zoom/webhook",
        body=body,
        headers={
            "x-zm-request-timestamp": stamp,
            "x-zm-signature": sign_webhook(zoom.config.webhook_secret, stamp, body),
        },
    )
    assert functions["zoom_webhook"].handler(event, context())["statusCode"] == 200
    item = calendar.item(alice.user_id, event_id)
    assert item["zoom_status"] == "deleted_at_zoom"
    assert "zoom_meeting_id" not in item and "zoom_join_url" not in item
    zoom.clear_calls()
    assert deliver(functions, calendar) == {"batchItemFailures": []}  # its own write-back: nothing to do
    assert zoom.calls == []


def test_failing_records_reach_the_dlq_and_the_replay_reprocesses_them(
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    alice: Person,
    calendar: CalendarTable,
    local_aws: LocalResources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from link_zoom.adapters import stream_dead_letters

    event_id = f"evt-{uuid.uuid4()}"
    zoom.add_fault("POST", "/v2/users/me/meetings", 500)
    calendar.put(alice.user_id, event_id, **FUTURE, zoom=True)
    records = calendar.new_records()
    answer = functions["calendar_stream"].handler({"Records": records}, context(120))
    failed = answer["batchItemFailures"][0]["itemIdentifier"]
    # After its last retry, Lambda sends the on-failure record (what devstack's poller sends too).
    sqs = local_aws.client("sqs")
    dlq = local_aws.queues["CalendarStreamDLQ"]
    sqs.send_message(
        QueueUrl=dlq,
        MessageBody=json.dumps(
            {
                "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
                "version": "1.0",
                "timestamp": "2099-01-01T00:00:00.000Z",
                "DDBStreamBatchInfo": {
                    "shardId": calendar.shard_id,
                    "startSequenceNumber": failed,
                    "endSequenceNumber": failed,
                    "batchSize": 1,
                    "streamArn": calendar.stream_arn,
                },
            }
        ),
    )

    class InProcessLambda:
        def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
            import io

            result = functions["calendar_stream"].handler(json.loads(Payload), context(120))
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}

    monkeypatch.setattr(stream_dead_letters, "_lambda_client", lambda region, endpoint: InProcessLambda())
    monkeypatch.setenv("CALENDAR_STREAM_DLQ_URL", dlq)
    monkeypatch.setenv("CALENDAR_STREAM_FUNCTION", "calendar-stream")
    from link_zoom import composition
    from link_zoom.config import get_settings

    get_settings.cache_clear()
    composition.reset()  # what was built from the old settings
    summary = functions["dlq_replay"].handler({}, context(300))
    assert summary == {
        "messages": 1,
        "replayed": 1,
        "kept": 0,
        "unreadable": 0,
        "expired": 0,
        "records": 1,
        "failed_records": 0,
    }
    assert calendar.item(alice.user_id, event_id)["zoom_status"] == "scheduled"
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0)
    # One 500 (never re-sent blind), then the replay looks for what it made (nothing) and creates.
    assert len(zoom_calls(zoom, "POST")) == 2
