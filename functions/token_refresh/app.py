"""The keeper's queue worker: refreshes the Zoom connections TokenKeeperFunction queued, one per message."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.edge import batches
from link_zoom.observability import logger, metrics


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Messages {"user_id", "refreshed_before"}: a connection refreshed since is skipped after one read.
    return batches.handle_refresh_batch(event, context, composition.refresh_worker)
