"""Plays the Link server on the moto server's calendar table, and Lambda's stream mapping for the handler:
each write's stream records are read back from the table's own stream and handed to the stream function.
"""

from __future__ import annotations

from typing import Any

from devstack.aws import LocalResources
from link_zoom.adapters.stream_dead_letters import as_lambda_record


class CalendarTable:
    def __init__(self, local_aws: LocalResources) -> None:
        self.ddb = local_aws.client("dynamodb")
        self.name = local_aws.tables["CalendarTable"]
        self.stream_arn = self.ddb.describe_table(TableName=self.name)["Table"]["LatestStreamArn"]
        self.streams = local_aws.client("dynamodbstreams")
        self.shard_id = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0][
            "ShardId"
        ]
        self._iterator: str | None = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self.shard_id, ShardIteratorType="LATEST"
        )["ShardIterator"]

    # --- the Link server's writes

    def put(self, user_id: str, event_id: str, **attributes: Any) -> None:
        item = {"user_id": {"S": user_id}, "event_id": {"S": event_id}}
        for name, value in attributes.items():
            item[name] = _dynamo(value)
        self.ddb.put_item(TableName=self.name, Item=item)

    def update(self, user_id: str, event_id: str, **attributes: Any) -> None:
        names = {f"#a{n}": name for n, name in enumerate(attributes)}
        values = {f":a{n}": _dynamo(value) for n, value in enumerate(attributes.values())}
        self.ddb.update_item(
            TableName=self.name,
            Key={"user_id": {"S": user_id}, "event_id": {"S": event_id}},
            UpdateExpression="SET " + ", ".join(f"#a{n} = :a{n}" for n in range(len(attributes))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def remove_attributes(self, user_id: str, event_id: str, *names: str) -> None:
        self.ddb.update_item(
            TableName=self.name,
            Key={"user_id": {"S": user_id}, "event_id": {"S": event_id}},
            UpdateExpression="REMOVE " + ", ".join(f"#r{n}" for n in range(len(names))),
            ExpressionAttributeNames={f"#r{n}": name for n, name in enumerate(names)},
        )

    def delete(self, user_id: str, event_id: str) -> None:
        self.ddb.delete_item(TableName=self.name, Key={"user_id": {"S": user_id}, "event_id": {"S": event_id}})

    def item(self, user_id: str, event_id: str) -> dict[str, Any]:
        answer = self.ddb.get_item(
            TableName=self.name, Key={"user_id": {"S": user_id}, "event_id": {"S": event_id}}, ConsistentRead=True
        )
        return {name: next(iter(value.values())) for name, value in answer.get("Item", {}).items()}

    # --- the stream

    def new_records(self) -> list[dict[str, Any]]:
        """The stream records written since the last call, as Lambda delivers them."""
        records: list[dict[str, Any]] = []
        while self._iterator:
            page = self.streams.get_records(ShardIterator=self._iterator, Limit=1000)
            self._iterator = page.get("NextShardIterator")
            if not page["Records"]:
                break
            records += [as_lambda_record(record, self.stream_arn) for record in page["Records"]]
        return records


def _dynamo(value: Any) -> dict[str, Any]:
    """A Python value as DynamoDB JSON: bool, a set of strings (SS, e.g. exdates) or a string."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, set | frozenset):
        return {"SS": sorted(value)}
    return {"S": value}
