"""Recurring events (contract 3a): one Zoom meeting per series, kept in step occurrence by occurrence.

Level-triggered like single events: what to do is decided from the calendar items as they are now and the
state last applied at Zoom, kept on the link rows of the meeting links table (never in the calendar table):

- the series' row holds the rule, the meeting type, the cancelled starts already deleted at Zoom and Zoom's
  occurrence ids by original start;
- each exception item has its own row: the series' meeting, where its occurrence was moved, and which one.

Zoom calls per change: an `exdates` date added → one occurrence DELETE; an exception moved → one occurrence
PATCH; an exception removed → one occurrence PATCH back to the rule's time; a subject change → one PATCH of the
topic. Zoom cannot bring a deleted occurrence back, so a date removed from `exdates`, like a change of the rule,
start, end or zone, is one series PATCH (Zoom remakes every occurrence) + one GET (the new occurrence ids,
checked against the rule's expansion) + one DELETE per date still cancelled + one PATCH per occurrence still
moved. Creating the meeting goes through the single events' claim (domain/meetings.py), so retries, replays and
races make one meeting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from link_zoom.deadline import Deadline
from link_zoom.domain.calendar_events import (
    AUTHORIZATION_REQUIRED,
    FAILED,
    FEATURE_DISABLED,
    SCHEDULED,
    CalendarItem,
    ZoomFields,
)
from link_zoom.domain.meetings import (
    DISABLED_SENTENCE,
    INVALID_TIMES_SENTENCE,
    NOT_CONNECTED_SENTENCE,
    MeetingLink,
    Meetings,
    NotConnected,
    ZoomMeeting,
    fields_not_changed,
    kept_fields,
)
from link_zoom.domain.recurrence import (
    ZOOM_MAX_OCCURRENCES,
    InvalidRecurrence,
    Series,
    ZoomOccurrence,
    ZoomRecurrence,
    parse_exdates,
    parse_series,
)
from link_zoom.domain.schedule import Schedule, parse_instant, zoom_time
from link_zoom.errors import ZoomMeetingNotFound, ZoomRateLimited, ZoomRejected
from link_zoom.observability import count, logger

SERIES, EXCEPTION = "series", "exception"
RATE_LIMITED = "rate_limited"  # contract 3
RATE_LIMITED_SENTENCE = (
    "Zoom's limit of meeting changes for your account was reached; the series is updated automatically once it resets."
)
BAD_EXCEPTION_SENTENCE = (
    "This changed occurrence does not match an occurrence of its series (check its recurrence_id and times)."
)


# ------------------------------------------------------------------ ports


class SeriesZoomPort(Protocol):
    def create_series(
        self, access_token: str, schedule: Schedule, zoom: ZoomRecurrence, deadline: Deadline, reference: str | None
    ) -> tuple[ZoomMeeting, list[ZoomOccurrence]]: ...

    def occurrences(self, access_token: str, meeting_id: str, deadline: Deadline) -> list[ZoomOccurrence]: ...

    def update_series(
        self, access_token: str, meeting_id: str, schedule: Schedule, zoom: ZoomRecurrence, deadline: Deadline
    ) -> None: ...

    def rename(self, access_token: str, meeting_id: str, topic: str, deadline: Deadline) -> None: ...

    def move_occurrence(
        self, access_token: str, meeting_id: str, occurrence_id: str, schedule: Schedule, deadline: Deadline
    ) -> None: ...

    def delete_occurrence(self, access_token: str, meeting_id: str, occurrence_id: str, deadline: Deadline) -> bool: ...


class SeriesLinksPort(Protocol):
    def get(self, user_id: str, event_id: str) -> MeetingLink | None: ...

    def set_series(self, link: MeetingLink, state: dict[str, Any], schedule: Schedule) -> MeetingLink | None: ...

    def put_exception(self, series: MeetingLink, event_id: str, schedule: Schedule, state: dict[str, Any]) -> None: ...

    def remove(self, user_id: str, event_id: str, meeting_id: str) -> bool: ...

    def find_by_meeting(self, meeting_id: str) -> list[tuple[str, str]]: ...


class SeriesCalendarPort(Protocol):
    def get(self, user_id: str, event_id: str) -> CalendarItem | None: ...

    def write_back(self, item: CalendarItem, fields: ZoomFields) -> bool: ...

    def exceptions_of(self, user_id: str, series_id: str) -> Iterable[CalendarItem]: ...


# ------------------------------------------------------------------ the state kept on link rows


@dataclass(frozen=True)
class SeriesState:
    rule: str
    meeting_type: int
    cancelled: frozenset[str]  # original starts (Zoom's time format) deleted at Zoom
    occurrence_ids: dict[str, str]  # original start -> Zoom's occurrence_id

    @classmethod
    def of(cls, link: MeetingLink | None) -> SeriesState | None:
        data = link.series if link is not None else None
        if not data or data.get("kind") != SERIES:
            return None
        return cls(data["rule"], int(data["type"]), frozenset(data["cancelled"]), dict(data["occurrences"]))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": SERIES,
            "rule": self.rule,
            "type": self.meeting_type,
            "cancelled": sorted(self.cancelled),
            "occurrences": self.occurrence_ids,
        }


@dataclass(frozen=True)
class ExceptionState:
    series_id: str
    original_start: str  # Zoom's time format
    occurrence_id: str

    @classmethod
    def of(cls, link: MeetingLink | None) -> ExceptionState | None:
        data = link.series if link is not None else None
        if not data or data.get("kind") != EXCEPTION:
            return None
        return cls(data["series_id"], data["original_start"], data["occurrence_id"])

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": EXCEPTION,
            "series_id": self.series_id,
            "original_start": self.original_start,
            "occurrence_id": self.occurrence_id,
        }


def is_recurring(item: CalendarItem | None) -> bool:
    return item is not None and (item.series_id is not None or item.text("recurrence") is not None)


def series_has_ended(item: CalendarItem, moment: datetime) -> bool:
    """For the sweep: whether the last occurrence has ended (a rule that never ends never has)."""
    schedule = item.schedule()
    if schedule is None:
        return False  # it waits for a status that says why
    try:
        last_end = parse_series(item.text("recurrence"), schedule).last_end()
    except InvalidRecurrence:
        return False
    return last_end is not None and last_end <= moment


# ------------------------------------------------------------------ the service


@dataclass
class RecurringMeetings:
    meetings: Meetings  # the claim protocol, the connection and the feature switch of single events
    zoom: SeriesZoomPort
    links: SeriesLinksPort
    calendar: SeriesCalendarPort

    def reconcile(self, user_id: str, event_id: str, item: CalendarItem | None, deadline: Deadline) -> str | None:
        """Handles the event when it is (or was) part of a recurring event; None when it is not."""
        if item is not None and item.series_id is not None:
            return self._reconcile_exception(item, deadline)
        if item is not None and item.zoom:
            return self._reconcile_series(item, deadline) if item.text("recurrence") is not None else None
        link = self.links.get(user_id, event_id)
        if ExceptionState.of(link) is not None:
            assert link is not None
            return self._exception_gone(link, item, deadline)
        if SeriesState.of(link) is not None:
            assert link is not None
            return self._series_gone(link, item, deadline)
        return None

    def put_event_series(
        self, user_id: str, event_id: str, schedule: Schedule, rule: str, deadline: Deadline
    ) -> MeetingLink:
        """PUT /v1/events/{id}/zoom with a recurrence (already checked): the series' meeting, made or brought
        to the rule; the cancellations the calendar stream applied stay. The API function has no access to
        the calendar table, so exception items are not re-applied here (see docs/calendar-table.md)."""
        link, _ = self._apply(user_id, event_id, parse_series(rule, schedule), None, deadline)
        return link

    def has_ended(self, item: CalendarItem, moment: datetime) -> bool:
        return series_has_ended(item, moment)

    # --- a series item

    def _reconcile_series(self, item: CalendarItem, deadline: Deadline) -> str:
        try:
            fields, outcome = self._series_fields(item, deadline)
        except ZoomRateLimited:
            # As for single events: the item says why it waits, the failed record is retried later.
            kept = kept_fields(self.links.get(item.user_id, item.event_id))
            self.calendar.write_back(item, kept.with_status(RATE_LIMITED, RATE_LIMITED_SENTENCE))
            raise
        self.calendar.write_back(item, fields)
        return outcome

    def _series_fields(self, item: CalendarItem, deadline: Deadline) -> tuple[ZoomFields, str]:
        link = self.links.get(item.user_id, item.event_id)
        schedule = item.schedule()
        if schedule is None:
            return kept_fields(link).with_status(FAILED, INVALID_TIMES_SENTENCE), FAILED
        try:
            series = parse_series(item.text("recurrence"), schedule)
        except InvalidRecurrence as exc:
            return kept_fields(link).with_status(FAILED, str(exc)), FAILED
        plan = series.zoom()
        cancelled = _cancelled(series, plan, item.exdates())
        if link is not None and link.meeting_id is not None and _in_step(link, series, plan, cancelled):
            return _linked(link, plan), "unchanged"
        if not self.meetings.zoom_enabled():
            return kept_fields(link).with_status(FEATURE_DISABLED, DISABLED_SENTENCE), FEATURE_DISABLED
        try:
            link, outcome = self._apply_or_replace(item.user_id, item.event_id, series, cancelled, deadline)
        except (NotConnected, ZoomRejected) as exc:
            return fields_not_changed(self.links.get(item.user_id, item.event_id), exc, "series")
        return _linked(link, plan), outcome

    def _apply_or_replace(
        self, user_id: str, event_id: str, series: Series, cancelled: frozenset[str], deadline: Deadline
    ) -> tuple[MeetingLink, str]:
        try:
            return self._apply(user_id, event_id, series, cancelled, deadline)
        except ZoomMeetingNotFound:
            # Deleted at Zoom meanwhile (no webhook came): the series still wants a meeting, so it gets a new one.
            gone = self.links.get(user_id, event_id)
            if gone is not None and gone.meeting_id is not None:
                self.links.remove(user_id, event_id, gone.meeting_id)
            return self._apply(user_id, event_id, series, cancelled, deadline)

    def _apply(
        self, user_id: str, event_id: str, series: Series, cancelled: frozenset[str] | None, deadline: Deadline
    ) -> tuple[MeetingLink, str]:
        """Makes or updates the meeting; `cancelled` None (the PUT route) keeps the cancellations as applied and
        leaves the calendar's exception items alone."""
        plan = series.zoom()
        link, made = self._ensure_meeting(user_id, event_id, series, plan, deadline)
        state = SeriesState.of(link)
        wanted = (state.cancelled if state else frozenset()) if cancelled is None else cancelled
        assert link.meeting_id is not None and link.schedule is not None
        meeting_id = link.meeting_id
        if made is not None:
            rebuilt, occurrence_ids, applied = True, self._checked(link, series, made), frozenset[str]()
        elif state is None or _needs_rebuild(link, state, series, plan, wanted):
            occurrence_ids = self._rebuild(link, series, plan, deadline)
            rebuilt, applied = True, frozenset()
        else:
            if link.schedule.topic != series.first.topic:
                self._counted(user_id, lambda token: self.zoom.rename(token, meeting_id, series.first.topic, deadline))
            rebuilt, occurrence_ids, applied = False, state.occurrence_ids, state.cancelled
        applied = self._cancel(link, occurrence_ids, wanted, applied, deadline)
        state = SeriesState(series.rule_text, plan.meeting_type, applied, occurrence_ids)
        saved = self.links.set_series(link, state.to_json(), series.first)
        if saved is None:
            raise ZoomMeetingNotFound(meeting_id)  # removed meanwhile: the record is retried
        if rebuilt and cancelled is not None:
            self._reapply_exceptions(saved, series, deadline)
        return saved, "created" if made is not None else "moved"

    def _ensure_meeting(
        self, user_id: str, event_id: str, series: Series, plan: ZoomRecurrence, deadline: Deadline
    ) -> tuple[MeetingLink, list[ZoomOccurrence] | None]:
        """The series' link with a meeting, made through the claim if there is none; the occurrences Zoom
        answered when this call made it (None when it was there already, or adopted after a lost create)."""
        made: list[list[ZoomOccurrence]] = []

        def create(token: str, reference: str) -> ZoomMeeting:
            meeting, occurrences = self.zoom.create_series(token, series.first, plan, deadline, reference)
            made.append(occurrences)
            return meeting

        meetings = self.meetings
        link = self.links.get(user_id, event_id)
        while True:
            if link is None or (link.meeting_id is None and meetings.claim_expired(link)):
                created = meetings.claim_and_create(
                    user_id, event_id, series.first, deadline, replacing=link, create_with=create
                )
                if created is not None:
                    return created, (made[0] if made else None)
            elif link.meeting_id is None:
                meetings.wait_for_claim(deadline)
            else:
                return link, None
            link = self.links.get(user_id, event_id)

    def _rebuild(self, link: MeetingLink, series: Series, plan: ZoomRecurrence, deadline: Deadline) -> dict[str, str]:
        """One series PATCH (Zoom remakes the occurrences) and, for fixed times, one GET for their ids."""
        meeting_id = link.meeting_id
        assert meeting_id is not None
        self._counted(
            link.user_id, lambda token: self.zoom.update_series(token, meeting_id, series.first, plan, deadline)
        )
        if plan.recurrence is None:
            return {}
        occurrences = self._call(link.user_id, lambda token: self.zoom.occurrences(token, meeting_id, deadline))
        return self._checked(link, series, occurrences)

    def _checked(self, link: MeetingLink, series: Series, occurrences: list[ZoomOccurrence]) -> dict[str, str]:
        """Zoom's occurrence ids by original start; a difference from the rule's expansion is logged and counted."""
        if series.zoom().recurrence is None:
            return {}
        expected = [zoom_time(start) for start in series.starts(ZOOM_MAX_OCCURRENCES + 1)]
        found = [zoom_time(occurrence.start) for occurrence in occurrences]
        if found != expected:
            count("SeriesOccurrenceMismatch")
            differing = next(
                (n for n, pair in enumerate(zip(expected, found, strict=False)) if pair[0] != pair[1]), None
            )
            logger.warning(
                "Zoom's occurrences differ from the rule's",
                extra={
                    "meeting_id": link.meeting_id,
                    "expected": len(expected),
                    "found": len(found),
                    "first_difference": differing,
                },
            )
        return {zoom_time(occurrence.start): occurrence.occurrence_id for occurrence in occurrences}

    def _cancel(
        self,
        link: MeetingLink,
        occurrence_ids: dict[str, str],
        wanted: frozenset[str],
        applied: frozenset[str],
        deadline: Deadline,
    ) -> frozenset[str]:
        """Deletes the occurrences cancelled since `applied`, one call each; returns what is cancelled now."""
        meeting_id = link.meeting_id
        assert meeting_id is not None
        done = set(applied)
        for start in sorted(wanted - applied):
            occurrence_id = occurrence_ids.get(start)
            if occurrence_id is None:
                logger.warning("a cancelled date has no occurrence at Zoom", extra={"meeting_id": meeting_id})
                continue
            self._delete_occurrence(link.user_id, meeting_id, occurrence_id, deadline)
            done.add(start)
        return frozenset(done & wanted)

    def _reapply_exceptions(self, link: MeetingLink, series: Series, deadline: Deadline) -> None:
        """After Zoom remade the occurrences: every exception item's move again (and its write-back)."""
        for item in self.calendar.exceptions_of(link.user_id, link.event_id):
            fields, _ = self._exception_fields(item, link, series, deadline, force=True)
            self.calendar.write_back(item, fields)

    def _series_gone(self, link: MeetingLink, item: CalendarItem | None, deadline: Deadline) -> str:
        """REMOVE of the series item, or its toggle off: the whole meeting goes, and its exceptions' links."""
        removed = self.meetings.delete_event_meeting(link.user_id, link.event_id, deadline)
        for user_id, event_id in self.links.find_by_meeting(link.meeting_id or ""):
            if event_id != link.event_id:
                self.links.remove(user_id, event_id, link.meeting_id or "")
        for exception in self.calendar.exceptions_of(link.user_id, link.event_id):
            self.calendar.write_back(exception, ZoomFields())
        if item is not None:
            self.calendar.write_back(item, ZoomFields())
        return "removed" if removed else "nothing"

    # --- an exception item

    def _reconcile_exception(self, item: CalendarItem, deadline: Deadline) -> str:
        series_id = item.series_id
        assert series_id is not None
        series_link = self.links.get(item.user_id, series_id)
        series_item = self.calendar.get(item.user_id, series_id)
        series = _series_of(series_item)
        if series_link is None or series_link.meeting_id is None or series is None or not series_item.zoom:  # type: ignore[union-attr]
            # No meeting to follow yet: the series' own reconcile applies this exception once it has one.
            self.calendar.write_back(item, ZoomFields())
            return "waiting for its series"
        try:
            fields, outcome = self._exception_fields(item, series_link, series, deadline, force=False)
        except ZoomMeetingNotFound:
            # The series' meeting is gone at Zoom: the series gets a new one on its next reconcile, and then
            # re-applies this exception.
            fields, outcome = ZoomFields(), "waiting for its series"
        self.calendar.write_back(item, fields)
        return outcome

    def _exception_fields(
        self, item: CalendarItem, series_link: MeetingLink, series: Series, deadline: Deadline, *, force: bool
    ) -> tuple[ZoomFields, str]:
        linked = ZoomFields(series_link.meeting_id, series_link.join_url, SCHEDULED)
        state = SeriesState.of(series_link)
        if state is None or not state.occurrence_ids:
            return linked, "linked"  # no fixed times at Zoom: the series' link is all there is
        original = parse_instant(item.text("recurrence_id"))
        schedule = item.schedule()
        if original is None or schedule is None or not series.is_occurrence(original):
            return linked.with_status(FAILED, BAD_EXCEPTION_SENTENCE), FAILED
        key = zoom_time(original)
        occurrence_id = state.occurrence_ids.get(key)
        if key in state.cancelled:
            return linked, "cancelled"
        if occurrence_id is None:
            return linked.with_status(FAILED, BAD_EXCEPTION_SENTENCE), FAILED
        own = self._own_row(item, occurrence_id, deadline, force=force)
        at_rule = Schedule(series.first.topic, original, original + series.duration, series.first.time_zone)
        current = at_rule if force or own is None or own.schedule is None else own.schedule
        wanted = Schedule(series.first.topic, schedule.start, schedule.end, series.first.time_zone)
        if (current.start, current.end) == (wanted.start, wanted.end):
            if force and own is not None and own.meeting_id is not None:
                self.links.remove(own.user_id, own.event_id, own.meeting_id)  # Zoom has it at the rule's time
            return linked, "unchanged"
        try:
            self._move_occurrence(series_link, occurrence_id, wanted, deadline)
        except NotConnected:
            return linked.with_status(AUTHORIZATION_REQUIRED, NOT_CONNECTED_SENTENCE), AUTHORIZATION_REQUIRED
        self.links.put_exception(
            series_link, item.event_id, wanted, ExceptionState(series_link.event_id, key, occurrence_id).to_json()
        )
        return linked, "occurrence moved"

    def _own_row(
        self, item: CalendarItem, occurrence_id: str, deadline: Deadline, *, force: bool
    ) -> MeetingLink | None:
        """The exception's row, if it is about `occurrence_id`; one about another occurrence (the exception now
        replaces a different one) is dropped after that occurrence went back to the rule's time."""
        own = self.links.get(item.user_id, item.event_id)
        own_state = ExceptionState.of(own)
        if own is None or own_state is None or own_state.occurrence_id == occurrence_id:
            return own
        if not force:  # after a series PATCH it is at the rule's time already
            self._put_back(own, deadline)
        if own.meeting_id is not None:
            self.links.remove(own.user_id, own.event_id, own.meeting_id)
        return None

    def _exception_gone(self, own: MeetingLink, item: CalendarItem | None, deadline: Deadline) -> str:
        """REMOVE of an exception item: its occurrence goes back to the rule's time (one PATCH)."""
        assert own.meeting_id is not None
        self._put_back(own, deadline)
        self.links.remove(own.user_id, own.event_id, own.meeting_id)
        if item is not None:
            self.calendar.write_back(item, ZoomFields())
        return "occurrence restored"

    def _put_back(self, own: MeetingLink, deadline: Deadline) -> None:
        """The occurrence an exception's row says it moved, back at the rule's time and length."""
        state = ExceptionState.of(own)
        assert state is not None
        series_link = self.links.get(own.user_id, state.series_id)
        original = parse_instant(state.original_start)
        if series_link is not None and series_link.meeting_id == own.meeting_id and original is not None:
            series_schedule = series_link.schedule
            assert series_schedule is not None
            duration = series_schedule.end - series_schedule.start
            at_rule = Schedule(series_schedule.topic, original, original + duration, series_schedule.time_zone)
            if own.schedule is None or (own.schedule.start, own.schedule.end) != (at_rule.start, at_rule.end):
                try:
                    self._move_occurrence(series_link, state.occurrence_id, at_rule, deadline)
                except (NotConnected, ZoomMeetingNotFound, ZoomRejected) as exc:
                    logger.info("occurrence not put back", extra={"reason": type(exc).__name__})

    # --- Zoom calls

    def _move_occurrence(
        self, series_link: MeetingLink, occurrence_id: str, schedule: Schedule, deadline: Deadline
    ) -> None:
        meeting_id = series_link.meeting_id
        assert meeting_id is not None
        self._counted(
            series_link.user_id,
            lambda token: self.zoom.move_occurrence(token, meeting_id, occurrence_id, schedule, deadline),
        )

    def _delete_occurrence(self, user_id: str, meeting_id: str, occurrence_id: str, deadline: Deadline) -> None:
        # An occurrence's delete counts against the daily quota like an update (zoom-notes).
        self._counted(user_id, lambda token: self.zoom.delete_occurrence(token, meeting_id, occurrence_id, deadline))

    def _call(self, user_id: str, operation: Callable[[str], Any]) -> Any:
        return self.meetings.connection.call_zoom(user_id, operation)

    def _counted(self, user_id: str, operation: Callable[[str], Any]) -> Any:
        """A create or update (the user's daily Zoom quota): held back while that quota is known used up."""
        return self.meetings.call_counted(user_id, operation)


# ------------------------------------------------------------------ helpers


def _series_of(item: CalendarItem | None) -> Series | None:
    if item is None or item.text("recurrence") is None:
        return None
    schedule = item.schedule()
    if schedule is None:
        return None
    try:
        return parse_series(item.text("recurrence"), schedule)
    except InvalidRecurrence:
        return None


def _cancelled(series: Series, plan: ZoomRecurrence, exdates: list[str]) -> frozenset[str]:
    """The exdates that name one of the rule's occurrences, in Zoom's time format (none without fixed times)."""
    if plan.recurrence is None:
        return frozenset()
    return frozenset(zoom_time(moment) for moment in parse_exdates(exdates) if series.is_occurrence(moment))


def _in_step(link: MeetingLink, series: Series, plan: ZoomRecurrence, cancelled: frozenset[str]) -> bool:
    """Nothing to do at Zoom: the state applied is what the item asks for."""
    state = SeriesState.of(link)
    if state is None or link.schedule != series.first:
        return False
    return (state.rule, state.meeting_type, state.cancelled) == (series.rule_text, plan.meeting_type, cancelled)


def _needs_rebuild(
    link: MeetingLink, state: SeriesState, series: Series, plan: ZoomRecurrence, cancelled: frozenset[str]
) -> bool:
    """A change Zoom can only take as a series PATCH: rule, type, times or zone, or a cancellation undone."""
    first, applied = series.first, link.schedule
    times_changed = applied is None or (applied.start, applied.end, applied.time_zone) != (
        first.start,
        first.end,
        first.time_zone,
    )
    return (
        times_changed
        or state.rule != series.rule_text
        or state.meeting_type != plan.meeting_type
        or bool(state.cancelled - cancelled)
    )


def _linked(link: MeetingLink, plan: ZoomRecurrence) -> ZoomFields:
    return ZoomFields(link.meeting_id, link.join_url, SCHEDULED, plan.zoom_error)
