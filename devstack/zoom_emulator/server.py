"""Running the emulator: a threaded WSGI server, in a background thread for tests or in the foreground."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .store import EmulatorConfig, Fault, Store
from .webhooks import Delivery, send_event


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No line per request (tests and `make run` would drown in them); errors are still logged."""


def _make_server(store: Store, host: str, port: int, verbose: bool) -> BaseWSGIServer:
    handler = WSGIRequestHandler if verbose else _QuietRequestHandler
    # threaded=True gives a ThreadedWSGIServer, which listens with werkzeug's backlog of 128
    # (request_queue_size): enough for the bursts of concurrent requests that load tests send.
    server = make_server(host, port, create_app(store), threaded=True, request_handler=handler)
    url_host = f"[{host}]" if ":" in host else host
    store.base_url = f"http://{url_host}:{server.server_port}"
    return server


class EmulatorHandle:
    """A running emulator: its URLs, its state (for assertions) and shortcuts to the test controls."""

    def __init__(self, store: Store, server: BaseWSGIServer, thread: threading.Thread) -> None:
        self.state = store
        self._server = server
        self._thread = thread

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def oauth_base_url(self) -> str:
        return self.state.base_url

    @property
    def api_base_url(self) -> str:
        return self.state.base_url + "/v2"

    def add_fault(self, method: str = "*", path: str = "/", status: int | None = None, **options: Any) -> Fault:
        """Queues a fault; options: retry_after, body, delay_ms, times, headers (see Fault)."""
        return self.state.add_fault(method, path, status, **options)

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def set_latency(self, ms: int) -> None:
        self.state.set_latency(ms)

    @property
    def calls(self) -> list[dict[str, Any]]:
        return self.state.calls

    def clear_calls(self) -> None:
        self.state.clear_calls()

    def send_webhook(
        self,
        url: str,
        event: str,
        payload: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> Delivery:
        """Signs (with the configured webhook secret unless `secret` is given) and POSTs an event."""
        return send_event(url, secret or self.config.webhook_secret, event, payload, timestamp=timestamp)

    def reset(self) -> None:
        self.state.reset()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_emulator(
    config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
) -> EmulatorHandle:
    """Starts the emulator in a background thread; port 0 picks a free port (see `.base_url`)."""
    store = Store(config or EmulatorConfig())
    server = _make_server(store, host, port, verbose)
    # A short poll interval makes stop() quick, which matters for tests that start many emulators.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="zoom-emulator", daemon=True
    )
    thread.start()
    return EmulatorHandle(store, server, thread)


def serve(config: EmulatorConfig, host: str, port: int, *, verbose: bool = False) -> None:
    """Runs the emulator in the foreground until interrupted."""
    store = Store(config)
    server = _make_server(store, host, port, verbose)
    print(f"Zoom emulator listening on {store.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
