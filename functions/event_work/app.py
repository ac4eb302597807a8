"""The calendar's self-healing: stream on-failure messages become per-event work, and that work is reconciled."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.edge import batches
from link_zoom.observability import logger, metrics


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Messages from CalendarStreamDLQ (Lambda's on-failure records) and EventWorkQueue ({"user_id", "event_id"}).
    return batches.handle_event_work_batch(event, context, composition.event_work)
