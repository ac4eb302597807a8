"""The template's Lambda functions, run in this process the way Lambda runs them.

Every `AWS::Serverless::Function` of the template is found with its CodeUri, Handler, Timeout, MemorySize,
layers and Events. A handler module is loaded from its CodeUri on the function's first invocation (a cold
start) under a module name of its own, since every function's file is `app.py`. Invocations run on their
own threads, so one function may serve several at once (as several Lambda sandboxes would), and the caller
gets what Lambda's Invoke API gives: the JSON payload, or Lambda's error object.

Each function writes Lambda's START/END/REPORT lines and its unhandled errors to `<logs>/<LogicalId>.log`;
with `RoutedOutput` installed as sys.stdout, what a handler prints or logs lands there too.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from devstack.container import Container, ContainerGone
from devstack.iam import current_function
from devstack.template import Resolver, resources_of_type

log = logging.getLogger("devstack.functions")

FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"
# SAM's own defaults when neither the function nor Globals say.
DEFAULT_TIMEOUT_S = 3
DEFAULT_MEMORY_MB = 128


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    function_name: str
    arn: str
    code_dir: Path
    handler: str
    timeout_s: int
    memory_mb: int
    layer_dirs: tuple[Path, ...]
    events: Mapping[str, dict[str, Any]]  # the template's Events, unresolved

    def events_of_type(self, event_type: str) -> dict[str, dict[str, Any]]:
        """{event name: Properties} of this function's events of one type (Api, DynamoDB, SQS, Schedule)."""
        return {
            name: dict(event.get("Properties") or {})
            for name, event in self.events.items()
            if event.get("Type") == event_type
        }


def discover_functions(template: dict[str, Any], template_dir: Path, resolver: Resolver) -> dict[str, FunctionSpec]:
    """Every function of the template, with Globals applied as SAM applies them."""
    glob = ((template.get("Globals") or {}).get("Function")) or {}
    found: dict[str, FunctionSpec] = {}
    for logical, spec in resources_of_type(template, FUNCTION_TYPE).items():
        props = spec.get("Properties") or {}
        code_uri = props.get("CodeUri", glob.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise ValueError(f"{logical}: only a local CodeUri folder can run locally")
        name = str(resolver.ref(logical))
        arn = resolver.attributes.get(
            (logical, "Arn"), f"arn:aws:lambda:{resolver.region}:{resolver.account_id}:function:{name}"
        )
        # SAM appends a function's own Layers to the global ones.
        layers = [*(glob.get("Layers") or []), *(props.get("Layers") or [])]
        found[logical] = FunctionSpec(
            logical_id=logical,
            function_name=name,
            arn=arn,
            code_dir=(template_dir / code_uri).resolve(),
            handler=str(props.get("Handler", glob.get("Handler", "app.handler"))),
            timeout_s=int(resolver.resolve(props.get("Timeout", glob.get("Timeout", DEFAULT_TIMEOUT_S)))),
            memory_mb=int(resolver.resolve(props.get("MemorySize", glob.get("MemorySize", DEFAULT_MEMORY_MB)))),
            layer_dirs=tuple(_layer_dirs(template, template_dir, layers)),
            events=dict(props.get("Events") or {}),
        )
    return found


def _layer_dirs(template: dict[str, Any], template_dir: Path, layers: list[Any]) -> list[Path]:
    """The local folders of the template's own layers (ARNs of foreign layers cannot run here)."""
    dirs = []
    own_layers = resources_of_type(template, LAYER_TYPE)
    for layer in layers:
        logical = layer.get("Ref") if isinstance(layer, dict) else None
        if not isinstance(logical, str) or logical not in own_layers:
            continue
        content = (own_layers[logical].get("Properties") or {}).get("ContentUri")
        if isinstance(content, str):
            dirs.append((template_dir / content).resolve())
    return dirs


class LambdaContext:
    """The context object a Python handler receives (the attributes powertools and handlers read)."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, spec: FunctionSpec, request_id: str) -> None:
        self.function_name = spec.function_name
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + request_id.replace("-", "")
        self._deadline = time.monotonic() + spec.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """What Lambda's Invoke API answers, plus what the local caller needs to know about timing."""

    function: str
    request_id: str
    payload: Any = None
    error: dict[str, Any] | None = None  # Lambda's error object: errorMessage, errorType, stackTrace
    duration_ms: float = 0.0
    # "function": the function's Timeout passed (a Lambda error); "caller": the caller stopped waiting first.
    timeout: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.timeout is None


class FunctionLogs:
    """One append-only log file per function, like one CloudWatch log group each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()

    def path(self, logical: str) -> Path:
        return self.directory / f"{logical}.log"

    def write(self, logical: str, text: str) -> None:
        with self._lock:
            fh = self._files.get(logical)
            if fh is None:
                fh = self._files[logical] = self.path(logical).open("a", encoding="utf-8", buffering=1)
            fh.write(text)
            fh.flush()

    def close(self) -> None:
        with self._lock:
            for fh in self._files.values():
                fh.close()
            self._files.clear()


class RoutedOutput(io.TextIOBase):
    """A sys.stdout that sends what a handler's thread writes to that function's log, the rest to `fallback`.

    Powertools' Logger binds sys.stdout when link_zoom.observability is first imported, which happens at a
    handler's cold start, so install this before the first invocation.
    """

    def __init__(self, logs: FunctionLogs, fallback: TextIO) -> None:
        self._logs = logs
        self._fallback = fallback

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        logical = current_function.get()
        if logical:
            self._logs.write(logical, text)
        else:
            self._fallback.write(text)
            self._fallback.flush()
        return len(text)


class FunctionRegistry:
    """Loads and invokes the template's functions in this process."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        logs: FunctionLogs | None = None,
        own_process: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.specs = dict(specs)
        self.logs = logs
        # Functions that run in a process of their own (devstack.container), each with its launcher prefix.
        self._containers = {
            logical: Container(
                str(self.specs[logical].code_dir),
                self.specs[logical].handler,
                [str(layer) for layer in self.specs[logical].layer_dirs],
                log=functools.partial(self._log, logical),
                launcher=launcher,
            )
            for logical, launcher in (own_process or {}).items()
        }
        # Per-function AWS keys (devstack.iam), given to a function's own process as its credentials.
        self.function_keys: Mapping[str, Any] = {}
        self.invocations: Counter[str] = Counter()  # per function, since start: a cheap probe for tests
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._modules: dict[str, ModuleType] = {}
        self._load_locks = {logical: threading.Lock() for logical in self.specs}
        self._counter_lock = threading.Lock()
        self._by_name = {s.function_name: s.logical_id for s in self.specs.values()}

    def resolve_name(self, name: str) -> str | None:
        """The logical id for a logical id, function name or ARN (with or without a qualifier)."""
        if name.startswith("arn:"):
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else name
        if name in self.specs:
            return name
        return self._by_name.get(name.split(":")[0])

    def module(self, logical: str) -> ModuleType | None:
        """The handler module if the function has cold-started (tests read fixture functions' state)."""
        return self._modules.get(logical)

    def invoke(self, logical: str, event: Any, *, wait_s: float | None = None) -> Invocation:
        """Invoke synchronously; give up waiting after the function's Timeout or `wait_s`, whichever is first."""
        spec = self.specs[logical]
        request_id = str(uuid.uuid4())
        result = Invocation(function=logical, request_id=request_id)
        done = threading.Event()
        with self._counter_lock:
            self.invocations[logical] += 1
        # Lambda hands the handler a fresh copy of JSON, never the caller's objects.
        event_copy = json.loads(json.dumps(event))
        worker = threading.Thread(
            target=self._run, args=(spec, event_copy, result, done), name=f"lambda-{logical}", daemon=True
        )
        began = time.monotonic()
        worker.start()
        limit = spec.timeout_s if wait_s is None else min(spec.timeout_s, wait_s)
        if done.wait(limit):
            return result
        # The worker may still finish later; what it writes then goes to `result`, which nobody reads.
        waited_ms = (time.monotonic() - began) * 1000
        if wait_s is not None and wait_s < spec.timeout_s:
            return Invocation(logical, request_id, duration_ms=waited_ms, timeout="caller")
        self._log(logical, f"{_stamp()} {request_id} Task timed out after {spec.timeout_s:.2f} seconds\n")
        # Lambda throws a timed-out sandbox away: the next invocation starts cold.
        self._handlers.pop(logical, None)
        error = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {spec.timeout_s:.2f} seconds",
        }
        return Invocation(logical, request_id, error=error, duration_ms=waited_ms, timeout="function")

    def _run(self, spec: FunctionSpec, event: Any, result: Invocation, done: threading.Event) -> None:
        # Its log (RoutedOutput) and its AWS identity (devstack.iam) follow this, also into tasks it hands on.
        current_function.set(spec.logical_id)
        rid = result.request_id
        began = time.monotonic()
        init_ms: float | None = None
        initialising = False
        self._log(spec.logical_id, f"START RequestId: {rid} Version: $LATEST\n")
        try:
            if spec.logical_id in self._containers:
                init_ms = self._run_in_own_process(spec, event, result)
                return
            handler = self._handlers.get(spec.logical_id)
            if handler is None:
                initialising = True
                handler = self._cold_start(spec)
                initialising = False
                init_ms = (time.monotonic() - began) * 1000
            payload = handler(event, LambdaContext(spec, rid))
            # Lambda returns JSON: what does not serialise is a Runtime.MarshalError, as there.
            result.payload = json.loads(json.dumps(payload))
        except Exception as exc:
            result.error = _error_object(exc, init=initialising)
            self._log(spec.logical_id, f"[ERROR] {result.error['errorType']}: {result.error['errorMessage']}\n")
            self._log(spec.logical_id, "".join(traceback.format_exception(exc)))
        finally:
            result.duration_ms = (time.monotonic() - began) * 1000
            init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
            self._log(
                spec.logical_id,
                f"END RequestId: {rid}\nREPORT RequestId: {rid}\tDuration: {result.duration_ms:.2f} ms\t"
                f"Billed Duration: {int(result.duration_ms) + 1} ms\tMemory Size: {spec.memory_mb} MB{init}\n",
            )
            current_function.set(None)
            done.set()

    def _run_in_own_process(self, spec: FunctionSpec, event: Any, result: Invocation) -> float | None:
        """Invokes the function's own process; returns its init time when this invocation started it."""
        request = {
            "event": event,
            "request_id": result.request_id,
            "function_name": spec.function_name,
            "arn": spec.arn,
            "memory_mb": spec.memory_mb,
            "remaining_ms": spec.timeout_s * 1000,
        }
        env = dict(os.environ)
        keys = self.function_keys.get(spec.logical_id)
        if keys is not None:
            env.update(AWS_ACCESS_KEY_ID=keys.access_key_id, AWS_SECRET_ACCESS_KEY=keys.secret_access_key)
        env["AWS_LAMBDA_FUNCTION_NAME"] = spec.function_name
        try:
            answer = self._containers[spec.logical_id].invoke(request, env, spec.timeout_s + 1)
        except ContainerGone as exc:
            answer = {"error": {"errorType": "Runtime.ExitError", "errorMessage": str(exc), "stackTrace": []}}
        if "error" in answer:
            result.error = answer["error"]
            self._log(spec.logical_id, f"[ERROR] {result.error['errorType']}: {result.error['errorMessage']}\n")
        else:
            result.payload = answer.get("payload")
        init_ms = answer.get("init_ms")
        return float(init_ms) if init_ms is not None else None

    def stop_own_processes(self) -> None:
        for container in self._containers.values():
            container.stop()

    def _cold_start(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        with self._load_locks[spec.logical_id]:
            handler = self._handlers.get(spec.logical_id)
            if handler is not None:
                return handler
            for layer in spec.layer_dirs:
                if str(layer) not in sys.path:
                    sys.path.append(str(layer))
            module_path, _, attribute = spec.handler.rpartition(".")
            source = spec.code_dir / (module_path.replace(".", "/") + ".py")
            if not source.is_file():
                raise ModuleNotFoundError(f"Unable to import module '{module_path}': no {source}")
            # Every function's file is app.py: give each its own module name.
            name = f"_lambda_{spec.logical_id}_{module_path.replace('.', '_')}"
            module_spec = importlib.util.spec_from_file_location(name, source)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            # Lambda puts the code folder first on the path so a handler can import its sibling modules.
            sys.path.insert(0, str(spec.code_dir))
            try:
                module_spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(spec.code_dir))
            handler = getattr(module, attribute)
            self._modules[spec.logical_id] = module
            self._handlers[spec.logical_id] = handler
            return handler

    def _log(self, logical: str, text: str) -> None:
        if self.logs is not None:
            self.logs.write(logical, text)


def _error_object(exc: BaseException, *, init: bool) -> dict[str, Any]:
    if init and isinstance(exc, ImportError):
        error_type = "Runtime.ImportModuleError"
    elif isinstance(exc, TypeError | ValueError) and "JSON serializable" in str(exc):
        error_type = "Runtime.MarshalError"
    else:
        error_type = type(exc).__name__
    return {
        "errorMessage": str(exc),
        "errorType": error_type,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
