"""After a user connects Zoom: their not-yet-ended events waiting with authorization_required get meetings."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.edge import batches
from link_zoom.observability import logger, metrics


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # One message per connect, {"user_id": ...}; a failed sweep comes back after the visibility timeout.
    return batches.handle_sweep_batch(event, context, composition.meetings_for_fan_out, composition.event_work)
