"""The calendar table's stream: meetings created, moved and deleted as the Link server changes events."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.edge import batches
from link_zoom.observability import logger, metrics


@logger.inject_lambda_context(correlation_id_path="Records[0].eventID")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Partial batch failures: only the failed records (and the later records of their events) come back.
    return batches.handle_stream_batch(event, context, composition.meetings_for_fan_out, composition.event_work)
