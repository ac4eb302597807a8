"""Zoom's meetings API: create, move (PATCH) and delete, with timeouts, bounded retries and Zoom's errors mapped.

One requests.Session per warm process (its connection pool is reused across invocations and threads).
Retries: 429 waits for Retry-After (or a jittered back-off) while the caller's deadline allows, then
`ZoomRateLimited`; 5xx, timeouts, broken connections and unreadable answers are retried a few times, then
`ZoomUnavailable`. A create is never re-sent once it may have reached Zoom (a second POST would make a
second meeting): it waits longer for its answer instead, and a create whose answer is lost, unreadable or a
5xx raises `ZoomOutcomeUnknown`; every create sends `settings.use_pmi: false`. Each create made for a link
claim carries the claim's reference in its agenda;
`find_created` lists the user's upcoming meetings to find the ones a lost create made. 401 is
`ZoomTokenRejected` (the connection code refreshes or gives up); a meeting Zoom no longer has is
`ZoomMeetingNotFound`; any other 4xx is `ZoomRejected`. Logs carry Zoom's code and message, never a token or a body.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from link_zoom import config
from link_zoom.deadline import Deadline
from link_zoom.domain.meetings import FoundMeeting, ZoomMeeting
from link_zoom.domain.recurrence import ZoomOccurrence, ZoomRecurrence
from link_zoom.domain.schedule import Schedule, parse_instant
from link_zoom.errors import (
    ZoomMeetingNotFound,
    ZoomOutcomeUnknown,
    ZoomRateLimited,
    ZoomRejected,
    ZoomTokenRejected,
    ZoomUnavailable,
)
from link_zoom.observability import count, logger

if TYPE_CHECKING:
    import requests

MAX_ATTEMPTS = 3  # per call, for 5xx, timeouts and unreadable answers
MAX_RATE_LIMIT_WAITS = 3
BACKOFF_BASE_S = 0.2
RATE_LIMIT_BACKOFF_S = 1.0  # when a 429 carries no Retry-After
MIN_ATTEMPT_S = 0.5  # no attempt starts with less time than this left
LIST_PAGE_SIZE = 300  # Zoom's maximum
LIST_MAX_PAGES = 10


def agenda_for(reference: str) -> str:
    """The agenda of a meeting made for a link claim: short and up front, as Zoom's meeting list cuts agendas
    to 250 characters; the reference is ours alone (random per claim), so nothing else can carry it."""
    return f"Added by Link. Ref: {reference}"


def _meeting_of(data: dict[str, Any]) -> ZoomMeeting | None:
    meeting_id, join_url = data.get("id"), data.get("join_url")
    if isinstance(meeting_id, bool) or not isinstance(meeting_id, int | str) or not isinstance(join_url, str):
        return None
    password = data.get("password")
    return ZoomMeeting(str(meeting_id), join_url, password if isinstance(password, str) and password else None)


INVALID_FIELD_CODE = 300  # Zoom's "invalid field" (for an occurrence: no such available occurrence)


def _series_body(schedule: Schedule, zoom: ZoomRecurrence) -> dict[str, Any]:
    body: dict[str, Any] = {
        "topic": schedule.topic,
        "type": zoom.meeting_type,
        "start_time": schedule.start_time,
        "duration": schedule.duration_minutes,
        "timezone": schedule.time_zone,
    }
    if zoom.recurrence is not None:
        body["recurrence"] = zoom.recurrence
    return body


def _found_meeting(data: dict[str, Any]) -> FoundMeeting | None:
    """A GET /meetings/{id} answer as a FoundMeeting; None when it lacks what one needs."""
    meeting = _meeting_of(data)
    topic, start, duration, zone = (data.get(k) for k in ("topic", "start_time", "duration", "timezone"))
    if data.get("type") == 3 and start is None:
        start = ""  # a recurring meeting without fixed times (a series' fallback) has no start_time
    if meeting is None or not isinstance(topic, str) or not isinstance(start, str) or not isinstance(zone, str):
        return None
    if isinstance(duration, bool) or not isinstance(duration, int):
        return None
    return FoundMeeting(meeting, topic, start, duration, zone)


def _occurrences_of(data: dict[str, Any]) -> list[ZoomOccurrence]:
    """Zoom's `occurrences` (ids kept as strings); entries it cannot read are left out."""
    found = []
    items = data.get("occurrences")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        occurrence_id, start, duration = (
            item.get("occurrence_id"),
            parse_instant(item.get("start_time")),
            item.get("duration"),
        )
        if not isinstance(occurrence_id, str | int) or isinstance(occurrence_id, bool) or start is None:
            continue
        minutes = duration if isinstance(duration, int) and not isinstance(duration, bool) else 0
        found.append(ZoomOccurrence(str(occurrence_id), start, minutes, item.get("status") != "deleted"))
    return found


_session: requests.Session | None = None
_session_lock = threading.Lock()


def _http() -> requests.Session:
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                import requests
                from requests.adapters import HTTPAdapter

                session = requests.Session()
                # Retries are ours (they must respect the deadline); the pool fits the stream's worker threads.
                adapter = HTTPAdapter(pool_connections=2, pool_maxsize=16, max_retries=0)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                _session = session
    return _session


def warm() -> None:
    """Builds the HTTP session (and imports requests) now, before work fans out to threads."""
    _http()


def _jitter(seconds: float) -> float:
    # Full jitter: concurrent callers that failed together do not retry together.
    return random.uniform(seconds / 2, seconds)  # noqa: S311 - timing, not security


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # an HTTP date: rare, and costly to import

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _never_sent(error: Exception) -> bool:
    """True when the connection failed before the request left (safe to send again)."""
    from urllib3.exceptions import NewConnectionError

    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError)


def _seconds_to_utc_midnight() -> int:
    now = time.time()
    return int(86400 - now % 86400) + 1


def _zoom_error(response: requests.Response) -> tuple[int | None, str]:
    """Zoom's `{"code", "message"}`, and nothing else of the body."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    code = body.get("code")
    message = body.get("message")
    return (code if isinstance(code, int) else None), (message[:300] if isinstance(message, str) else "")


class ZoomMeetingsApi:
    """The adapter; `base_url` is ZOOM_API_BASE_URL (e.g. https://api.zoom.us/v2)."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url.rstrip("/")

    def create(
        self, access_token: str, schedule: Schedule, deadline: Deadline, reference: str | None = None
    ) -> ZoomMeeting:
        body: dict[str, Any] = {
            "topic": schedule.topic,
            "type": 2,  # scheduled: an instant meeting (1) has no start time to keep in step with an event
            "start_time": schedule.start_time,
            "duration": schedule.duration_minutes,
            "timezone": schedule.time_zone,
        }
        return self._post_create(access_token, body, deadline, reference)[0]

    # --- recurring meetings (one meeting per series; occurrences addressed by Zoom's occurrence_id)

    def create_series(
        self,
        access_token: str,
        schedule: Schedule,
        zoom: ZoomRecurrence,
        deadline: Deadline,
        reference: str | None = None,
    ) -> tuple[ZoomMeeting, list[ZoomOccurrence]]:
        """A recurring meeting (type 8 with its recurrence, or type 3) and the occurrences Zoom made."""
        meeting, data = self._post_create(access_token, _series_body(schedule, zoom), deadline, reference)
        return meeting, _occurrences_of(data)

    def _post_create(
        self, access_token: str, body: dict[str, Any], deadline: Deadline, reference: str | None
    ) -> tuple[ZoomMeeting, Any]:
        """POSTs a create with what every create sends; the meeting and Zoom's whole answer."""
        body["default_password"] = True
        # A user whose profile says "use PMI" would otherwise get their Personal Meeting ID, shared by all their
        # meetings: moving or deleting the event's meeting would hit every one of them.
        body["settings"] = {"use_pmi": False}
        if reference is not None:
            body["agenda"] = agenda_for(reference)
        data = self._call("POST", "/users/me/meetings", access_token, deadline, body, operation="create")
        meeting = _meeting_of(data)
        if meeting is None:
            # Zoom made something we cannot link to: count it as a failed call, the caller looks for it later.
            count("ZoomErrors")
            raise ZoomOutcomeUnknown()
        count("MeetingsCreated")
        return meeting, data

    def occurrences(self, access_token: str, meeting_id: str, deadline: Deadline) -> list[ZoomOccurrence]:
        data = self._call("GET", f"/meetings/{meeting_id}", access_token, deadline, None, operation="get")
        return _occurrences_of(data)

    def update_series(
        self, access_token: str, meeting_id: str, schedule: Schedule, zoom: ZoomRecurrence, deadline: Deadline
    ) -> None:
        """The whole series: Zoom remakes its occurrences (cancelled and moved ones come back)."""
        body = _series_body(schedule, zoom)
        self._call("PATCH", f"/meetings/{meeting_id}", access_token, deadline, body, operation="update")
        count("MeetingsMoved")

    def rename(self, access_token: str, meeting_id: str, topic: str, deadline: Deadline) -> None:
        """Only the topic: the occurrences stay as they are."""
        self._call("PATCH", f"/meetings/{meeting_id}", access_token, deadline, {"topic": topic}, operation="update")

    def move_occurrence(
        self, access_token: str, meeting_id: str, occurrence_id: str, schedule: Schedule, deadline: Deadline
    ) -> None:
        body = {"start_time": schedule.start_time, "duration": schedule.duration_minutes}
        path = f"/meetings/{meeting_id}?occurrence_id={quote(occurrence_id, safe='')}"
        self._call("PATCH", path, access_token, deadline, body, operation="update_occurrence")
        count("OccurrencesMoved")

    def delete_occurrence(self, access_token: str, meeting_id: str, occurrence_id: str, deadline: Deadline) -> bool:
        """True when this call deleted it; False when Zoom has no such available occurrence (already deleted)."""
        path = f"/meetings/{meeting_id}?occurrence_id={quote(occurrence_id, safe='')}"
        try:
            self._call("DELETE", path, access_token, deadline, None, operation="delete_occurrence")
        except ZoomRejected as exc:
            if exc.zoom_code == INVALID_FIELD_CODE:
                return False
            raise
        count("OccurrencesDeleted")
        return True

    def find_created(self, access_token: str, reference: str, deadline: Deadline) -> list[FoundMeeting]:
        """The user's upcoming meetings whose agenda carries `reference`, oldest first (one list page per 300
        meetings, then one GET each for the passcode the list leaves out)."""
        found = []
        for meeting_id in self._marked_ids(access_token, agenda_for(reference), deadline):
            try:
                data = self._call("GET", f"/meetings/{meeting_id}", access_token, deadline, None, operation="get")
            except ZoomMeetingNotFound:
                continue  # deleted meanwhile
            meeting = _found_meeting(data)
            if meeting is not None:
                found.append((str(data.get("created_at", "")), meeting))
        return [meeting for _, meeting in sorted(found, key=lambda pair: pair[0])]

    def _marked_ids(self, access_token: str, marker: str, deadline: Deadline) -> list[str]:
        """Ids of the user's upcoming meetings whose agenda holds `marker`, page by page."""
        ids: list[str] = []
        token = ""
        for _ in range(LIST_MAX_PAGES):
            query = f"type=upcoming&page_size={LIST_PAGE_SIZE}"
            if token:
                query += f"&next_page_token={quote(token, safe='')}"
            page = self._call("GET", f"/users/me/meetings?{query}", access_token, deadline, None, operation="list")
            items = page.get("meetings")
            for item in items if isinstance(items, list) else []:
                agenda = item.get("agenda") if isinstance(item, dict) else None
                if isinstance(agenda, str) and marker in agenda and _meeting_of(item) is not None:
                    ids.append(str(item["id"]))
            token = page.get("next_page_token") or ""
            if not isinstance(token, str) or not token:
                break
        return ids

    def update(self, access_token: str, meeting_id: str, schedule: Schedule, deadline: Deadline) -> None:
        body = {
            "topic": schedule.topic,
            "start_time": schedule.start_time,
            "duration": schedule.duration_minutes,
            "timezone": schedule.time_zone,
        }
        self._call("PATCH", f"/meetings/{meeting_id}", access_token, deadline, body, operation="update")
        count("MeetingsMoved")

    def delete(self, access_token: str, meeting_id: str, deadline: Deadline) -> bool:
        """True when this call deleted it, False when Zoom no longer had it (which counts as deleted)."""
        try:
            self._call("DELETE", f"/meetings/{meeting_id}", access_token, deadline, None, operation="delete")
        except ZoomMeetingNotFound:
            return False
        count("MeetingsDeleted")
        return True

    def _call(
        self,
        method: str,
        path: str,
        access_token: str,
        deadline: Deadline,
        body: dict[str, Any] | None,
        *,
        operation: str,
    ) -> dict[str, Any]:
        # A create that reached Zoom may have made the meeting even if its answer never came back (or came
        # back as a 5xx): it is given all the time Zoom may take and is never re-sent (a second POST makes a
        # second meeting); the caller adopts the meeting by its claim reference instead.
        request = _Request(method, self._base_url + path, path, access_token, body, operation)
        failures = 0
        rate_limited = 0
        while True:
            if deadline.remaining() < MIN_ATTEMPT_S:
                raise ZoomUnavailable()
            outcome = _attempt(request, deadline)
            if isinstance(outcome, dict):
                return outcome
            if isinstance(outcome, _RateLimit):
                rate_limited += 1
                _wait_out(outcome, rate_limited, deadline)
                continue
            failures += 1
            backoff = _jitter(BACKOFF_BASE_S * 2**failures)
            if failures >= MAX_ATTEMPTS or backoff > deadline.remaining() - MIN_ATTEMPT_S:
                raise ZoomUnavailable()
            time.sleep(backoff)


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    path: str
    access_token: str
    body: dict[str, Any] | None
    operation: str

    @property
    def resendable(self) -> bool:
        return self.method != "POST"


@dataclass(frozen=True)
class _RateLimit:
    """A 429 that may be waited out: `retry_after` seconds (None: Zoom gave none)."""

    retry_after: float | None


def _outcome_unknown(request: _Request, what: str) -> ZoomOutcomeUnknown:
    count("ZoomErrors")
    logger.warning(f"zoom create {what}; not re-sent", extra={"operation": request.operation})
    return ZoomOutcomeUnknown()


def _attempt(request: _Request, deadline: Deadline) -> dict[str, Any] | _RateLimit | str:
    """One request: Zoom's answer as a dict, a 429 to wait out, or the problem of a failure worth retrying."""
    import requests

    remaining = deadline.remaining()
    read_timeout = config.ZOOM_READ_TIMEOUT_S if request.resendable else config.ZOOM_CREATE_READ_TIMEOUT_S
    problem: str
    try:
        response = _http().request(
            request.method,
            request.url,
            json=request.body,
            headers={"Authorization": f"Bearer {request.access_token}", "Accept": "application/json"},
            timeout=(min(config.ZOOM_CONNECT_TIMEOUT_S, remaining), min(read_timeout, remaining)),
            allow_redirects=False,
        )
    except requests.ConnectTimeout:
        problem = "connect timeout"
    except requests.Timeout:
        if not request.resendable:
            raise _outcome_unknown(request, "timed out") from None
        problem = "timeout"
    except requests.RequestException as exc:
        if not request.resendable and not _never_sent(exc):
            raise _outcome_unknown(request, "lost its answer") from None
        problem = "connection failed"
    else:
        return _answer_of(request, response)
    count("ZoomErrors")
    logger.warning("zoom call failed", extra={"operation": request.operation, "problem": problem})
    return problem


def _answer_of(request: _Request, response: requests.Response) -> dict[str, Any] | _RateLimit | str:
    status = response.status_code
    if 200 <= status < 300:
        if request.method not in ("POST", "GET"):
            return {}
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
        if not request.resendable:
            # A 2xx to a create: Zoom made the meeting, we just cannot read which one.
            raise _outcome_unknown(request, "answer unreadable")
        count("ZoomErrors")
        logger.warning("zoom call failed", extra={"operation": request.operation, "problem": "unreadable answer"})
        return "unreadable answer"
    count("ZoomErrors")
    zoom_code, zoom_message = _zoom_error(response)
    logger.warning(
        "zoom answered an error",
        extra={"operation": request.operation, "status": status, "zoom_code": zoom_code, "zoom_message": zoom_message},
    )
    if status == 429:
        return _rate_limit_of(response)
    _raise_for_4xx(request, status, zoom_code, zoom_message)
    if not request.resendable:
        # Zoom may have made the meeting before failing (its 5xx come from anywhere in its chain).
        logger.warning("zoom create failed with a server error; not re-sent", extra={"operation": request.operation})
        raise ZoomOutcomeUnknown()
    return f"status {status}"


def _raise_for_4xx(request: _Request, status: int, zoom_code: int | None, zoom_message: str) -> None:
    if status == 401:
        raise ZoomTokenRejected()
    if status == 404 and request.path.startswith("/meetings/"):
        raise ZoomMeetingNotFound(request.path.split("?", 1)[0].rsplit("/", 1)[-1])
    if status < 500:
        raise ZoomRejected(zoom_code, zoom_message)


def _rate_limit_of(response: requests.Response) -> _RateLimit:
    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
    if response.headers.get("X-RateLimit-Type", "").lower().startswith("daily"):
        # The user's 100 creates/updates a day are used up: waiting seconds cannot help. Zoom often sends no
        # Retry-After for it: the quota comes back at 00:00 UTC.
        wait = math.ceil(retry_after) if retry_after is not None else _seconds_to_utc_midnight()
        raise ZoomRateLimited(wait, daily_limit=True)
    return _RateLimit(retry_after)


def _wait_out(limit: _RateLimit, times: int, deadline: Deadline) -> None:
    wait = limit.retry_after if limit.retry_after is not None else _jitter(RATE_LIMIT_BACKOFF_S * 2 ** (times - 1))
    if times > MAX_RATE_LIMIT_WAITS or wait > deadline.remaining() - MIN_ATTEMPT_S:
        raise ZoomRateLimited(max(1, math.ceil(wait)))
    time.sleep(wait)
