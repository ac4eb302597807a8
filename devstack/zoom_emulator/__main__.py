"""`python -m devstack.zoom_emulator`: the emulator in the foreground, for `make run` and by hand."""

from __future__ import annotations

import argparse

from .server import serve
from .store import EmulatorConfig


def main(argv: list[str] | None = None) -> None:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m devstack.zoom_emulator", description="Local Zoom emulator.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on; 0 picks a free one")
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--webhook-secret", default=defaults.webhook_secret)
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="an allowed redirect URI (repeatable); without any, every http://127.0.0.1 or localhost URL is allowed",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        webhook_secret=args.webhook_secret,
        redirect_uris=args.redirect_uri,
    )
    serve(config, args.host, args.port, verbose=args.verbose)


if __name__ == "__main__":
    main()
