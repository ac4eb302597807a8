"""The HTTP servers: the API (API Gateway's front door) and Lambda's Invoke API.

The Invoke API (`POST /2015-03-31/functions/{name}/invocations`, as `sam local start-lambda` serves it) lets
boto3's lambda client (AWS_ENDPOINT_URL_LAMBDA) and `python -m devstack.run invoke` reach the local functions.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from devstack.functions import FunctionRegistry
from devstack.gateway.core import MAX_PAYLOAD_BYTES, Gateway
from devstack.gateway.responses import Response

log = logging.getLogger("devstack.gateway")


class LoopbackHTTPServer(ThreadingHTTPServer):
    # ThreadingHTTPServer's listen backlog is 5: bursts of clients would stall for a second.
    request_queue_size = 128
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections do not hold a thread for ever

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the gateway writes its own access log."""

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _ApiServer(LoopbackHTTPServer):
    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        super().__init__(address, _ApiHandler)
        self.gateway = gateway


class _InvokeServer(LoopbackHTTPServer):
    def __init__(self, address: tuple[str, int], registry: FunctionRegistry) -> None:
        super().__init__(address, _InvokeHandler)
        self.registry = registry


class _ApiHandler(_Handler):
    server: _ApiServer

    def _serve(self) -> None:
        body = self._read_body()
        gateway = self.server.gateway
        if body is None:
            self.close_connection = True
            body = b"x" * (MAX_PAYLOAD_BYTES + 1)  # let the gateway answer REQUEST_TOO_LARGE
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        try:
            response = gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0], host
            )
        except Exception:
            # A bug of the local gateway itself: answer, rather than drop the connection.
            log.exception("the local gateway failed on %s %s", self.command, urlsplit(self.path).path)
            response = Response(500, [("Content-Type", "application/json")], b'{"message": "local gateway error"}')
        self._send(response.status, response.headers, response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _InvokeHandler(_Handler):
    """Lambda's Invoke API, enough for boto3's `lambda.invoke` (RequestResponse, Event, DryRun)."""

    PATH = re.compile(r"/2015-03-31/functions/(?P<name>[^/]+)/invocations")
    server: _InvokeServer

    def do_POST(self) -> None:
        registry = self.server.registry
        found = self.PATH.fullmatch(urlsplit(self.path).path)
        body = self._read_body() or b""
        logical = registry.resolve_name(unquote(found.group("name"))) if found else None
        if logical is None:
            error = {"Type": "User", "Message": f"Function not found: {found.group('name') if found else ''}"}
            self._send(
                404,
                [("x-amzn-ErrorType", "ResourceNotFoundException"), ("Content-Type", "application/json")],
                json.dumps(error).encode(),
            )
            return
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError:
            error = {"Type": "User", "Message": "Could not parse request body into json"}
            self._send(
                400,
                [("x-amzn-ErrorType", "InvalidRequestContentException"), ("Content-Type", "application/json")],
                json.dumps(error).encode(),
            )
            return
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            self._send(204, [], b"")
            return
        if kind == "Event":
            threading.Thread(target=registry.invoke, args=(logical, event), daemon=True).start()
            self._send(202, [], b"")
            return
        invocation = registry.invoke(logical, event)
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", invocation.request_id),
        ]
        if invocation.error is not None:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
            payload = invocation.error
        else:
            payload = invocation.payload
        self._send(200, headers, json.dumps(payload).encode())


@dataclass
class RunningServer:
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _serve(server: ThreadingHTTPServer, name: str) -> RunningServer:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True)
    thread.start()
    return RunningServer(server, thread)


def serve_api(gateway: Gateway, host: str = "127.0.0.1", port: int = 3000) -> RunningServer:
    return _serve(_ApiServer((host, port), gateway), "api-gateway")


def serve_invoke_api(registry: FunctionRegistry, host: str = "127.0.0.1", port: int = 3001) -> RunningServer:
    return _serve(_InvokeServer((host, port), registry), "lambda-invoke-api")
