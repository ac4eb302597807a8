"""The per-event work queue (SQS, 14 days): one message per calendar event to reconcile, delayed as needed."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from link_zoom.adapters.aws import client
from link_zoom.config import get_settings

MAX_DELAY_S = 900  # SQS's maximum DelaySeconds: a later due time is waited out by re-queueing


class EventWorkQueue:
    def __init__(self, queue_url: str | None = None) -> None:
        self._url = queue_url or get_settings().event_work_queue_url

    def send(self, bodies: Sequence[dict[str, Any]], delay_s: float = 0) -> None:
        """Sends every body (JSON) with the same delay; raises at the first that could not be sent. One
        SendMessage each: it is what the functions' policies grant (SendMessageBatch is the same permission at AWS,
        but not in moto's IAM enforcement), and fan-outs are a few events."""
        delay = max(0, min(MAX_DELAY_S, math.ceil(delay_s)))  # never early: a due time is not missed by a second
        for body in bodies:
            client("sqs").send_message(QueueUrl=self._url, MessageBody=json.dumps(body), DelaySeconds=delay)
