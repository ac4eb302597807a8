"""The users' daily Zoom limit markers (domain/zoom_quota.py), one row per user in the meeting links table.

The row sits beside the user's link rows under a sort key no link row uses (`#zoom-daily-limit`): every function
that sends creates and updates already reads and writes that table, and a marker is one number. It has no
`meeting_id`, so it is not in the `by_meeting` index. Only ever moved later (a conditional update), and read
as "limited" only until the time it holds, so an old row blocks nothing.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from link_zoom.adapters.dynamo import bind

MARKER_KEY = "#zoom-daily-limit"


class ZoomLimitMarker(Model):
    class Meta:
        table_name = "MeetingLinks"  # replaced by bind() with MEETING_LINKS_TABLE

    user_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)
    zoom_limited_until = NumberAttribute(null=True)  # epoch seconds: Zoom's Retry-After, or 00:00 UTC


class ZoomQuotaStore:
    def __init__(self, table_name: str) -> None:
        self._model = bind(ZoomLimitMarker, table_name)

    def limited_until(self, user_id: str) -> float | None:
        try:
            row = self._model.get(user_id, MARKER_KEY, attributes_to_get=["zoom_limited_until"])
        except self._model.DoesNotExist:
            return None
        return float(row.zoom_limited_until) if row.zoom_limited_until is not None else None

    def limit_until(self, user_id: str, until: float) -> None:
        model = self._model
        try:
            model(user_id, MARKER_KEY).update(
                actions=[model.zoom_limited_until.set(until)],
                condition=model.zoom_limited_until.does_not_exist() | (model.zoom_limited_until < until),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise  # a later time is already recorded otherwise: nothing to do
