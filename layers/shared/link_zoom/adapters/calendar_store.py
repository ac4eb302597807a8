"""The calendar table (owned by the Link server): reading items and writing back only the four zoom_* attributes.

Each write-back is conditional on the item still holding the start, end, time_zone, subject and zoom it
was read with, so a newer write of the Link server is never overwritten: if the condition fails, the
stream record of that newer write brings the item up to date.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from link_zoom.adapters.aws import client
from link_zoom.domain.calendar_events import (
    AUTHORIZATION_REQUIRED,
    DELETED_AT_ZOOM,
    CalendarItem,
    ZoomFields,
)
from link_zoom.observability import logger

WAITING_INDEX = "by_user_status"  # template.yaml: the calendar table's sparse index (user_id, zoom_status)


class CalendarStore:
    def __init__(self, table_name: str) -> None:
        self._table = table_name

    def get(self, user_id: str, event_id: str) -> CalendarItem | None:
        answer = client("dynamodb").get_item(
            TableName=self._table,
            Key={"user_id": {"S": user_id}, "event_id": {"S": event_id}},
            ConsistentRead=True,
        )
        return CalendarItem.from_image(answer.get("Item"))

    def write_back(self, item: CalendarItem, fields: ZoomFields) -> bool:
        if item.already_shows(fields):
            return True  # nothing new: no write, and no stream record for it
        names: dict[str, str] = {"#key": "user_id"}
        values: dict[str, Mapping[str, Any]] = {}
        conditions = ["attribute_exists(#key)"]
        for index, (name, value) in enumerate(item.watched().items()):
            names[f"#w{index}"] = name
            if value is None:
                conditions.append(f"attribute_not_exists(#w{index})")
            else:
                values[f":w{index}"] = value
                conditions.append(f"#w{index} = :w{index}")
        sets: list[str] = []
        removes: list[str] = []
        for index, (name, text) in enumerate(fields.attributes().items()):
            names[f"#z{index}"] = name
            if text is None:
                removes.append(f"#z{index}")
            else:
                values[f":z{index}"] = {"S": text}
                sets.append(f"#z{index} = :z{index}")
        expression = " ".join(
            part
            for part in (
                f"SET {', '.join(sets)}" if sets else "",
                f"REMOVE {', '.join(removes)}" if removes else "",
            )
            if part
        )
        return self._update(item.user_id, item.event_id, expression, " AND ".join(conditions), names, values)

    def waiting_for_connection(self, user_id: str) -> Iterator[CalendarItem]:
        pages = (
            client("dynamodb")
            .get_paginator("query")
            .paginate(
                TableName=self._table,
                # The sparse index holds only items with a zoom_status: this reads the waiting ones alone.
                IndexName=WAITING_INDEX,
                KeyConditionExpression="#key = :user AND #status = :waiting",
                FilterExpression="#zoom = :true",
                ExpressionAttributeNames={"#key": "user_id", "#zoom": "zoom", "#status": "zoom_status"},
                ExpressionAttributeValues={
                    ":user": {"S": user_id},
                    ":true": {"BOOL": True},
                    ":waiting": {"S": AUTHORIZATION_REQUIRED},
                },
            )
        )
        for page in pages:
            for image in page.get("Items", []):
                item = CalendarItem.from_image(image)
                if item is not None:
                    yield item

    def exceptions_of(self, user_id: str, series_id: str) -> Iterator[CalendarItem]:
        """The exception items of a series (the user's items whose series_id names it)."""
        pages = (
            client("dynamodb")
            .get_paginator("query")
            .paginate(
                TableName=self._table,
                KeyConditionExpression="#key = :user",
                FilterExpression="#series = :series",
                ExpressionAttributeNames={"#key": "user_id", "#series": "series_id"},
                ExpressionAttributeValues={":user": {"S": user_id}, ":series": {"S": series_id}},
            )
        )
        for page in pages:
            for image in page.get("Items", []):
                item = CalendarItem.from_image(image)
                if item is not None:
                    yield item

    def mark_deleted_at_zoom(self, user_id: str, event_id: str, meeting_id: str) -> bool:
        return self._update(
            user_id,
            event_id,
            "SET #status = :deleted REMOVE #meeting, #url, #error",
            "#meeting = :meeting",
            {"#status": "zoom_status", "#meeting": "zoom_meeting_id", "#url": "zoom_join_url", "#error": "zoom_error"},
            {":deleted": {"S": DELETED_AT_ZOOM}, ":meeting": {"S": meeting_id}},
        )

    def _update(
        self,
        user_id: str,
        event_id: str,
        expression: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Mapping[str, Any]],
    ) -> bool:
        dynamodb = client("dynamodb")
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"user_id": {"S": user_id}, "event_id": {"S": event_id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            dynamodb.update_item(**request)
        except dynamodb.exceptions.ConditionalCheckFailedException:
            logger.info(
                "calendar item changed meanwhile; its newer stream record takes over", extra={"event_id": event_id}
            )
            return False
        return True
