"""The token keeper through `make run`'s stack, for `make bench`: refreshes per second of one refresh worker.

    python -m devstack.bench_keeper           # measures, merges the section into docs/benchmarks.{json,md}

The stack starts as `make run` does, with TokenRefreshFunction in a process of its own (a Lambda container).
Users connect through the real consent flow (as in bench_stream); their refresh tokens are then made 61 days
old in the connections table. The clock starts when TokenKeeperFunction is invoked through the stack's Lambda
Invoke API (as `make keeper` does): it scans and queues them on TokenRefreshQueue, the stack's SQS poller hands
batches of 10 to the worker, one batch at a time (one worker: concurrency 1), and the clock stops when every
connection's refresh token is new. Zoom holds every call 0 ms (the baseline) or 100 ms, in the same stack, one
after the other. Besides the wall clock (which includes the local poller's own receive/delete round trips), the
worker's REPORT lines give its busy time, from which the refreshes per second of function time follow.

The worker paces its refreshes (at most WORKER_REFRESHES_PER_S a second): at 0 ms the pace is what is measured.
The projection for 1,000,000 connections multiplies the 100 ms rate by the template's maximum concurrency of the
worker's event source (TokenRefreshFunction's `ScalingConfig.MaximumConcurrency`).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devstack.aws import aws_client
from devstack.bench_stream import _reports, _Stack
from devstack.stack_process import start_stack_process
from devstack.template import ROOT, load_template

CONNECTIONS = 100
LATENCIES_MS = (0, 100)
WORKER = "TokenRefreshFunction"
PLANNER = "TokenKeeperFunction"
DAY = 86400
DONE_TIMEOUT_S = 300.0
TARGET = 1_000_000


def template_concurrency() -> int:
    events = load_template()["Resources"][WORKER]["Properties"]["Events"]
    return int(next(iter(events.values()))["Properties"]["ScalingConfig"]["MaximumConcurrency"])


@contextmanager
def _stack() -> Iterator[_Stack]:
    import requests

    from devstack.stack_process import child_environment

    with tempfile.TemporaryDirectory(prefix="bench-keeper-") as state:
        running = start_stack_process(
            Path(state),
            env=child_environment(POWERTOOLS_LOG_LEVEL="WARNING"),
            extra_args=("--keep-directory", "--own-process", WORKER),
        )
        try:
            stack = _Stack(running, requests.Session())
            yield stack
        finally:
            running.stop()


def _age(stack: _Stack, users: list[str], days: float) -> None:
    ddb, table = stack.process.aws("dynamodb"), stack.process.info["tables"]["ZoomConnectionsTable"]
    then = str(time.time() - days * DAY)
    for user_id in users:
        ddb.update_item(
            TableName=table,
            Key={"user_id": {"S": user_id}},
            UpdateExpression="SET refresh_issued_at = :then",
            ExpressionAttributeValues={":then": {"N": then}},
        )


def _still_due(stack: _Stack, users: list[str], since: float) -> int:
    ddb, table = stack.process.aws("dynamodb"), stack.process.info["tables"]["ZoomConnectionsTable"]
    due = 0
    for start in range(0, len(users), 100):
        keys = [{"user_id": {"S": u}} for u in users[start : start + 100]]
        items = ddb.batch_get_item(RequestItems={table: {"Keys": keys, "ProjectionExpression": "refresh_issued_at"}})
        due += sum(1 for item in items["Responses"][table] if float(item["refresh_issued_at"]["N"]) < since)
    return due


def _worker_log(stack: _Stack) -> str:
    path = stack.process.logs_dir / f"{WORKER}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def run_round(stack: _Stack, users: list[str], latency_ms: int) -> dict[str, Any]:
    """Ages every connection to 61 days, runs the planner, waits until the worker has refreshed them all."""
    _age(stack, users, 61)
    stack.set_latency(latency_ms)
    reports_before = len(_reports(_worker_log(stack)))
    invoker = aws_client("lambda", stack.process.info["lambda_endpoint_url"])
    began_epoch, began = time.time(), time.monotonic()
    plan = json.loads(invoker.invoke(FunctionName=PLANNER, Payload=b"{}")["Payload"].read())
    left = len(users)
    while time.monotonic() - began < DONE_TIMEOUT_S:
        left = _still_due(stack, users, began_epoch)
        if left == 0:
            break
        time.sleep(0.2)
    seconds = time.monotonic() - began
    stack.set_latency(0)
    time.sleep(0.5)  # the worker's last REPORT line
    reports = _reports(_worker_log(stack))[reports_before:]
    busy_s = sum(r["duration_ms"] for r in reports) / 1000.0
    refreshed = len(users) - left
    return {
        "zoom_latency_ms": latency_ms,
        "queued": plan.get("queued"),
        "refreshed": refreshed,
        "seconds": round(seconds, 2),
        "per_second_wall": round(refreshed / seconds, 2),
        "worker_invocations": len(reports),
        "worker_busy_s": round(busy_s, 2),
        "per_second_busy": round(refreshed / busy_s, 2) if busy_s else None,
        "init_ms": round(sum(r["init_ms"] for r in reports)),
    }


def measure() -> dict[str, Any]:
    from link_zoom.domain.keeper import WORKER_REFRESHES_PER_S  # the layer is on the path under make

    concurrency = template_concurrency()
    with _stack() as stack:
        stack.enable_zoom()
        users = [str(uuid.uuid4()) for _ in range(CONNECTIONS)]
        print(f"bench keeper: connecting {CONNECTIONS} users ...", file=sys.stderr)
        for user_id in users:
            stack.connect(user_id)
        run_round(stack, users, 0)  # warm-up: the worker's cold start is not charged to the baseline
        rounds = {}
        for latency in LATENCIES_MS:
            print(f"bench keeper: {CONNECTIONS} refreshes at {latency} ms ...", file=sys.stderr)
            rounds[str(latency)] = run_round(stack, users, latency)
    slow, base = rounds[str(LATENCIES_MS[-1])], rounds[str(LATENCIES_MS[0])]
    rate = float(slow["per_second_wall"])
    figures: dict[str, Any] = {
        "connections": CONNECTIONS,
        "rounds": rounds,
        "ratio_100ms_to_0ms": round(rate / float(base["per_second_wall"]), 2),
        "template_max_concurrency": concurrency,
        "worker_pace_per_s": WORKER_REFRESHES_PER_S,
        "projected_hours_1m": round(TARGET / (rate * concurrency) / 3600, 1),
        "projected_hours_1m_busy": round(TARGET / (float(slow["per_second_busy"]) * concurrency) / 3600, 1)
        if slow["per_second_busy"]
        else None,
    }
    figures["markdown"] = render(figures)
    return figures


def render(figures: dict[str, Any]) -> str:
    rounds = figures["rounds"]
    lines = [
        f"Through the stack `make run` starts: {figures['connections']} connections made through the consent flow, "
        "their refresh tokens aged to 61 days; TokenKeeperFunction invoked through the Lambda Invoke API (as `make "
        "keeper`) queues them on TokenRefreshQueue and the stack's SQS poller feeds TokenRefreshFunction (its own "
        "process) batches of 10, one at a time: one worker. Timed from the invoke until every refresh token is new. "
        "Wall: that time, which includes the local poller's receive and delete round trips; busy: the worker's "
        "REPORT durations. The 0 ms run is the baseline, after a warm-up round in the same stack. The worker paces "
        f"its refreshes to at most {figures['worker_pace_per_s']:g} a second (the keeper's share of Zoom's token "
        "endpoint), so the 0 ms run shows the pace rather than the worker's own speed.",
        "",
        "| Zoom latency | refreshed | wall (s) | refreshes/s (wall) | worker busy (s) | refreshes/s (busy) "
        "| invocations |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for latency, row in rounds.items():
        lines.append(
            f"| {latency} ms | {row['refreshed']} | {row['seconds']} | {row['per_second_wall']} | "
            f"{row['worker_busy_s']} | {row['per_second_busy']} | {row['worker_invocations']} |"
        )
    lines += [
        "",
        f"At 100 ms one worker refreshes {figures['ratio_100ms_to_0ms']}x as many per second as at 0 ms. At the "
        f"template's maximum concurrency of {figures['template_max_concurrency']} workers, 1,000,000 due connections "
        f"take about {figures['projected_hours_1m']} hours (wall rate; {figures['projected_hours_1m_busy']} hours "
        "at the busy rate), well inside the 30 days between a connection becoming due (day 60) and dying (day 90). "
        "Not measured: real Zoom's token-endpoint latency (the projection scales with it) nor Lambda's SQS poller.",
    ]
    return "\n".join(lines)


def merge_into_docs(name: str, section: dict[str, Any]) -> None:
    """Replaces this section in docs/benchmarks.json and re-renders docs/benchmarks.md from it: the other
    sections' figures stay those of their own run."""
    from devstack import bench

    path = ROOT / "docs" / "benchmarks.json"
    figures = json.loads(path.read_text())
    figures["sections"][name] = section
    path.write_text(json.dumps(figures, indent=2) + "\n")
    (ROOT / "docs" / "benchmarks.md").write_text(bench.render_markdown(figures))


SECTION = "Token keeper: refreshes per second of one worker, projected to 1,000,000 connections"


def _register() -> None:
    from devstack import bench

    bench.SECTIONS[SECTION] = measure


_register()


if __name__ == "__main__":
    measured = measure()
    merge_into_docs(SECTION, measured)
    print(json.dumps({k: v for k, v in measured.items() if k != "markdown"}, indent=2))
