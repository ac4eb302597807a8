"""Plays the Link server on the moto server's calendar table, and Lambda's stream mapping for the handler:
each write's stream records are read back from the table's own stream and handed to the stream function.
"""

from __future__ import annotations

from typing import Any

from devstack.aws import LocalResources
from link_zoom.adapters.stream_dead_letters import as_lambda_record
from tests.support.calendar import CalendarWrites


class CalendarTable(CalendarWrites):
    def __init__(self, local_aws: LocalResources) -> None:
        ddb = local_aws.client("dynamodb")
        super().__init__(ddb, local_aws.tables["CalendarTable"])
        self.stream_arn = ddb.describe_table(TableName=self.name)["Table"]["LatestStreamArn"]
        self.streams = local_aws.client("dynamodbstreams")
        self.shard_id = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0][
            "ShardId"
        ]
        self._iterator: str | None = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self.shard_id, ShardIteratorType="LATEST"
        )["ShardIterator"]

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
