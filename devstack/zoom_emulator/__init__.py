"""A strict local stand-in for Zoom: OAuth (authorization code + PKCE, rotating refresh tokens), the
meetings API, its limits and errors, signed webhooks, plus /_emulator controls for tests.

    handle = start_emulator()            # background thread, free port
    handle.oauth_base_url, handle.api_base_url
    handle.add_fault("POST", "/v2/users/me/meetings", 429, retry_after=2)
    handle.stop()

Run it alone with `python -m devstack.zoom_emulator --port 8090`.
"""

from .consent import ConsentError, complete_consent
from .server import EmulatorHandle, serve, start_emulator
from .store import EmulatorConfig, Fault, Store
from .webhooks import Delivery, encrypt_plain_token, sign_webhook

__all__ = [
    "ConsentError",
    "Delivery",
    "EmulatorConfig",
    "EmulatorHandle",
    "Fault",
    "Store",
    "complete_consent",
    "encrypt_plain_token",
    "serve",
    "sign_webhook",
    "start_emulator",
]
