"""The meeting links table (PynamoDB): which Zoom meeting belongs to which (user, calendar event).

Every write is conditional: the claim takes an empty slot (or an expired claim), completing needs our own
claim, moving and removing need the meeting id we read. No token of any kind is stored here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from link_zoom.adapters.dynamo import bind
from link_zoom.domain.meetings import MeetingLink, ZoomMeeting
from link_zoom.domain.schedule import Schedule, parse_instant, zoom_time


class ByMeetingIndex(GlobalSecondaryIndex["MeetingLinkModel"]):
    class Meta:
        index_name = "by_meeting"
        projection = KeysOnlyProjection()

    meeting_id = UnicodeAttribute(hash_key=True)


class MeetingLinkModel(Model):
    class Meta:
        table_name = "MeetingLinks"  # replaced by bind() with MEETING_LINKS_TABLE

    user_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)
    meeting_id = UnicodeAttribute(null=True)  # absent while a creator holds the claim (sparse GSI)
    by_meeting = ByMeetingIndex()
    join_url = UnicodeAttribute(null=True)
    password = UnicodeAttribute(null=True)  # the meeting passcode the PUT route answers with
    start = UnicodeAttribute(null=True)
    end = UnicodeAttribute(null=True)
    time_zone = UnicodeAttribute(null=True)
    topic = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    claim_id = UnicodeAttribute(null=True)
    claim_expires_at = NumberAttribute(null=True)
    claim_ref = UnicodeAttribute(null=True)  # written into the agenda of the meeting the claim's create makes
    outcome_unknown = BooleanAttribute(null=True)  # a create for this claim lost its answer
    series = UnicodeAttribute(null=True)  # JSON: a recurring event's applied state (domain/series.py)


def _conditional_failed(error: PutError | UpdateError | DeleteError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


def _now() -> str:
    return zoom_time(datetime.now(UTC))


def _to_link(row: MeetingLinkModel) -> MeetingLink:
    start, end = parse_instant(row.start), parse_instant(row.end)
    schedule = (
        Schedule(row.topic or "", start, end, row.time_zone or "UTC") if start is not None and end is not None else None
    )
    return MeetingLink(
        user_id=row.user_id,
        event_id=row.event_id,
        meeting_id=row.meeting_id,
        join_url=row.join_url,
        password=row.password,
        schedule=schedule,
        claim_id=row.claim_id,
        claim_expires_at=row.claim_expires_at,
        claim_ref=row.claim_ref,
        outcome_unknown=bool(row.outcome_unknown),
        series=json.loads(row.series) if row.series else None,
    )


class MeetingLinksStore:
    def __init__(self, table_name: str) -> None:
        self._model = bind(MeetingLinkModel, table_name)

    def get(self, user_id: str, event_id: str) -> MeetingLink | None:
        try:
            return _to_link(self._model.get(user_id, event_id, consistent_read=True))
        except self._model.DoesNotExist:
            return None

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
        model = self._model
        row = model(
            user_id,
            event_id,
            claim_id=claim_id,
            claim_expires_at=expires_at,
            claim_ref=ref,
            outcome_unknown=outcome_unknown or None,
            updated_at=_now(),
        )
        condition = (
            model.user_id.does_not_exist()
            if replacing is None
            else (model.claim_id == replacing) & model.meeting_id.does_not_exist()
        )
        try:
            row.save(condition=condition)
        except PutError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def complete(
        self, user_id: str, event_id: str, claim_id: str, meeting: ZoomMeeting, schedule: Schedule
    ) -> MeetingLink | None:
        # The claimed row holds nothing but the claim (a claim is a put of the whole row), so the completed row
        # is written whole as well: one conditional put, no update expression and no item sent back.
        model = self._model
        row = model(
            user_id,
            event_id,
            meeting_id=meeting.meeting_id,
            join_url=meeting.join_url,
            password=meeting.password or None,
            start=schedule.start_time,
            end=schedule.end_time,
            time_zone=schedule.time_zone,
            topic=schedule.topic,
            updated_at=_now(),
        )
        try:
            row.save(condition=model.claim_id == claim_id)
        except PutError as error:
            if _conditional_failed(error):
                return None
            raise
        return _to_link(row)

    def mark_unknown(self, user_id: str, event_id: str, claim_id: str) -> bool:
        model = self._model
        try:
            model(user_id, event_id).update(
                actions=[model.outcome_unknown.set(True), model.claim_expires_at.set(0), model.updated_at.set(_now())],
                condition=(model.claim_id == claim_id) & model.meeting_id.does_not_exist(),
            )
        except UpdateError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def release(self, user_id: str, event_id: str, claim_id: str) -> bool:
        model = self._model
        try:
            model(user_id, event_id).delete(condition=(model.claim_id == claim_id) & model.meeting_id.does_not_exist())
        except DeleteError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def reschedule(self, link: MeetingLink, schedule: Schedule) -> MeetingLink | None:
        model = self._model
        row = model(link.user_id, link.event_id)
        try:
            row.update(actions=self._schedule_actions(schedule), condition=model.meeting_id == link.meeting_id)
        except UpdateError as error:
            if _conditional_failed(error):
                return None
            raise
        return _to_link(row)

    def set_series(self, link: MeetingLink, state: dict[str, Any], schedule: Schedule) -> MeetingLink | None:
        """Records a series' applied state and first occurrence, while the link still holds its meeting."""
        model = self._model
        row = model(link.user_id, link.event_id)
        actions = [*self._schedule_actions(schedule), model.series.set(json.dumps(state, sort_keys=True))]
        try:
            row.update(actions=actions, condition=model.meeting_id == link.meeting_id)
        except UpdateError as error:
            if _conditional_failed(error):
                return None
            raise
        return _to_link(row)

    def put_exception(self, series: MeetingLink, event_id: str, schedule: Schedule, state: dict[str, Any]) -> None:
        """The link of an exception item to its series' meeting, with where its occurrence was moved."""
        assert series.meeting_id is not None
        row = self._model(
            series.user_id,
            event_id,
            meeting_id=series.meeting_id,
            join_url=series.join_url,
            password=series.password,
            start=schedule.start_time,
            end=schedule.end_time,
            time_zone=schedule.time_zone,
            topic=schedule.topic,
            updated_at=_now(),
            series=json.dumps(state, sort_keys=True),
        )
        row.save()

    def remove(self, user_id: str, event_id: str, meeting_id: str) -> bool:
        model = self._model
        try:
            model(user_id, event_id).delete(condition=model.meeting_id == meeting_id)
        except DeleteError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def find_by_meeting(self, meeting_id: str) -> list[tuple[str, str]]:
        return [(row.user_id, row.event_id) for row in self._model.by_meeting.query(meeting_id)]

    def _schedule_actions(self, schedule: Schedule) -> list[Action]:
        model = self._model
        return [
            model.start.set(schedule.start_time),
            model.end.set(schedule.end_time),
            model.time_zone.set(schedule.time_zone),
            model.topic.set(schedule.topic),
            model.updated_at.set(_now()),
        ]
