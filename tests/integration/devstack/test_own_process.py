"""`make run --own-process FUNCTION`: the function runs in a process of its own, as a Lambda sandbox does
(devstack.container): cold on its first invocation, warm after, and cold again once its process is gone."""

from __future__ import annotations

import re
from pathlib import Path

from devstack.functions import FunctionLogs, FunctionRegistry, discover_functions
from devstack.template import ROOT, Resolver, load_template


def _registry(logs_dir: Path) -> FunctionRegistry:
    template = load_template()
    return FunctionRegistry(
        discover_functions(template, ROOT, Resolver(template)),
        FunctionLogs(logs_dir),
        own_process={"HealthFunction": ()},
    )


def test_a_function_of_its_own_process_starts_cold_then_stays_warm(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    try:
        first = registry.invoke("HealthFunction", {"httpMethod": "GET", "path": "/v1/health"})
        second = registry.invoke("HealthFunction", {"httpMethod": "GET", "path": "/v1/health"})
        pid = registry._containers["HealthFunction"].pid
    finally:
        registry.stop_own_processes()

    assert first.ok and second.ok, (first.error, second.error)
    assert first.payload["statusCode"] == 200 and second.payload == first.payload
    # Its handler was never imported here: it ran in the other process, which kept running between calls.
    assert registry.module("HealthFunction") is None and pid is not None
    reports = [line for line in (tmp_path / "HealthFunction.log").read_text().splitlines() if line.startswith("REPORT")]
    assert len(reports) == 2
    assert re.search(r"Init Duration: [\d.]+ ms", reports[0]) and "Init Duration" not in reports[1]


def test_an_error_in_its_own_process_is_lambdas_error_object(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    try:
        answer = registry.invoke("HealthFunction", "not an API Gateway event")
    finally:
        registry.stop_own_processes()

    assert answer.error is not None and answer.error["errorType"] and answer.error["errorMessage"] is not None
