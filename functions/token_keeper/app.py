"""Scheduled: the keeper's planner queues every Zoom connection whose refresh token is getting old (Zoom's live
90 days) for TokenRefreshFunction."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from link_zoom import composition
from link_zoom.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return composition.keeper().plan(context.get_remaining_time_in_millis).as_dict()
