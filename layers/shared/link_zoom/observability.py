"""One Logger and one Metrics for the process (JSON logs with the correlation id, EMF metrics)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
