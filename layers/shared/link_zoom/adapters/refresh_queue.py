"""The keeper's refresh queue (SQS): one `{"user_id", "refreshed_before"}` message per connection due."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from link_zoom.adapters.aws import client
from link_zoom.config import get_settings


class RefreshNotQueued(Exception):
    """SQS refused some messages of a batch (the planner's next run queues them again)."""


class RefreshQueue:
    def __init__(self, queue_url: str | None = None) -> None:
        self._url = queue_url or get_settings().refresh_queue_url
        client("sqs")  # built now, before the planner's segment threads share it

    def send(self, bodies: Sequence[Mapping[str, Any]]) -> None:
        """One SendMessageBatch (at most 10 bodies); raises if SQS refused any of them."""
        if not bodies:
            return
        entries = [{"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate(bodies)]
        answer = client("sqs").send_message_batch(QueueUrl=self._url, Entries=entries)
        failed = answer.get("Failed") or []
        if failed:
            raise RefreshNotQueued(
                f"{len(failed)} of {len(entries)} refresh messages not queued: {failed[0].get('Code')}"
            )
