"""The stream batch through `make run`'s stack, for `make bench`: cold container, warm, and two Lambda CPU shares.

    python -m devstack.bench_stream        # prints the JSON figures

Each round starts the stack as `make run` does (`python -m devstack.run`, a child process on free ports), so the
stream function's first batch is a fresh container's: nothing imported, no client built. Users are connected
through the real consent flow (ZoomOAuthFunction through the stack's Lambda Invoke API with the authorizer's
context, the emulator's consent page, the callback through the gateway). Then 100 calendar items (`zoom: true`)
are written to the calendar table at once, with Zoom holding every call 100 ms, and the clock runs until every
item is `scheduled`: the stack's own poller reads the stream and invokes the function, as Lambda would.

- sequential: the same, in a stack whose stream function works on one event at a time (STREAM_WORKERS=1),
  after a warm-up batch; the baseline of every ratio;
- cold: the first batch of a freshly started stack (a new process: the function cold-starts on it);
- warm: the next batch in that stack, with other users;
- 256 MB CPU share: cold, warm and sequential again with the stream function's process held to the CPU a 256 MB
  Lambda gets (1,769 MB is one vCPU, so 14.5 % of a core) by a cgroup CPU quota, the mechanism Lambda itself
  uses; moto, the emulator and the poller stay unlimited in the stack's process, as DynamoDB and Zoom do not
  share a Lambda's CPU;
- the template's CPU share: the same with the quota of the MemorySize template.yaml gives the stream function.

The stream function runs in a process of its own (`make run --own-process CalendarStreamFunction`), so its
first batch really is a fresh interpreter's, and the other functions (the consent flow, the post-connect sweep)
warm nothing of it.

Two shapes: 100 events of one user, and 100 events across 8 users. Importing this module registers the section.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.aws import aws_client
from devstack.events import api_event, authorizer_context
from devstack.stack_process import StackProcess, start_stack_process
from devstack.zoom_emulator import complete_consent

BATCH_SIZE = 100
ZOOM_LATENCY_MS = 100
SPEEDUP_GOAL = 5.0
COLD_ROUNDS = 3
SHAPES = {"1 user": 1, "8 users": 8}
STREAM_FUNCTION = "CalendarStreamFunction"
LAMBDA_MEMORY_MB = 256  # the Globals default: the share a function gets unless the template says otherwise
LAMBDA_MB_PER_VCPU = 1769
CFS_PERIOD_US = 100_000
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
DONE_TIMEOUT_S = 120.0


SETTINGS = ("unlimited", "limited", "template")


def template_memory_mb() -> int:
    """The stream function's MemorySize as template.yaml gives it (its own, else the Globals default)."""
    from devstack.template import load_template

    template = load_template()
    own = template["Resources"][STREAM_FUNCTION]["Properties"].get("MemorySize")
    return int(own or template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))


def setting_label(key: str, figures: dict[str, Any]) -> str:
    if key == "limited":
        return f"{LAMBDA_MEMORY_MB} MB share"
    if key == "template":
        return f"template {figures.get('template_memory_mb', '?')} MB share"
    return "unlimited"


def _settings(template_mb: int) -> list[tuple[str, int | None, int]]:
    """(figures key, Lambda memory whose CPU share the function gets or None, fresh stacks per shape)."""
    return [("unlimited", None, COLD_ROUNDS), ("limited", LAMBDA_MEMORY_MB, 1), ("template", template_mb, 1)]


@dataclass
class _Stack:
    """A running stack and what the bench does with it."""

    process: StackProcess
    http: Any  # requests.Session

    def _control(self, path: str, body: Any) -> None:
        request = urllib.request.Request(
            f"{self.process.zoom_emulator_url}/_emulator{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # nosec B310  # the local emulator
            answer.read()

    def set_latency(self, ms: int) -> None:
        self._control("/latency", {"ms": ms})

    def enable_zoom(self) -> None:
        self.process.aws("ssm").put_parameter(
            Name=self.process.info["feature_flag_parameter"], Value="true", Type="String", Overwrite=True
        )

    def connect(self, user_id: str) -> None:
        """The consent flow: /v1/zoom/authorize as the user (Invoke API), the emulator's page, the callback."""
        api = self.process.api_url.split("://", 1)[1]
        event = api_event(
            "GET",
            "/v1/zoom/authorize",
            headers={"X-Forwarded-Proto": "http", "Host": api},
            authorizer=authorizer_context(user_id, f"bench-{user_id[:8]}", False),
            domain_name=api,
        )
        invoker = aws_client("lambda", self.process.info["lambda_endpoint_url"])
        answer = invoker.invoke(FunctionName="ZoomOAuthFunction", Payload=json.dumps(event).encode())
        start = json.loads(answer["Payload"].read())
        location = complete_consent(json.loads(start["body"])["authorize_url"], f"{user_id}@corp.example", "x")
        done = self.http.get(location, timeout=30)
        if done.status_code != 200:
            raise RuntimeError(f"a bench user could not connect Zoom: {done.status_code}")

    def stream_log(self) -> str:
        path = self.process.logs_dir / "CalendarStreamFunction.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _items(users: list[str], tag: str, count: int) -> list[dict[str, Any]]:
    items = []
    for n in range(count):
        items.append(
            {
                "user_id": {"S": users[n % len(users)]},
                "event_id": {"S": f"{tag}-{n:03d}"},
                "subject": {"S": f"Bench {n}"},
                "start": {"S": f"2099-03-{1 + n // 24:02d}T{n % 24:02d}:00:00Z"},
                "end": {"S": f"2099-03-{1 + n // 24:02d}T{n % 24:02d}:30:00Z"},
                "zoom": {"BOOL": True},
            }
        )
    return items


def _write(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        left: dict[str, Any] = {table: chunk}
        while left:
            left = ddb.batch_write_item(RequestItems=left).get("UnprocessedItems") or {}


def _still_waiting(ddb: Any, table: str, waiting: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The keys of `waiting` whose items are not `scheduled` yet. One BatchGetItem of only those keys (and only
    their status) a poll: the poll runs ten times a second beside the batch it times, so it must cost moto little."""
    left: list[dict[str, Any]] = []
    for start in range(0, len(waiting), 100):
        request: dict[str, Any] = {
            table: {
                "Keys": waiting[start : start + 100],
                "ConsistentRead": True,
                "ProjectionExpression": "user_id, event_id, zoom_status",
            }
        }
        while request:
            answer = ddb.batch_get_item(RequestItems=request)
            left += [
                {"user_id": item["user_id"], "event_id": item["event_id"]}
                for item in answer["Responses"].get(table, [])
                if item.get("zoom_status", {}).get("S") != "scheduled"
            ]
            request = answer.get("UnprocessedKeys") or {}
    return left


def _reports(log: str) -> list[dict[str, float]]:
    """The stream function's REPORT lines: Duration and, on a cold start, Init Duration (ms)."""
    found = []
    for line in log.splitlines():
        if line.startswith("REPORT "):
            duration = re.search(r"\tDuration: ([\d.]+) ms", line)
            init = re.search(r"Init Duration: ([\d.]+) ms", line)
            found.append(
                {
                    "duration_ms": float(duration.group(1)) if duration else 0.0,
                    "init_ms": float(init.group(1)) if init else 0.0,
                }
            )
    return found


def run_batch(stack: _Stack, users_count: int, count: int = BATCH_SIZE) -> dict[str, Any]:
    """Connects fresh users, writes `count` items at once, waits until all are scheduled; seconds and counts."""
    users = [str(uuid.uuid4()) for _ in range(users_count)]
    for user_id in users:
        stack.connect(user_id)
    ddb = stack.process.aws("dynamodb")
    table = stack.process.info["calendar_table"]
    tag = f"b{uuid.uuid4().hex[:8]}"
    items = _items(users, tag, count)
    reports_before = len(_reports(stack.stream_log()))
    stack.set_latency(ZOOM_LATENCY_MS)
    waiting = [{"user_id": item["user_id"], "event_id": item["event_id"]} for item in items]
    began = time.monotonic()
    _write(ddb, table, items)
    while waiting and time.monotonic() - began < DONE_TIMEOUT_S:
        time.sleep(0.1)
        waiting = _still_waiting(ddb, table, waiting)
    seconds = time.monotonic() - began
    done = count - len(waiting)
    stack.set_latency(0)
    time.sleep(0.3)  # the function's last REPORT line
    reports = _reports(stack.stream_log())[reports_before:]
    return {
        "seconds": round(seconds, 2),
        "scheduled": done,
        "invocations": len(reports),
        "function_ms": round(sum(r["duration_ms"] for r in reports)),
        "init_ms": round(sum(r["init_ms"] for r in reports)),
    }


@contextmanager
def _cpu_share(memory_mb: int | None) -> Iterator[str]:
    """A launcher prefix that puts the process into a cgroup with a `memory_mb` Lambda's CPU quota ("" if None)."""
    if memory_mb is None:
        yield ""
        return
    group = CGROUP_CPU / f"link-zoom-bench-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        quota = round(CFS_PERIOD_US * memory_mb / LAMBDA_MB_PER_VCPU)
        (group / "cpu.cfs_quota_us").write_text(str(quota))
        yield f"sh -c 'echo $$ > {group}/cgroup.procs && exec \"$@\"' sh"
    finally:
        group.rmdir()  # empty again: the stack stopped the function's process


@contextmanager
def _stack(workers: int, memory_mb: int | None) -> Iterator[_Stack]:
    import requests

    from devstack.stack_process import child_environment

    with _cpu_share(memory_mb) as launcher, tempfile.TemporaryDirectory(prefix="bench-stream-") as state:
        running = start_stack_process(
            Path(state),
            env=child_environment(STREAM_WORKERS=str(workers), POWERTOOLS_LOG_LEVEL="WARNING"),
            extra_args=("--keep-directory", "--own-process", STREAM_FUNCTION, "--own-process-launcher", launcher),
        )
        try:
            stack = _Stack(running, requests.Session())
            stack.enable_zoom()
            yield stack
        finally:
            running.stop()


def _sequential(memory_mb: int | None) -> dict[str, dict[str, Any]]:
    with _stack(1, memory_mb) as stack:
        run_batch(stack, 1, count=5)  # warm: the baseline is not charged for a cold start
        return {shape: run_batch(stack, users) for shape, users in SHAPES.items()}


def _recycle_function(stack: _Stack) -> None:
    """Ends the stream function's process (a child of the stack this bench started, found by its command line):
    its next invocation starts a new one, cold, while moto and the emulator stay warm, as AWS's never cool."""
    stack_pid = stack.process.pid
    children = Path(f"/proc/{stack_pid}/task/{stack_pid}/children").read_text().split()
    for pid in map(int, children):
        if b"devstack.container" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGTERM)
            while Path(f"/proc/{pid}").exists() and b"devstack" in Path(f"/proc/{pid}/cmdline").read_bytes():
                time.sleep(0.05)


def _one_stack(users: int, memory_mb: int | None) -> dict[str, dict[str, Any]]:
    """Cold (a fresh stack: everything starts with the batch), warm, then cold again with only the function's
    process new."""
    with _stack(16, memory_mb) as stack:
        cold = run_batch(stack, users)
        warm = run_batch(stack, users)
        _recycle_function(stack)
        cold_function = run_batch(stack, users)
    return {"cold": cold, "warm": warm, "cold_function": cold_function}


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    middle = sorted(rows, key=lambda row: float(row["seconds"]))[len(rows) // 2]
    return {**middle, "rounds_seconds": [row["seconds"] for row in rows]}


def _shape(users: int, memory_mb: int | None, rounds: int, sequential: dict[str, Any]) -> dict[str, Any]:
    runs = [_one_stack(users, memory_mb) for _ in range(rounds)]
    row: dict[str, Any] = {"sequential": sequential}
    for kind in ("cold", "cold_function", "warm"):
        row[kind] = _median([run[kind] for run in runs])
        row[f"{kind}_speedup"] = round(float(sequential["seconds"]) / max(float(row[kind]["seconds"]), 1e-6), 1)
    return row


def measure() -> dict[str, Any]:
    figures: dict[str, Any] = {"batch_size": BATCH_SIZE, "zoom_latency_ms": ZOOM_LATENCY_MS, "goal": SPEEDUP_GOAL}
    figures["template_memory_mb"] = template_memory_mb()
    for key, memory_mb, rounds in _settings(figures["template_memory_mb"]):
        mode = setting_label(key, figures)
        print(f"bench stream: sequential, {mode} ...", file=sys.stderr)
        sequential = _sequential(memory_mb)
        rows: dict[str, Any] = {}
        for shape, users in SHAPES.items():
            print(f"bench stream: {shape}, {rounds} stack(s), {mode} ...", file=sys.stderr)
            rows[shape] = _shape(users, memory_mb, rounds, sequential[shape])
        figures[key] = rows
    figures["markdown"] = render(figures)
    return figures


def render(figures: dict[str, Any]) -> str:
    lines = [
        f"Through the stack `make run` starts: {figures['batch_size']} calendar items (`zoom: true`) written at "
        f"once, Zoom holding every call {figures['zoom_latency_ms']} ms, timed until every item is `scheduled` "
        "(the stack's poller reads the stream and invokes the stream function, which runs in a process of its "
        "own: `--own-process CalendarStreamFunction`). Cold: the first batch of a freshly started stack, so the "
        "function's process starts with it (the REPORT line's Init Duration is its handler import), on a moto and an "
        "emulator as fresh as it. Cold function: the same after only the function's process was ended, in a stack "
        "whose moto and emulator are warm (a new Lambda container in front of an AWS that never cools down). "
        "Warm: the next batch in one process. Sequential: STREAM_WORKERS=1, warmed up first; every speed-up is to the "
        f"sequential run of the same CPU setting. Cold and warm: median of {COLD_ROUNDS} fresh stacks (one with "
        "each CPU share). 256 MB share: the function's process under a cgroup CPU quota of "
        f"{LAMBDA_MEMORY_MB}/{LAMBDA_MB_PER_VCPU} of a core (Lambda's own mechanism and ratio), the share the "
        "function had before; template share: the quota of the MemorySize template.yaml now gives the stream "
        f"function ({figures.get('template_memory_mb', '?')} MB). Moto, the "
        "emulator and the poller are not limited, as DynamoDB and Zoom do not share a Lambda's CPU. The cgroup "
        "also shields that process from the machine's other load (the scheduler weighs a group as a whole), which "
        "is why its sequential run can be faster than the unlimited one: compare ratios within a setting.",
        "",
        "| CPU | events | sequential (s) | cold stack (s) | speed-up | cold function (s) | speed-up | warm (s) "
        "| speed-up | invocations (cold/warm) | init (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in SETTINGS:
        label = setting_label(key, figures)
        for shape, row in figures.get(key, {}).items():
            lines.append(
                f"| {label} | {shape} | {row['sequential']['seconds']} | {row['cold']['seconds']} | "
                f"{row['cold_speedup']}x | {row['cold_function']['seconds']} | {row['cold_function_speedup']}x | "
                f"{row['warm']['seconds']} | {row['warm_speedup']}x | "
                f"{row['cold']['invocations']}/{row['warm']['invocations']} | {row['cold']['init_ms']} |"
            )
    lines += ["", f"Goal: ≥ {figures['goal']}x over sequential, cold as well as warm."]
    return "\n".join(lines)


def _register() -> None:
    from devstack import bench

    bench.SECTIONS["Stream batch through the stack: cold, warm, Lambda CPU shares"] = measure


_register()


if __name__ == "__main__":
    print(json.dumps({k: v for k, v in measure().items() if k != "markdown"}, indent=2))
