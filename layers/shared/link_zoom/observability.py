"""One Logger and one Metrics for the process (JSON logs with the correlation id, EMF metrics)."""

from __future__ import annotations

import threading

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()

_metrics_lock = threading.Lock()


def count(name: str, value: int = 1) -> None:
    """Adds to a count metric; safe from worker threads (the stream handler's pool), unlike add_metric."""
    with _metrics_lock:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
