"""The connect-sweep queue: after a user connects Zoom, their waiting calendar events get their meetings."""

from __future__ import annotations

import json

from link_zoom.adapters.aws import client
from link_zoom.config import get_settings


def request_sweep(user_id: str) -> None:
    """One message `{"user_id": ...}` for the ConnectSweepFunction (it runs outside the callback's request)."""
    client("sqs").send_message(QueueUrl=get_settings().sweep_queue_url, MessageBody=json.dumps({"user_id": user_id}))
