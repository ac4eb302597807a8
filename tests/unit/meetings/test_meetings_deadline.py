"""The time budget every outside call is held to."""

from __future__ import annotations

from link_zoom.deadline import API_BUDGET_S, SAFETY_MARGIN_S, Deadline
from tests.support.lambda_context import FakeLambdaContext


def test_an_api_deadline_stays_below_api_gateways_29_seconds_whatever_the_function_timeout() -> None:
    assert Deadline.for_api(FakeLambdaContext(remaining_ms=900_000)).remaining() <= API_BUDGET_S < 29
    assert Deadline.for_api(FakeLambdaContext(remaining_ms=10_000)).remaining() <= 10 - SAFETY_MARGIN_S


def test_a_stream_deadline_follows_the_lambdas_remaining_time_minus_the_margin() -> None:
    remaining = Deadline.from_context(FakeLambdaContext(remaining_ms=120_000)).remaining()
    assert 120 - SAFETY_MARGIN_S - 0.5 < remaining <= 120 - SAFETY_MARGIN_S


def test_a_deadline_runs_out() -> None:
    now = [100.0]
    deadline = Deadline(5, clock=lambda: now[0])
    assert deadline.remaining() == 5
    now[0] += 6
    assert deadline.remaining() == 0
    assert Deadline.from_context(FakeLambdaContext(remaining_ms=500)).remaining() == 0
