"""API figures for `make bench`: local latency per route under load from a second process, and the AWS and
Zoom calls each operation makes.

    python -m devstack.bench_api          # prints the JSON figures

The stack runs as `make run` runs it, in a child process (devstack.stack_process), on free ports. Its Zoom
is an emulator in this process (no daily meeting limit: the load creates hundreds of meetings), so every Zoom
request is counted; its moto server records every AWS request (moto's recorder) while the call counts are
taken, so every AWS request of the functions is counted (the pollers' own reads of the stream and queues are
left out). The load comes from a third process, `python -m devstack.bench_api load`, a thread pool with one
keep-alive connection per thread, all on 127.0.0.1.

A compose-link "cold" is the first call of a fresh process (a new Lambda container: no clients, no cached
switch, no cached data key), made by `python -m devstack.bench_api invoke` running the meetings handler
against the running stack's AWS and Zoom; "warm" is that process's next call.

Importing this module registers the section with devstack.bench.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from devstack.stack_process import StackProcess, child_environment, stack_process
from devstack.template import ROOT

REQUESTS_PER_ROUTE = 200
CONCURRENCY = 8
WARMUP_PER_ROUTE = 10
HTTP_TIMEOUT_S = 30.0
EVENT = {"topic": "Bench", "start": "2099-01-01T10:00:00+01:00", "end": "2099-01-01T11:00:00+01:00"}
EVENT_RESOURCE = "/v1/events/{event_id}/zoom"
# What the stack's own pollers ask moto for, several times a second: not the functions' calls.
POLLER_OPERATIONS = {
    "dynamodbstreams:GetRecords",
    "dynamodbstreams:GetShardIterator",
    "dynamodbstreams:DescribeStream",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:DeleteMessageBatch",
    "sqs:ChangeMessageVisibility",
    "sqs:ChangeMessageVisibilityBatch",
}
_SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "TrentService": "kms",
    "AmazonSSM": "ssm",
    "AmazonSQS": "sqs",
    "Lambda": "lambda",
}


# ---------------------------------------------------------------- counting AWS and Zoom requests


class AwsRecording:
    """The stack's moto server records every request it serves (moto's recorder) to a file we can read."""

    def __init__(self, endpoint_url: str, path: Path) -> None:
        self._endpoint = endpoint_url
        self._path = path

    def _control(self, action: str) -> None:
        requests.post(f"{self._endpoint}/moto-api/recorder/{action}", timeout=10).raise_for_status()

    def start(self) -> None:
        self._control("reset-recording")
        self._control("start-recording")

    def stop(self) -> None:
        self._control("stop-recording")

    def mark(self) -> int:
        try:
            with self._path.open("rb") as recording:
                return sum(1 for _ in recording)
        except FileNotFoundError:
            return 0

    def operations_since(self, mark: int) -> Counter[str]:
        """`service:Operation` of every request recorded after `mark`, the pollers' own left out."""
        found: Counter[str] = Counter()
        with self._path.open("rb") as recording:
            for number, line in enumerate(recording):
                if number < mark:
                    continue
                headers = {k.lower(): v for k, v in json.loads(line).get("headers", {}).items()}
                prefix, _, operation = str(headers.get("x-amz-target", "")).partition(".")
                name = f"{_SERVICES.get(prefix, prefix or 'other')}:{operation or '?'}"
                if name not in POLLER_OPERATIONS:
                    found[name] += 1
        return found


@dataclass
class CallCount:
    aws: Counter[str]
    zoom: Counter[str]

    def row(self) -> dict[str, Any]:
        return {
            "aws": sum(self.aws.values()),
            "aws_by_operation": dict(sorted(self.aws.items())),
            "zoom": sum(self.zoom.values()),
            "zoom_by_request": dict(sorted(self.zoom.items())),
        }


def _zoom_calls(emulator: Any) -> Counter[str]:
    found: Counter[str] = Counter()
    for call in emulator.calls:
        path = call["path"]
        if path.startswith("/v2/meetings/"):
            path = "/v2/meetings/{id}"
        found[f"{call['method']} {path}"] += 1
    return found


def _counted(recording: AwsRecording, emulator: Any, action: Any, settle_s: float = 0.3) -> CallCount:
    """The AWS and Zoom requests `action` causes (it returns once its HTTP answer is back)."""
    emulator.clear_calls()
    mark = recording.mark()
    action()
    time.sleep(settle_s)  # the recorder writes each request as moto serves it; nothing of ours is left in flight
    return CallCount(recording.operations_since(mark), _zoom_calls(emulator))


# ---------------------------------------------------------------- the stack, a user, and HTTP


@dataclass
class BenchUser:
    api_url: str
    token: str
    user_id: str
    username: str
    upn: str

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        answer = requests.request(
            method,
            f"{self.api_url}{path}",
            json=body,
            timeout=HTTP_TIMEOUT_S,
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
        )
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path} answered {answer.status_code}: {answer.text[:200]}")
        return answer


def _sign_in(stack: StackProcess, role: str) -> BenchUser:
    demo = stack.user(role)
    answer = requests.post(
        f"{stack.api_url}/v1/session",
        json={"username": demo["username"], "password": demo["password"]},
        timeout=HTTP_TIMEOUT_S,
    )
    answer.raise_for_status()
    body = answer.json()
    return BenchUser(stack.api_url, body["token"], body["user"]["id"], demo["username"], demo["upn"])


def _connect_zoom(stack: StackProcess, user: BenchUser) -> None:
    """The consent flow, and the sweep it queues run to its end (so that it is nobody's call count)."""
    from devstack.zoom_emulator import complete_consent

    authorize_url = user.call("GET", "/v1/zoom/authorize").json()["authorize_url"]
    location = complete_consent(authorize_url, user.upn, "any-password")
    requests.get(location, timeout=HTTP_TIMEOUT_S).raise_for_status()
    sqs, queue = stack.aws("sqs"), stack.info["queues"]["ConnectSweepQueue"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        if not any(int(value) for value in attributes.values()):
            break
        time.sleep(0.2)
    time.sleep(0.5)


@contextlib.contextmanager
def _bench_stack() -> Iterator[tuple[StackProcess, Any, AwsRecording]]:
    from devstack.zoom_emulator import EmulatorConfig, start_emulator

    with tempfile.TemporaryDirectory(prefix="bench-api-") as state, contextlib.ExitStack() as closer:
        zoom = start_emulator(EmulatorConfig(daily_meeting_limit=1_000_000), port=0)
        closer.callback(zoom.stop)
        recording_path = Path(state) / "moto-recording.jsonl"
        env = child_environment(
            ZOOM_OAUTH_BASE_URL=zoom.oauth_base_url,
            ZOOM_API_BASE_URL=zoom.api_base_url,
            ZOOM_CLIENT_ID=zoom.config.client_id,
            ZOOM_CLIENT_SECRET=zoom.config.client_secret,
            ZOOM_WEBHOOK_SECRET=zoom.config.webhook_secret,
            MOTO_RECORDER_FILEPATH=str(recording_path),
        )
        stack = closer.enter_context(stack_process(Path(state) / "stack", env=env))
        yield stack, zoom, AwsRecording(stack.aws_endpoint_url, recording_path)


# ---------------------------------------------------------------- a fresh process: the cold compose-link


def _function_environment(stack: StackProcess, zoom: Any, logical: str) -> dict[str, str]:
    """What Lambda would give the function in the running stack (its resources, found idempotently)."""
    from devstack.aws import function_environment, provision

    resources = provision(
        stack.aws_endpoint_url,
        {
            "ZoomOAuthBaseUrl": zoom.oauth_base_url,
            "ZoomApiBaseUrl": zoom.api_base_url,
            "ZoomClientId": zoom.config.client_id,
        },
    )
    env = function_environment(resources, logical)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "shared"), str(ROOT)])
    env["PATH"] = os.environ.get("PATH", "")
    return env


def _fresh_process_calls(
    stack: StackProcess, zoom: Any, recording: AwsRecording, user: BenchUser, calls: int = 2
) -> list[CallCount]:
    """compose-link `calls` times in a fresh process running the meetings handler: the first one is cold."""
    spec = {"user_id": user.user_id, "username": user.username, "calls": calls}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.bench_api", "invoke"],
        cwd=ROOT,
        text=True,
        env=_function_environment(stack, zoom, "MeetingsFunction"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    counts = []
    try:
        process.stdin.write(json.dumps(spec) + "\n")
        process.stdin.flush()
        for _ in range(calls):
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("the invoking process did not get ready")
            zoom.clear_calls()
            mark = recording.mark()
            process.stdin.write("go\n")
            process.stdin.flush()
            status = process.stdout.readline().strip()
            if status != "201":
                raise RuntimeError(f"compose-link in a fresh process answered {status}")
            time.sleep(0.3)
            counts.append(CallCount(recording.operations_since(mark), _zoom_calls(zoom)))
    finally:
        process.stdin.close()
        process.wait(60)
    return counts


def _invoke_main() -> int:
    """`python -m devstack.bench_api invoke`: compose-link through the meetings handler, on request."""
    import importlib.util
    import io

    from devstack.events import api_event, authorizer_context

    spec = json.loads(sys.stdin.readline())
    handler_file = ROOT / "functions" / "meetings" / "app.py"
    module_spec = importlib.util.spec_from_file_location("bench_meetings_app", handler_file)
    assert module_spec is not None and module_spec.loader is not None

    class Context:
        function_name = "bench-meetings"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-meetings"
        aws_request_id = str(uuid.uuid4())

        def get_remaining_time_in_millis(self) -> int:
            return 25_000

    app = None
    for _ in range(int(spec["calls"])):
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return 1
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's EMF metric lines
            if app is None:  # the import is part of the cold start
                app = importlib.util.module_from_spec(module_spec)
                module_spec.loader.exec_module(app)
            event = api_event(
                "POST",
                "/v1/compose-link",
                body="{}",
                headers={"X-Forwarded-Proto": "http"},
                authorizer=authorizer_context(spec["user_id"], spec["username"], False),
            )
            result = app.handler(event, Context())
        print(result["statusCode"], flush=True)
    return 0


# ---------------------------------------------------------------- the load, from a second process


def _percentile(sorted_ms: list[float], fraction: float) -> float:
    """Nearest rank: the smallest sample with at least `fraction` of the samples at or below it."""
    if not sorted_ms:
        return float("nan")
    index = min(len(sorted_ms) - 1, max(0, math.ceil(fraction * len(sorted_ms)) - 1))
    return sorted_ms[index]


def _load_main() -> int:
    """`python -m devstack.bench_api load`: the spec on stdin, per-route latencies as JSON on stdout."""
    spec = json.loads(sys.stdin.read())
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        found: requests.Session = local.session
        return found

    def one(route: dict[str, Any]) -> tuple[float, int]:
        started = time.perf_counter()
        answer = session().request(
            route["method"],
            spec["api_url"] + route["path"],
            json=route.get("body"),
            headers=route.get("headers") or {},
            timeout=HTTP_TIMEOUT_S,
        )
        answer.content  # noqa: B018 - the whole answer is part of the latency
        return (time.perf_counter() - started) * 1000, answer.status_code

    results = {}
    with concurrent.futures.ThreadPoolExecutor(spec["concurrency"]) as pool:
        for route in spec["routes"]:
            list(pool.map(one, [route] * spec["warmup"]))
            began = time.perf_counter()
            samples = list(pool.map(one, [route] * spec["requests"]))
            elapsed = time.perf_counter() - began
            latencies = sorted(ms for ms, _ in samples)
            statuses = Counter(str(status) for _, status in samples)
            results[route["name"]] = {
                "requests": len(samples),
                "p50_ms": round(statistics.median(latencies), 2),
                "p95_ms": round(_percentile(latencies, 0.95), 2),
                "max_ms": round(latencies[-1], 2),
                "requests_per_s": round(len(samples) / elapsed, 1),
                "statuses": dict(statuses),
            }
    print(json.dumps(results))
    return 0


def _run_load(api_url: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
    spec = {
        "api_url": api_url,
        "routes": routes,
        "requests": REQUESTS_PER_ROUTE,
        "concurrency": CONCURRENCY,
        "warmup": WARMUP_PER_ROUTE,
    }
    done = subprocess.run(
        [sys.executable, "-m", "devstack.bench_api", "load"],
        cwd=ROOT,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "shared"), str(ROOT)])},
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ---------------------------------------------------------------- the section


def _call_counts(stack: StackProcess, zoom: Any, recording: AwsRecording, user: BenchUser) -> dict[str, Any]:
    event = f"/v1/events/bench-{uuid.uuid4()}/zoom"
    demo = stack.user("user")
    rows: dict[str, CallCount] = {}
    rows["sign-in (POST /v1/session)"] = _counted(
        recording,
        zoom,
        lambda: requests.post(
            f"{stack.api_url}/v1/session",
            json={"username": demo["username"], "password": demo["password"]},
            timeout=HTTP_TIMEOUT_S,
        ).raise_for_status(),
    )
    cold, warm = _fresh_process_calls(stack, zoom, recording, user)
    rows["compose-link, cold (a fresh process's first call)"] = cold
    rows["compose-link, warm (that process's next call)"] = warm
    rows["compose-link over HTTP (gateway + authorizer, warm)"] = _counted(
        recording, zoom, lambda: user.call("POST", "/v1/compose-link", {})
    )
    rows["event create (PUT, new event)"] = _counted(recording, zoom, lambda: user.call("PUT", event, EVENT))
    rows["event no-op (PUT, same again)"] = _counted(recording, zoom, lambda: user.call("PUT", event, EVENT))
    rows["event move (PUT, new end)"] = _counted(
        recording, zoom, lambda: user.call("PUT", event, {**EVENT, "end": "2099-01-01T11:30:00+01:00"})
    )
    rows["event delete (DELETE)"] = _counted(recording, zoom, lambda: user.call("DELETE", event))
    zoom.state.expire_access_tokens(user.upn)
    rows["refresh (compose-link finding the access token expired at Zoom)"] = _counted(
        recording, zoom, lambda: user.call("POST", "/v1/compose-link", {})
    )
    return {name: count.row() for name, count in rows.items()}


def measure_api_latency() -> dict[str, Any]:
    started = time.monotonic()
    with _bench_stack() as (stack, zoom, recording):
        admin = _sign_in(stack, "admin")
        admin.call("PUT", "/v1/admin/features/zoom", {"enabled": True})
        user = _sign_in(stack, "user")
        _connect_zoom(stack, user)

        recording.start()
        try:
            calls = _call_counts(stack, zoom, recording, user)
        finally:
            recording.stop()  # recording writes a line per request: not during the load

        event = f"/v1/events/bench-load-{uuid.uuid4()}/zoom"
        user.call("PUT", event, EVENT)  # the PUTs below are all no-ops
        auth = {"Authorization": f"Bearer {user.token}"}
        routes: list[dict[str, Any]] = [
            {"name": "GET /v1/health", "method": "GET", "path": "/v1/health"},
            {"name": "GET /v1/features", "method": "GET", "path": "/v1/features", "headers": auth},
            {
                "name": "GET /v1/account/preferences",
                "method": "GET",
                "path": "/v1/account/preferences",
                "headers": auth,
            },
            {
                "name": "POST /v1/compose-link",
                "method": "POST",
                "path": "/v1/compose-link",
                "body": {},
                "headers": auth,
            },
            {
                "name": "PUT /v1/events/{id}/zoom (no-op)",
                "method": "PUT",
                "path": event,
                "body": EVENT,
                "headers": auth,
            },
        ]
        zoom.clear_calls()
        latency = _run_load(stack.api_url, routes)
        zoom_during_load = len(zoom.calls)
    health = latency["GET /v1/health"]["p50_ms"]
    for row in latency.values():
        row["p50_ratio_to_health"] = round(row["p50_ms"] / health, 2)
        row["p95_ratio_to_health"] = round(row["p95_ms"] / health, 2)
    seconds = round(time.monotonic() - started, 1)
    return {
        "requests_per_route": REQUESTS_PER_ROUTE,
        "concurrency": CONCURRENCY,
        "latency": latency,
        "calls_per_operation": calls,
        "zoom_calls_during_load": zoom_during_load,
        "seconds": seconds,
        "markdown": _markdown(latency, calls, health),
    }


def _markdown(latency: dict[str, Any], calls: dict[str, Any], health_p50: float) -> str:
    lines = [
        f"{REQUESTS_PER_ROUTE} requests per route from a second process ({CONCURRENCY} threads, keep-alive, "
        f"after {WARMUP_PER_ROUTE} warm-up requests) to the stack `make run` starts, all on 127.0.0.1; compose-link "
        "goes to the Zoom emulator. Ratios are to GET /v1/health's p50 of the same run "
        f"({health_p50} ms): the gateway and a Lambda invocation with nothing behind them.",
        "",
        "| route | p50 (ms) | p95 (ms) | p50 / health p50 | p95 / health p50 | requests/s | answers |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in latency.items():
        answers = ", ".join(f"{n}× {status}" for status, n in sorted(row["statuses"].items()))
        lines.append(
            f"| {name} | {row['p50_ms']} | {row['p95_ms']} | {row['p50_ratio_to_health']} | "
            f"{row['p95_ratio_to_health']} | {row['requests_per_s']} | {answers} |"
        )
    lines += [
        "",
        "AWS requests (every request the moto server served for the functions, the authorizer's included; the "
        "pollers' own reads left out) and Zoom requests per operation:",
        "",
        "| operation | AWS requests | which | Zoom requests | which |",
        "|---|---:|---|---:|---|",
    ]
    for name, row in calls.items():
        aws = ", ".join(f"{op} {n}" for op, n in row["aws_by_operation"].items())
        zoom = ", ".join(f"{op} {n}" for op, n in row["zoom_by_request"].items()) or "–"
        lines.append(f"| {name} | {row['aws']} | {aws} | {row['zoom']} | {zoom} |")
    return "\n".join(lines)


def _register() -> None:
    from devstack import bench

    # Under `python -m devstack.bench` the running module is __main__, a second copy of devstack.bench.
    modules = [bench]
    running = sys.modules.get("__main__")
    if running is not None and getattr(running.__spec__, "name", None) == "devstack.bench":
        modules.append(running)
    for module in modules:
        module.SECTIONS["API latency"] = measure_api_latency


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "measure"
    if command == "load":
        raise SystemExit(_load_main())
    if command == "invoke":
        raise SystemExit(_invoke_main())
    figures = measure_api_latency()
    print(figures["markdown"], file=sys.stderr)
    print(json.dumps({k: v for k, v in figures.items() if k != "markdown"}, indent=2))
else:
    _register()
