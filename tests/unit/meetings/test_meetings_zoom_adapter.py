"""The Zoom meetings adapter against a scripted transport (no sockets): bodies, retries, Zoom's errors, deadlines."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from link_zoom.adapters import zoom_meetings
from link_zoom.adapters.zoom_meetings import ZoomMeetingsApi
from link_zoom.deadline import Deadline
from link_zoom.domain.schedule import Schedule, parse_instant
from link_zoom.errors import (
    ZoomMeetingNotFound,
    ZoomOutcomeUnknown,
    ZoomRateLimited,
    ZoomRejected,
    ZoomTokenRejected,
    ZoomUnavailable,
)

TOKEN = "eyJsecret-access-token-value"
API = "https://api.zoom.test/v2"


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict/list: JSON; str: raw text
    headers: dict[str, str] = field(default_factory=dict)
    error: type[Exception] | Exception | None = None  # raised instead of answering (Timeout, ConnectionError)


class ScriptedTransport(BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Answer] = []
        self.requests: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.requests.append(request)
        self.timeouts.append(timeout)
        answer = self.answers.pop(0) if self.answers else Answer(204)
        if isinstance(answer.error, Exception):
            raise answer.error
        if answer.error is not None:
            raise answer.error("scripted")
        response = requests.Response()
        response.status_code = answer.status
        text = answer.body if isinstance(answer.body, str) else json.dumps(answer.body) if answer.body else ""
        response._content = text.encode()
        response.headers.update(answer.headers)
        response.request = request
        response.url = request.url or ""
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedTransport]:
    scripted = ScriptedTransport()
    session = requests.Session()
    session.mount("https://", scripted)
    monkeypatch.setattr(zoom_meetings, "_session", session)
    monkeypatch.setattr(zoom_meetings, "BACKOFF_BASE_S", 0.001)
    monkeypatch.setattr(zoom_meetings, "RATE_LIMIT_BACKOFF_S", 0.01)
    yield scripted


SCHEDULE = Schedule(
    "Budget review",
    parse_instant("2026-03-29T01:30:00+01:00") or pytest.fail(),
    parse_instant("2026-03-29T03:45:30+02:00") or pytest.fail(),
    "Europe/Berlin",
)
CREATED = {
    "id": 85746065432,
    "join_url": "https://zoom.test/j/85746065432?pwd=x",
    "password": "123456",
    "start_time": "2026-03-29T00:30:00Z",
    "duration": 76,
}


def api() -> ZoomMeetingsApi:
    return ZoomMeetingsApi(API + "/")


def test_create_sends_a_scheduled_meeting_in_utc_with_the_events_zone(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(201, CREATED)]
    meeting = api().create(TOKEN, SCHEDULE, Deadline(10))
    assert (meeting.meeting_id, meeting.password) == ("85746065432", "123456")
    sent = transport.requests[0]
    assert (sent.method, sent.url) == ("POST", f"{API}/users/me/meetings")
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(sent.body or b"") == {
        "topic": "Budget review",
        "type": 2,
        "start_time": "2026-03-29T00:30:00Z",
        "duration": 76,
        "timezone": "Europe/Berlin",
        "default_password": True,
        "settings": {"use_pmi": False},
    }


def test_timeouts_come_from_config_and_shrink_with_the_deadline(transport: ScriptedTransport) -> None:
    from link_zoom import config

    transport.answers = [Answer(201, CREATED), Answer(204), Answer(201, CREATED)]
    api().create(TOKEN, SCHEDULE, Deadline(60))
    api().update(TOKEN, "1", SCHEDULE, Deadline(60))
    assert transport.timeouts[0] == (config.ZOOM_CONNECT_TIMEOUT_S, config.ZOOM_CREATE_READ_TIMEOUT_S)
    assert transport.timeouts[1] == (config.ZOOM_CONNECT_TIMEOUT_S, config.ZOOM_READ_TIMEOUT_S)
    api().create(TOKEN, SCHEDULE, Deadline(2))
    connect, read = transport.timeouts[2]
    assert connect <= 2 and read <= 2


def test_update_patches_the_meeting(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(204)]
    api().update(TOKEN, "85746065432", SCHEDULE, Deadline(10))
    sent = transport.requests[0]
    assert (sent.method, sent.url) == ("PATCH", f"{API}/meetings/85746065432")
    assert json.loads(sent.body or b"") == {
        "topic": "Budget review",
        "start_time": "2026-03-29T00:30:00Z",
        "duration": 76,
        "timezone": "Europe/Berlin",
    }


def test_delete_and_an_already_deleted_meeting(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(204), Answer(404, {"code": 3001, "message": "Meeting does not exist: 1."})]
    assert api().delete(TOKEN, "1", Deadline(10)) is True
    assert api().delete(TOKEN, "1", Deadline(10)) is False
    assert [r.method for r in transport.requests] == ["DELETE", "DELETE"]


def test_a_missing_meeting_on_update_is_meeting_not_found(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(404, {"code": 3001, "message": "Meeting does not exist: 1."})]
    with pytest.raises(ZoomMeetingNotFound):
        api().update(TOKEN, "1", SCHEDULE, Deadline(10))


def test_401_is_token_rejected_without_retry(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(401, {"code": 124, "message": "Invalid access token."})]
    with pytest.raises(ZoomTokenRejected):
        api().create(TOKEN, SCHEDULE, Deadline(10))
    assert len(transport.requests) == 1


def test_429_waits_for_retry_after_then_succeeds(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(429, {"code": 429, "message": "slow down"}, {"Retry-After": "1"}), Answer(201, CREATED)]
    began = time.monotonic()
    api().create(TOKEN, SCHEDULE, Deadline(10))
    assert time.monotonic() - began >= 1.0 and len(transport.requests) == 2


def test_429_without_retry_after_backs_off_with_jitter_then_succeeds(transport: ScriptedTransport) -> None:
    transport.answers = [
        Answer(429, {"code": 429, "message": "x"}),
        Answer(429, {"code": 429, "message": "x"}),
        Answer(201, CREATED),
    ]
    api().create(TOKEN, SCHEDULE, Deadline(10))
    assert len(transport.requests) == 3


def test_429_with_a_retry_after_beyond_the_deadline_is_rate_limited_at_once(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(429, {"code": 429, "message": "Daily limit"}, {"Retry-After": "3600"})]
    with pytest.raises(ZoomRateLimited) as raised:
        api().create(TOKEN, SCHEDULE, Deadline(10))
    assert raised.value.headers == {"Retry-After": "3600"} and len(transport.requests) == 1
    assert not raised.value.daily_limit, "no X-RateLimit-Type: a per-second limit, not remembered per user"


def test_429_that_keeps_coming_is_rate_limited(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(429, {"code": 429, "message": "x"}) for _ in range(10)]
    with pytest.raises(ZoomRateLimited) as raised:
        api().create(TOKEN, SCHEDULE, Deadline(10))
    assert int(raised.value.headers["Retry-After"]) >= 1
    assert len(transport.requests) == zoom_meetings.MAX_RATE_LIMIT_WAITS + 1


def test_a_create_whose_connection_timed_out_is_retried_then_succeeds(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(error=requests.ConnectTimeout), Answer(201, CREATED)]
    assert api().create(TOKEN, SCHEDULE, Deadline(10)).meeting_id == "85746065432"
    assert len(transport.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        Answer(500, {"code": 500, "message": "Internal"}),
        Answer(503, "<html>Service Unavailable</html>"),
        Answer(error=requests.ConnectTimeout),
    ],
    ids=["500", "503", "connect-timeout"],
)
def test_moves_are_retried_after_transient_failures(transport: ScriptedTransport, failure: Answer) -> None:
    transport.answers = [failure, Answer(204)]
    api().update(TOKEN, "1", SCHEDULE, Deadline(10))
    assert len(transport.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [Answer(500, {"code": 500, "message": "x"}), Answer(error=requests.ConnectTimeout)],
    ids=["500", "connect-timeout"],
)
def test_transient_failures_that_persist_are_zoom_unavailable(transport: ScriptedTransport, failure: Answer) -> None:
    transport.answers = [failure] * 10
    with pytest.raises(ZoomUnavailable):
        api().update(TOKEN, "1", SCHEDULE, Deadline(10))
    assert len(transport.requests) == zoom_meetings.MAX_ATTEMPTS


def test_a_create_answered_with_a_5xx_is_not_sent_again(transport: ScriptedTransport) -> None:
    # Zoom may have made the meeting before its 5xx: the next attempt adopts it by its claim reference.
    transport.answers = [Answer(500, {"code": 500, "message": "Internal"}), Answer(201, CREATED)]
    with pytest.raises(ZoomOutcomeUnknown):
        api().create(TOKEN, SCHEDULE, Deadline(10))
    assert len(transport.requests) == 1


def test_every_create_asks_for_its_own_meeting_id_not_the_pmi(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(201, CREATED)]
    api().create(TOKEN, SCHEDULE, Deadline(10))
    assert json.loads(transport.requests[0].body or b"")["settings"] == {"use_pmi": False}


@pytest.mark.parametrize(
    "failure",
    [
        Answer(error=requests.ReadTimeout),
        Answer(error=requests.ConnectionError),
        Answer(201, "{not json"),
        Answer(201, "[]"),
        Answer(201, {"join_url": "x"}),
    ],
    ids=["timeout", "reset", "malformed-json", "not-an-object", "no-id"],
)
def test_a_create_that_may_have_reached_zoom_is_not_sent_again(transport: ScriptedTransport, failure: Answer) -> None:
    transport.answers = [failure, Answer(201, CREATED)]
    with pytest.raises(ZoomOutcomeUnknown) as raised:
        api().create(TOKEN, SCHEDULE, Deadline(10))
    assert raised.value.status == 502 and raised.value.code == "zoom_unavailable"
    assert len(transport.requests) == 1


def test_a_create_for_a_claim_carries_its_reference_in_the_agenda(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(201, CREATED)]
    api().create(TOKEN, SCHEDULE, Deadline(10), "0123456789abcdef0123")
    assert json.loads(transport.requests[0].body or b"")["agenda"] == zoom_meetings.agenda_for("0123456789abcdef0123")


def test_find_created_pages_through_upcoming_meetings_and_reads_each_match(transport: ScriptedTransport) -> None:
    ref = "0123456789abcdef0123"
    mine = {
        "id": 2,
        "join_url": "https://zoom.test/j/2",
        "agenda": zoom_meetings.agenda_for(ref),
        "created_at": "2026-03-01T10:00:02Z",
    }
    older = {**mine, "id": 1, "join_url": "https://zoom.test/j/1", "created_at": "2026-03-01T10:00:01Z"}
    other = {"id": 3, "join_url": "https://zoom.test/j/3", "agenda": zoom_meetings.agenda_for("ffff")}
    full = {**CREATED, "topic": "Budget review", "timezone": "Europe/Berlin"}
    transport.answers = [
        Answer(200, {"meetings": [mine, other], "next_page_token": "tok/en+1"}),
        Answer(200, {"meetings": [older, {"id": 4, "join_url": "x"}], "next_page_token": ""}),
        Answer(200, {**full, "id": 2, "created_at": mine["created_at"]}),
        Answer(200, {**full, "id": 1, "created_at": older["created_at"], "duration": 30}),
    ]
    found = api().find_created(TOKEN, ref, Deadline(10))
    assert [f.meeting.meeting_id for f in found] == ["1", "2"]
    assert [f.matches(SCHEDULE) for f in found] == [False, True] and found[1].meeting.password == "123456"
    urls = [r.url for r in transport.requests]
    assert urls[0] == f"{API}/users/me/meetings?type=upcoming&page_size=300"
    assert urls[1] == f"{API}/users/me/meetings?type=upcoming&page_size=300&next_page_token=tok%2Fen%2B1"
    assert urls[2:] == [f"{API}/meetings/2", f"{API}/meetings/1"]


@pytest.mark.parametrize("failure", [requests.ReadTimeout, requests.ConnectionError], ids=["timeout", "reset"])
def test_moves_and_deletes_are_sent_again_after_a_timeout(
    transport: ScriptedTransport, failure: type[Exception]
) -> None:
    transport.answers = [Answer(error=failure), Answer(204), Answer(error=failure), Answer(204)]
    api().update(TOKEN, "1", SCHEDULE, Deadline(10))
    assert api().delete(TOKEN, "1", Deadline(10)) is True
    assert len(transport.requests) == 4


def test_a_create_whose_connection_never_opened_is_sent_again(transport: ScriptedTransport) -> None:
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    refused = NewConnectionError(None, "connection refused")  # type: ignore[arg-type]
    transport.answers = [
        Answer(error=requests.ConnectionError(MaxRetryError(None, API, refused))),  # type: ignore[arg-type]
        Answer(201, CREATED),
    ]
    assert api().create(TOKEN, SCHEDULE, Deadline(10)).meeting_id == "85746065432"
    assert len(transport.requests) == 2


def test_no_attempt_starts_after_the_deadline(transport: ScriptedTransport) -> None:
    with pytest.raises(ZoomUnavailable):
        api().create(TOKEN, SCHEDULE, Deadline(0.1))
    assert not transport.requests


def test_other_4xx_are_rejected_for_good(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(400, {"code": 300, "message": "Invalid field.", "errors": [{"field": "x"}]})]
    with pytest.raises(ZoomRejected) as raised:
        api().create(TOKEN, SCHEDULE, Deadline(10))
    assert (raised.value.zoom_code, raised.value.zoom_message) == (300, "Invalid field.")
    assert raised.value.status == 502 and len(transport.requests) == 1


def test_a_create_answer_without_an_id_is_unavailable(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(201, {"join_url": "x"})]
    with pytest.raises(ZoomUnavailable):
        api().create(TOKEN, SCHEDULE, Deadline(10))


def test_zoom_errors_are_logged_with_code_and_message_only(
    transport: ScriptedTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    transport.answers = [Answer(400, {"code": 300, "message": "Invalid field.", "secret_echo": TOKEN})]
    with pytest.raises(ZoomRejected):
        api().create(TOKEN, SCHEDULE, Deadline(10))
    logged = [record for record in caplog.records if record.getMessage() == "zoom answered an error"]
    assert len(logged) == 1
    extra = logged[0].__dict__
    assert (extra["zoom_code"], extra["zoom_message"], extra["status"]) == (300, "Invalid field.", 400)
    everything = " ".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert TOKEN not in everything and "secret_echo" not in everything


def test_the_session_is_one_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoom_meetings, "_session", None)
    assert zoom_meetings._http() is zoom_meetings._http()


def test_metrics_count_meetings_and_errors(transport: ScriptedTransport, monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[str] = []
    monkeypatch.setattr(zoom_meetings, "count", lambda name, value=1: counted.append(name))
    transport.answers = [Answer(201, CREATED), Answer(500, {}), Answer(204), Answer(204)]
    api().create(TOKEN, SCHEDULE, Deadline(10))
    api().update(TOKEN, "1", SCHEDULE, Deadline(10))
    api().delete(TOKEN, "1", Deadline(10))
    assert counted == ["MeetingsCreated", "ZoomErrors", "MeetingsMoved", "MeetingsDeleted"]


def test_zooms_daily_limit_is_rate_limited_until_midnight_without_waiting(transport: ScriptedTransport) -> None:
    transport.answers = [Answer(429, {"code": 429, "message": "daily"}, {"X-RateLimit-Type": "Daily-limit"})]
    began = time.monotonic()
    with pytest.raises(ZoomRateLimited) as raised:
        api().create(TOKEN, SCHEDULE, Deadline(10))
    assert time.monotonic() - began < 0.5 and len(transport.requests) == 1
    assert 0 < int(raised.value.headers["Retry-After"]) <= 86401
    assert raised.value.daily_limit, "the one 429 the meetings service remembers for the user"


def test_retry_after_as_an_http_date(transport: ScriptedTransport) -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    transport.answers = [Answer(429, {}, {"Retry-After": later})]
    with pytest.raises(ZoomRateLimited) as raised:
        api().create(TOKEN, SCHEDULE, Deadline(10))
    assert 3500 <= int(raised.value.headers["Retry-After"]) <= 3601
    assert zoom_meetings._retry_after_seconds(soon) is not None
    assert zoom_meetings._retry_after_seconds("garbage") is None
