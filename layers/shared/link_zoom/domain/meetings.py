"""Meetings: the compose-email link, one meeting per calendar event kept in step with it, and Zoom-side deletes.

The one rule that keeps meetings single: a (user, event) gets its meeting only through a link record claimed
with a conditional write BEFORE Zoom is asked to create anything. A second creator (a racing request, a
replayed or duplicate stream record) finds the claim, waits for it to finish and reuses its meeting.

Calendar items are reconciled level-triggered: a stream record only says "look at this event"; what to do
is decided from the item as it is now, the link record and the feature switch, so stale, replayed and
out-of-order records cannot move a meeting backwards.

A create whose answer is lost (Zoom may have made the meeting) leaves its claim behind, marked and with its
lease ended, instead of releasing it. Every claim carries a random reference that its create writes into
the meeting's agenda; whoever takes over a claim left behind first looks for meetings with that reference
(Zoom's list of upcoming meetings) and adopts one instead of creating again. Only takeovers pay for that.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from link_zoom.deadline import Deadline
from link_zoom.domain.calendar_events import (
    AUTHORIZATION_REQUIRED,
    FAILED,
    FEATURE_DISABLED,
    RATE_LIMITED,
    SCHEDULED,
    CalendarItem,
    ZoomFields,
)
from link_zoom.domain.schedule import DEFAULT_TOPIC, Schedule, parse_instant
from link_zoom.domain.zoom_quota import ZoomQuota
from link_zoom.errors import (
    FeatureDisabled,
    RequestInProgress,
    ZoomMeetingNotFound,
    ZoomOutcomeUnknown,
    ZoomRateLimited,
    ZoomRejected,
    ZoomUnavailable,
)
from link_zoom.observability import logger

T = TypeVar("T")

CLAIM_POLL_S = 0.2
CLAIM_LEASE_MARGIN_S = 5.0
IDEMPOTENCY_EXPIRY_S = 24 * 3600
DEFAULT_DURATION = 30

NOT_CONNECTED_SENTENCE = "Connect your Zoom account in Link to add a Zoom meeting to this event."
DISABLED_SENTENCE = "The Zoom integration is switched off for your organisation."
RATE_LIMITED_SENTENCE = (
    "Zoom's limit of meeting changes for your account was reached; the meeting is added automatically once it resets."
)
INVALID_TIMES_SENTENCE = "The event's start and end must be ISO 8601 times with an offset, the end after the start."


class NotConnected(Exception):
    """The user has no working Zoom connection (never connected, disconnected, or revoked the app at Zoom)."""


class StillRunning(Exception):
    """The first request with this Idempotency-Key is still being answered."""


@dataclass(frozen=True)
class ZoomMeeting:
    """What Zoom answered to a create (its id as a string, as the contract wants it)."""

    meeting_id: str
    join_url: str
    password: str | None


@dataclass(frozen=True)
class FoundMeeting:
    """A meeting a lost create made, found by its reference, with the schedule Zoom holds for it."""

    meeting: ZoomMeeting
    topic: str
    start_time: str
    duration: int
    timezone: str

    def matches(self, schedule: Schedule) -> bool:
        return (self.topic, self.start_time, self.duration, self.timezone) == (
            schedule.topic,
            schedule.start_time,
            schedule.duration_minutes,
            schedule.time_zone,
        )


@dataclass(frozen=True)
class MeetingLink:
    """The link record of one (user, event): a meeting, or a claim while its creator talks to Zoom."""

    user_id: str
    event_id: str
    meeting_id: str | None = None
    join_url: str | None = None
    password: str | None = None
    schedule: Schedule | None = None
    claim_id: str | None = None
    claim_expires_at: float | None = None
    # The claim's reference, written into the agenda of the meeting its create makes (None on rows from
    # before references); `outcome_unknown`: a create for this claim reached Zoom and its answer was lost.
    claim_ref: str | None = None
    outcome_unknown: bool = False
    # A recurring event's own state (domain/series.py): for a series, the rule, cancelled and Zoom's occurrence
    # ids as last applied; for an exception item, its series and occurrence. JSON-able; None for single events.
    series: dict[str, Any] | None = None


# ------------------------------------------------------------------ ports (the adapters, or fakes in tests)


class ZoomMeetingsPort(Protocol):
    def create(
        self, access_token: str, schedule: Schedule, deadline: Deadline, reference: str | None = None
    ) -> ZoomMeeting: ...

    def find_created(self, access_token: str, reference: str, deadline: Deadline) -> list[FoundMeeting]:
        """The user's upcoming meetings made by creates that carried `reference`, oldest first."""
        ...

    def update(self, access_token: str, meeting_id: str, schedule: Schedule, deadline: Deadline) -> None: ...

    def delete(self, access_token: str, meeting_id: str, deadline: Deadline) -> bool: ...


class ConnectionPort(Protocol):
    def call_zoom(self, user_id: str, operation: Callable[[str], T], deadline: Deadline | None = None) -> T:
        """Runs `operation(access_token)`; raises NotConnected when the user has no working connection. No token
        refresh starts unless `deadline` leaves time to receive and store its answer."""
        ...


class MeetingLinksPort(Protocol):
    def get(self, user_id: str, event_id: str) -> MeetingLink | None: ...

    def claim(
        self,
        user_id: str,
        event_id: str,
        claim_id: str,
        expires_at: float,
        *,
        replacing: str | None = None,
        ref: str | None = None,
        outcome_unknown: bool = False,
    ) -> bool:
        """Takes the empty slot (or, with `replacing`, a claim that expired); False when someone else holds it."""
        ...

    def mark_unknown(self, user_id: str, event_id: str, claim_id: str) -> bool:
        """Keeps our claim as one whose create may have made a meeting, its lease ended; False if it was lost."""
        ...

    def complete(
        self, user_id: str, event_id: str, claim_id: str, meeting: ZoomMeeting, schedule: Schedule
    ) -> MeetingLink | None:
        """Turns our claim into the link; None when the claim was lost."""
        ...

    def release(self, user_id: str, event_id: str, claim_id: str) -> bool: ...

    def reschedule(self, link: MeetingLink, schedule: Schedule) -> MeetingLink | None: ...

    def remove(self, user_id: str, event_id: str, meeting_id: str) -> bool: ...

    def find_by_meeting(self, meeting_id: str) -> list[tuple[str, str]]: ...


class RecurringPort(Protocol):
    """Recurring events (domain/series.py), reached through the single events' stream and sweep."""

    def reconcile(self, user_id: str, event_id: str, item: CalendarItem | None, deadline: Deadline) -> str | None:
        """Handles the event if it is (or was) part of a recurring event; None when it is a single event."""
        ...

    def put_event_series(
        self, user_id: str, event_id: str, schedule: Schedule, rule: str, deadline: Deadline
    ) -> MeetingLink: ...

    def has_ended(self, item: CalendarItem, moment: datetime) -> bool: ...


class OncePort(Protocol):
    def run(
        self,
        scope: dict[str, str],
        request: dict[str, Any],
        compute: Callable[[], dict[str, Any]],
        deadline: Deadline,
    ) -> dict[str, Any]:
        """`compute()`'s answer, kept for `scope`: a later run with the same scope and `request` gets it without
        computing; with another `request` it raises IdempotencyKeyReused.

        A failed compute keeps nothing; raises StillRunning while the first run of the scope is computing."""
        ...


class CalendarPort(Protocol):
    def get(self, user_id: str, event_id: str) -> CalendarItem | None: ...

    def write_back(self, item: CalendarItem, fields: ZoomFields) -> bool:
        """Writes the four zoom_* attributes if the item still holds the values it was read with."""
        ...

    def waiting_for_connection(self, user_id: str) -> Iterable[CalendarItem]: ...

    def mark_deleted_at_zoom(self, user_id: str, event_id: str, meeting_id: str) -> bool: ...


# ------------------------------------------------------------------ requests and answers


@dataclass(frozen=True)
class ComposeLinkRequest:
    topic: str = DEFAULT_TOPIC
    duration_minutes: int = DEFAULT_DURATION


def meeting_answer(meeting_id: str, join_url: str, password: str | None, schedule: Schedule) -> dict[str, Any]:
    answer: dict[str, Any] = {"meeting_id": meeting_id, "join_url": join_url}
    if password:
        answer["password"] = password
    answer["start_time"] = schedule.start_time
    answer["duration_minutes"] = schedule.duration_minutes
    return answer


# ------------------------------------------------------------------ the service


@dataclass
class Meetings:
    zoom: ZoomMeetingsPort
    connection: ConnectionPort
    links: MeetingLinksPort
    calendar: CalendarPort
    zoom_enabled: Callable[[], bool]
    once: OncePort
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    recurring: RecurringPort | None = None
    # The user's daily Zoom quota (domain/zoom_quota.py): creates and updates wait while it is known used up.
    quota: ZoomQuota | None = None

    # --- API paths

    def compose_link(self, user_id: str, request: ComposeLinkRequest, deadline: Deadline) -> dict[str, Any]:
        if not self.zoom_enabled():
            raise FeatureDisabled()
        schedule = Schedule.starting_now(request.topic, request.duration_minutes)
        meeting = self.call_counted(user_id, lambda token: self.zoom.create(token, schedule, deadline), deadline)
        return meeting_answer(meeting.meeting_id, meeting.join_url, meeting.password, schedule)

    def compose_link_once(
        self, user_id: str, request: ComposeLinkRequest, idempotency_key: str | None, deadline: Deadline
    ) -> dict[str, Any]:
        """POST /v1/compose-link; with an Idempotency-Key, a repeat (same user, same key) gets the first answer."""
        if idempotency_key is None:
            return self.compose_link(user_id, request, deadline)
        if not self.zoom_enabled():
            raise FeatureDisabled()
        # The scope: the same Idempotency-Key from another user is another request.
        scope = {"user_id": user_id, "key": idempotency_key}
        while True:
            try:
                return self.once.run(
                    scope, asdict(request), lambda: self.compose_link(user_id, request, deadline), deadline
                )
            except StillRunning as exc:
                # The first request with this key is still talking to Zoom: wait for its answer.
                if deadline.remaining() <= 1.0:
                    raise RequestInProgress() from exc
                self.sleep(0.25)

    def put_event_meeting(
        self, user_id: str, event_id: str, schedule: Schedule, deadline: Deadline, recurrence: str | None = None
    ) -> dict[str, Any]:
        if not self.zoom_enabled():
            raise FeatureDisabled()
        if recurrence is not None and self.recurring is not None:
            link = self.recurring.put_event_series(user_id, event_id, schedule, recurrence, deadline)
        else:
            link = self._ensure_link(user_id, event_id, schedule, deadline)
        assert link.meeting_id is not None and link.join_url is not None and link.schedule is not None
        return meeting_answer(link.meeting_id, link.join_url, link.password, link.schedule)

    def delete_event_meeting(self, user_id: str, event_id: str, deadline: Deadline) -> bool:
        """Removal always works, switch on or off; True when there was a meeting."""
        return self._remove_link(user_id, event_id, deadline)

    # --- the calendar stream and the post-connect sweep

    def reconcile_event(self, user_id: str, event_id: str, deadline: Deadline, seen: CalendarItem | None = None) -> str:
        """Brings the event's meeting in line with the calendar item as it is now (or as `seen`, the image of
        the event's latest stream record, when the caller has it); returns what it did."""
        item = seen if seen is not None else self.calendar.get(user_id, event_id)
        if self.recurring is not None and _may_be_recurring(item):
            outcome = self.recurring.reconcile(user_id, event_id, item, deadline)
            if outcome is not None:
                return outcome
        if item is None or not item.zoom:
            removed = self._remove_link(user_id, event_id, deadline)
            if item is not None:
                self.calendar.write_back(item, ZoomFields())
            return "removed" if removed else "nothing"
        try:
            fields, outcome = self._meeting_for_item(item, deadline)
        except ZoomRateLimited:
            # The caller retries after Zoom's Retry-After (the per-event work queue); the item says why it waits.
            kept = kept_fields(self.links.get(user_id, event_id))
            self.calendar.write_back(item, kept.with_status(RATE_LIMITED, RATE_LIMITED_SENTENCE))
            raise
        self.calendar.write_back(item, fields)
        return outcome

    def give_up(self, user_id: str, event_id: str, sentence: str) -> bool:
        """Writes `failed` with `sentence` on an event whose meeting could not be brought in line; False when the
        item no longer wants a meeting (nothing to say) or changed meanwhile (its own record brings it back)."""
        item = self.calendar.get(user_id, event_id)
        if item is None or not item.zoom:
            return False
        return self.calendar.write_back(
            item, kept_fields(self.links.get(user_id, event_id)).with_status(FAILED, sentence)
        )

    def _meeting_for_item(self, item: CalendarItem, deadline: Deadline) -> tuple[ZoomFields, str]:
        schedule = item.schedule()
        # An item without a meeting id most likely has no link yet: claim the slot straight away (one
        # read less per new meeting); a slot someone holds is read inside _ensure_link after all.
        claim_first = schedule is not None and item.zoom_fields().meeting_id is None and self.zoom_enabled()
        link = None if claim_first else self.links.get(item.user_id, item.event_id)
        if schedule is None:
            return kept_fields(link).with_status(FAILED, INVALID_TIMES_SENTENCE), FAILED
        if link is not None and link.series is not None:
            self._leave_series(link, deadline)
            link = None
        if link is not None and link.meeting_id is not None and link.schedule == schedule:
            return kept_fields(link).with_status(SCHEDULED), "unchanged"
        # Only now, with a Zoom call ahead, do the switch and the connection matter.
        if not claim_first and not self.zoom_enabled():
            return kept_fields(link).with_status(FEATURE_DISABLED, DISABLED_SENTENCE), FEATURE_DISABLED
        before = link.meeting_id if link else None
        try:
            link = self._ensure_link(item.user_id, item.event_id, schedule, deadline, read=True, link=link)
        except (NotConnected, ZoomRejected) as exc:
            return fields_not_changed(self.links.get(item.user_id, item.event_id), exc, "meeting")
        fields = ZoomFields(meeting_id=link.meeting_id, join_url=link.join_url, status=SCHEDULED)
        return fields, ("moved" if before is not None and before == link.meeting_id else "created")

    def _leave_series(self, link: MeetingLink, deadline: Deadline) -> None:
        """An event that was recurring and is single now: the recurring meeting is not its meeting any more
        (a series' own is deleted; an exception's row is dropped, its series keeps the meeting)."""
        assert link.series is not None
        if link.series.get("kind") == "series":
            self._remove_link(link.user_id, link.event_id, deadline)
        elif link.meeting_id is not None:
            self.links.remove(link.user_id, link.event_id, link.meeting_id)

    def sweep_candidates(self, user_id: str, now: datetime | None = None) -> list[CalendarItem]:
        """The user's events that wait for a connection and have not ended yet."""
        moment = now or datetime.now(UTC)
        return [
            item
            for item in self.calendar.waiting_for_connection(user_id)
            if (end := parse_instant(item.text("end"))) is not None
            and (end > moment if item.text("recurrence") is None else not self._series_ended(item, moment))
        ]

    def _series_ended(self, item: CalendarItem, moment: datetime) -> bool:
        return self.recurring is None or self.recurring.has_ended(item, moment)

    # --- the claim protocol, for recurring events (domain/series.py)

    def claim_and_create(
        self,
        user_id: str,
        event_id: str,
        schedule: Schedule,
        deadline: Deadline,
        *,
        replacing: MeetingLink | None,
        create_with: Callable[[str, str], ZoomMeeting],
    ) -> MeetingLink | None:
        """The claim-before-create of single events, with `create_with(token, reference)` making the meeting."""
        return self._claim_and_create(
            user_id, event_id, schedule, deadline, replacing=replacing, create_with=create_with
        )

    def claim_expired(self, link: MeetingLink) -> bool:
        return self._expired(link)

    def wait_for_claim(self, deadline: Deadline) -> None:
        self._wait_for_claim(deadline)

    def call_counted(self, user_id: str, operation: Callable[[str], T], deadline: Deadline | None = None) -> T:
        """A Zoom call that counts against the user's daily creates and updates: not sent while that quota is
        known to be used up (ZoomRateLimited at once, as Zoom would answer), and a daily-limit 429 is remembered."""
        if self.quota is None:
            return self.connection.call_zoom(user_id, operation, deadline=deadline)
        return self.quota.call(user_id, lambda: self.connection.call_zoom(user_id, operation, deadline=deadline))

    # --- Zoom deleted a meeting (webhook)

    def meeting_deleted_at_zoom(self, meeting_id: str) -> int:
        """Marks the linked events `deleted_at_zoom` and drops their links; returns how many there were."""
        found = self.links.find_by_meeting(meeting_id)
        for user_id, event_id in found:
            # The item first: if this fails, the link still leads a retried webhook back here.
            self.calendar.mark_deleted_at_zoom(user_id, event_id, meeting_id)
            self.links.remove(user_id, event_id, meeting_id)
        return len(found)

    # --- the link protocol

    def _ensure_link(
        self,
        user_id: str,
        event_id: str,
        schedule: Schedule,
        deadline: Deadline,
        *,
        read: bool = False,
        link: MeetingLink | None = None,
    ) -> MeetingLink:
        """The event's meeting with this schedule; `read`: the caller just read `link` (None: there is none)."""
        if not read:
            link = self.links.get(user_id, event_id)
        if link is not None and link.series is not None:  # a PUT without recurrence on a recurring event
            self._leave_series(link, deadline)
            link = None
        while True:
            if link is None or (link.meeting_id is None and self._expired(link)):
                created = self._claim_and_create(user_id, event_id, schedule, deadline, replacing=link)
                if created is not None:
                    return created
            elif link.meeting_id is None:
                self._wait_for_claim(deadline)
            elif link.schedule == schedule:
                return link
            else:
                moved = self._move(link, schedule, deadline)
                if moved is not None:
                    return moved
            link = self.links.get(user_id, event_id)

    def _claim_and_create(
        self,
        user_id: str,
        event_id: str,
        schedule: Schedule,
        deadline: Deadline,
        *,
        replacing: MeetingLink | None,
        create_with: Callable[[str, str], ZoomMeeting] | None = None,
    ) -> MeetingLink | None:
        claim_id = uuid.uuid4().hex
        # A claim outlives its creator's deadline a little: after that, nobody is working on it any more.
        expires_at = self.clock() + deadline.remaining() + CLAIM_LEASE_MARGIN_S
        previous = replacing.claim_id if replacing is not None else None
        if replacing is not None and previous is None:
            # Not a row this code writes: it cannot be taken over safely, so wait (bounded) for a person.
            self._wait_for_claim(deadline)
            return None
        if self.quota is not None:
            self.quota.check(user_id)  # before the claim: a limited user's event costs no write and no call
        # A claim left behind (its create's answer was lost, or its creator died mid-call) may have made a
        # meeting: keep its reference, so the meeting is found, and the row, until it is settled.
        inherited = replacing.claim_ref if replacing is not None else None
        ref = inherited or uuid.uuid4().hex[:20]
        unknown = replacing is not None and replacing.outcome_unknown
        if not self.links.claim(
            user_id, event_id, claim_id, expires_at, replacing=previous, ref=ref, outcome_unknown=unknown
        ):
            return None
        try:
            meeting = self._adopt(user_id, ref, schedule, deadline) if inherited else None
            if meeting is None:
                meeting = self.call_counted(
                    user_id,
                    lambda token: (
                        create_with(token, ref) if create_with else self.zoom.create(token, schedule, deadline, ref)
                    ),
                    deadline,
                )
        except ZoomOutcomeUnknown:
            self._keep_unknown(user_id, event_id, claim_id)
            raise
        except Exception:
            if inherited:
                self._keep_unknown(user_id, event_id, claim_id)  # an earlier create may still turn up
            else:
                self._release_quietly(user_id, event_id, claim_id)
            raise
        try:
            link = self.links.complete(user_id, event_id, claim_id, meeting, schedule)
        except Exception:
            self._delete_quietly(user_id, meeting.meeting_id, deadline)
            self._release_quietly(user_id, event_id, claim_id)
            raise
        if link is None:
            # Our claim expired and another creator took the slot: this meeting would be a second one.
            self._delete_quietly(user_id, meeting.meeting_id, deadline)
        return link

    def _adopt(self, user_id: str, ref: str, schedule: Schedule, deadline: Deadline) -> ZoomMeeting | None:
        """The meeting an earlier create of this claim made, brought to `schedule`; surplus ones are deleted."""
        found = self.connection.call_zoom(
            user_id, lambda token: self.zoom.find_created(token, ref, deadline), deadline=deadline
        )
        if not found:
            return None
        kept = next((candidate for candidate in found if candidate.matches(schedule)), found[0])
        for surplus in found:
            if surplus is not kept:
                self._delete_quietly(user_id, surplus.meeting.meeting_id, deadline)
        meeting_id = kept.meeting.meeting_id
        if not kept.matches(schedule):
            try:
                self.call_counted(
                    user_id, lambda token: self.zoom.update(token, meeting_id, schedule, deadline), deadline
                )
            except ZoomMeetingNotFound:
                return None  # deleted at Zoom meanwhile: make a new one
        logger.info("adopted the meeting a lost create made", extra={"meeting_id": meeting_id})
        return kept.meeting

    def _keep_unknown(self, user_id: str, event_id: str, claim_id: str) -> None:
        try:
            self.links.mark_unknown(user_id, event_id, claim_id)
        except Exception:
            # The claim's lease runs out on its own and it keeps its reference; the original error is reported.
            logger.exception("could not mark a meeting claim", extra={"event_id": event_id})

    def _move(self, link: MeetingLink, schedule: Schedule, deadline: Deadline) -> MeetingLink | None:
        assert link.meeting_id is not None
        meeting_id = link.meeting_id
        try:
            self.call_counted(
                link.user_id, lambda token: self.zoom.update(token, meeting_id, schedule, deadline), deadline
            )
        except ZoomMeetingNotFound:
            # Deleted at Zoom meanwhile: the event still wants a meeting, so the next round makes a new one.
            self.links.remove(link.user_id, link.event_id, meeting_id)
            return None
        return self.links.reschedule(link, schedule)

    def _remove_link(self, user_id: str, event_id: str, deadline: Deadline) -> bool:
        while True:
            link = self.links.get(user_id, event_id)
            if link is None:
                return False
            if link.meeting_id is None:
                if self._expired(link) and link.claim_id is not None:
                    if link.claim_ref is not None:
                        claim_id = self._settle_left_claim(link, deadline)
                        if claim_id is None:
                            continue
                    else:
                        claim_id = link.claim_id
                    if self.links.release(user_id, event_id, claim_id):
                        return False  # a creator that died or lost its answer before Zoom answered it
                else:
                    self._wait_for_claim(deadline)
                continue
            self._delete_meeting(link.user_id, link.meeting_id, deadline)
            self.links.remove(user_id, event_id, link.meeting_id)
            return True

    def _settle_left_claim(self, link: MeetingLink, deadline: Deadline) -> str | None:
        """Takes over a claim left behind and deletes any meeting its creates made; our claim id, or None
        when someone else took it first."""
        assert link.claim_ref is not None
        ref = link.claim_ref
        claim_id = uuid.uuid4().hex
        expires_at = self.clock() + deadline.remaining() + CLAIM_LEASE_MARGIN_S
        if not self.links.claim(
            link.user_id,
            link.event_id,
            claim_id,
            expires_at,
            replacing=link.claim_id,
            ref=ref,
            outcome_unknown=link.outcome_unknown,
        ):
            return None
        try:
            found = self.connection.call_zoom(
                link.user_id, lambda token: self.zoom.find_created(token, ref, deadline), deadline=deadline
            )
            for meeting in found:
                self._delete_meeting(link.user_id, meeting.meeting.meeting_id, deadline)
        except NotConnected:
            pass  # nobody can look for it for the user any more
        except Exception:
            self._keep_unknown(link.user_id, link.event_id, claim_id)
            raise
        return claim_id

    def _delete_at_zoom(self, user_id: str, meeting_id: str, deadline: Deadline) -> None:
        self.connection.call_zoom(
            user_id, lambda token: self.zoom.delete(token, meeting_id, deadline), deadline=deadline
        )

    def _delete_meeting(self, user_id: str, meeting_id: str, deadline: Deadline) -> None:
        try:
            self._delete_at_zoom(user_id, meeting_id, deadline)
        except NotConnected:
            # Nobody can delete it for the user any more; forget it rather than retry forever.
            logger.warning("meeting left at Zoom: the user is no longer connected", extra={"meeting_id": meeting_id})

    def _expired(self, link: MeetingLink) -> bool:
        return (link.claim_expires_at or 0.0) <= self.clock()

    def _wait_for_claim(self, deadline: Deadline) -> None:
        if deadline.remaining() <= CLAIM_POLL_S * 2:
            raise ZoomUnavailable("Another request is changing this event's meeting; try again shortly.")
        self.sleep(CLAIM_POLL_S)

    def _release_quietly(self, user_id: str, event_id: str, claim_id: str) -> None:
        try:
            self.links.release(user_id, event_id, claim_id)
        except Exception:
            # The claim's lease runs out on its own; the original error is the one to report.
            logger.exception("could not release a meeting claim", extra={"event_id": event_id})

    def _delete_quietly(self, user_id: str, meeting_id: str, deadline: Deadline) -> None:
        try:
            self._delete_at_zoom(user_id, meeting_id, deadline)
        except Exception:
            logger.exception("could not delete a surplus Zoom meeting", extra={"meeting_id": meeting_id})


def _may_be_recurring(item: CalendarItem | None) -> bool:
    """A removal or toggle off (the link row knows whether it was recurring), or a series or exception item."""
    return item is None or not item.zoom or item.series_id is not None or item.text("recurrence") is not None


def kept_fields(link: MeetingLink | None) -> ZoomFields:
    """The meeting an item keeps showing while its status says why it was not brought up to date."""
    return ZoomFields(meeting_id=link.meeting_id, join_url=link.join_url) if link else ZoomFields()


def fields_not_changed(link: MeetingLink | None, exc: NotConnected | ZoomRejected, what: str) -> tuple[ZoomFields, str]:
    """An item whose `what` (meeting, series) could not be changed at Zoom: the meeting it keeps, the status
    and sentence saying why (the user is not connected, or Zoom refused for good), and the outcome."""
    if isinstance(exc, NotConnected):
        return kept_fields(link).with_status(AUTHORIZATION_REQUIRED, NOT_CONNECTED_SENTENCE), AUTHORIZATION_REQUIRED
    # A permanent refusal: retrying the record would only burn the user's daily Zoom quota.
    reason = exc.zoom_message.rstrip(".") or "no reason given"
    return kept_fields(link).with_status(FAILED, f"Zoom refused to schedule this {what} ({reason})."), FAILED
