"""A function in a process of its own, as a Lambda sandbox is: `make run --own-process FUNCTION`.

Locally every function runs in the stack's one process, so one function's clients, imports and CPU are every
function's (and moto's, and the emulator's). A function given its own process starts cold in a fresh Python
(its first invocation imports the handler and builds its clients), has its own GIL, and can be held to a CPU
share (the launcher: `taskset`, or a cgroup with a CPU quota, as Lambda gives a share of a core per memory size).

The parent (`Container`) writes one JSON line per invocation to the child's stdin and reads one JSON line back
from its stdout; the child moves what the handler prints (powertools' JSON logs) to stderr, which the parent
copies into the function's log. One invocation at a time, as one sandbox serves one. A timed-out or broken
child is killed, and the next invocation starts a new one (cold).

    python -m devstack.container CODE_DIR HANDLER [LAYER_DIR ...]     # the child
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class _Context:
    """The Lambda context the handler reads, rebuilt in the child from what the parent sends."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, request: Mapping[str, Any]) -> None:
        self.function_name = request["function_name"]
        self.invoked_function_arn = request["arn"]
        self.memory_limit_in_mb = request["memory_mb"]
        self.aws_request_id = request["request_id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + self.aws_request_id.replace("-", "")
        self._deadline = time.monotonic() + request["remaining_ms"] / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _child(code_dir: str, handler_name: str, layers: Sequence[str]) -> int:
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's prints and logs go to stderr: the function's log
    sys.path[:0] = [code_dir]
    sys.path.extend(layers)
    module_name, _, attribute = handler_name.rpartition(".")
    handler: Callable[[Any, Any], Any] | None = None
    for line in sys.stdin:
        request = json.loads(line)
        began = time.monotonic()
        init_ms = None
        try:
            if handler is None:
                handler = getattr(importlib.import_module(module_name), attribute)
                init_ms = (time.monotonic() - began) * 1000
            payload = handler(request["event"], _Context(request))
            answer: dict[str, Any] = {"payload": json.loads(json.dumps(payload)), "init_ms": init_ms}
        except Exception as exc:
            error_type = "Runtime.ImportModuleError" if handler is None and isinstance(exc, ImportError) else None
            answer = {
                "error": {
                    "errorMessage": str(exc),
                    "errorType": error_type or type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                },
                "init_ms": init_ms,
            }
        answers.write(json.dumps(answer) + "\n")
    return 0


class ContainerGone(Exception):
    """The child exited or did not answer in time; it has been killed."""


class Container:
    """One function's own process, started at its first invocation (cold), reused while it works (warm)."""

    def __init__(
        self,
        code_dir: str,
        handler: str,
        layers: Sequence[str],
        log: Callable[[str], None],
        launcher: Sequence[str] = (),
    ) -> None:
        self._command = [*launcher, sys.executable, "-m", "devstack.container", code_dir, handler, *layers]
        self._log = log
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def invoke(self, request: dict[str, Any], env: Mapping[str, str], timeout_s: float) -> dict[str, Any]:
        """The child's answer: {"payload"} or {"error"}, and "init_ms" when this invocation started it."""
        with self._lock:
            process = self._process if self._process and self._process.poll() is None else self._start(env)
            assert process.stdin is not None and process.stdout is not None
            answer: list[str] = []
            stdout = process.stdout
            reader = threading.Thread(target=lambda: answer.append(stdout.readline()), daemon=True)
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            reader.start()
            reader.join(timeout_s)
            if not answer or not answer[0]:
                self._kill()
                raise ContainerGone("the function's process did not answer")
            return dict(json.loads(answer[0]))

    def _start(self, env: Mapping[str, str]) -> subprocess.Popen[str]:
        from devstack.template import ROOT

        self._process = subprocess.Popen(
            self._command,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr = self._process.stderr
        assert stderr is not None
        threading.Thread(target=self._copy_log, args=(stderr,), daemon=True).start()
        return self._process

    def _copy_log(self, stream: Any) -> None:
        for line in stream:
            self._log(line)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.poll() is None else None

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # our own child only
            self._process.wait()
        self._process = None

    def stop(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                assert self._process.stdin is not None
                self._process.stdin.close()  # the child's loop ends
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(5)
            self._kill()


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1], sys.argv[2], sys.argv[3:]))
