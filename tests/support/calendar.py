"""The Link server's writes to the calendar table (DynamoDB's low-level client), shared by the integration
tests (moto server, the stream read back) and the end-to-end tests (the stack's table)."""

from __future__ import annotations

from typing import Any


class CalendarWrites:
    """Puts, updates, deletes and reads calendar items as the Link server does: strings, booleans and string sets
    (exdates); an item read back is plain values."""

    def __init__(self, ddb: Any, name: str) -> None:
        self.ddb = ddb
        self.name = name

    def put(self, user_id: str, event_id: str, **attributes: Any) -> None:
        item = _key(user_id, event_id)
        for name, value in attributes.items():
            item[name] = _dynamo(value)
        self.ddb.put_item(TableName=self.name, Item=item)

    def update(self, user_id: str, event_id: str, **attributes: Any) -> None:
        names = {f"#a{n}": name for n, name in enumerate(attributes)}
        values = {f":a{n}": _dynamo(value) for n, value in enumerate(attributes.values())}
        self.ddb.update_item(
            TableName=self.name,
            Key=_key(user_id, event_id),
            UpdateExpression="SET " + ", ".join(f"#a{n} = :a{n}" for n in range(len(attributes))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def remove_attributes(self, user_id: str, event_id: str, *names: str) -> None:
        self.ddb.update_item(
            TableName=self.name,
            Key=_key(user_id, event_id),
            UpdateExpression="REMOVE " + ", ".join(f"#r{n}" for n in range(len(names))),
            ExpressionAttributeNames={f"#r{n}": name for n, name in enumerate(names)},
        )

    def delete(self, user_id: str, event_id: str) -> None:
        self.ddb.delete_item(TableName=self.name, Key=_key(user_id, event_id))

    def item(self, user_id: str, event_id: str) -> dict[str, Any]:
        answer = self.ddb.get_item(TableName=self.name, Key=_key(user_id, event_id), ConsistentRead=True)
        return {name: next(iter(value.values())) for name, value in answer.get("Item", {}).items()}


def _key(user_id: str, event_id: str) -> dict[str, Any]:
    return {"user_id": {"S": user_id}, "event_id": {"S": event_id}}


def _dynamo(value: Any) -> dict[str, Any]:
    """A Python value as DynamoDB JSON: bool, a set of strings (SS, e.g. exdates) or a string."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, set | frozenset):
        return {"SS": sorted(value)}
    return {"S": value}
