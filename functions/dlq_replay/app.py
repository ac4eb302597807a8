"""Replays the calendar stream's dead letters: each message's records go through the stream function again."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.deadline import Deadline
from link_zoom.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Invoked by an operator (make replay-dlq) after the DLQ alarm; the event carries nothing needed.
    return composition.replay_dead_letters(Deadline.from_context(context)).as_dict()
