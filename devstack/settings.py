"""The local stack's settings, defined once.

- `LOCAL_ZOOM`: the Zoom app credentials of the local stack. The Zoom emulator knows this app by default, and
  the stack, the tests and the benchmarks hand the same values to the functions unless the caller sets others.
- `OVERRIDABLE`: the configuration variables (docs/configuration.md) that, set in the environment of
  `make run`, replace the embedded part they name: LDAP_URL → no demo directory; ZOOM_OAUTH_BASE_URL and
  ZOOM_API_BASE_URL → no emulator; ZOOM_CLIENT_ID/SECRET/WEBHOOK_SECRET → those credentials; the others reach
  the functions as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ZoomCredentials:
    client_id: str
    client_secret: str
    webhook_secret: str

    def env(self) -> dict[str, str]:
        return {
            "ZOOM_CLIENT_ID": self.client_id,
            "ZOOM_CLIENT_SECRET": self.client_secret,
            "ZOOM_WEBHOOK_SECRET": self.webhook_secret,
        }


LOCAL_ZOOM = ZoomCredentials("link-local-client", "link-local-secret", "link-local-webhook-secret")

OVERRIDABLE = (
    "ZOOM_OAUTH_BASE_URL",
    "ZOOM_API_BASE_URL",
    "ZOOM_CLIENT_ID",
    "ZOOM_CLIENT_SECRET",
    "ZOOM_WEBHOOK_SECRET",
    "LDAP_URL",
    "LDAP_BASE_DN",
    "LDAP_ADMIN_GROUP_DN",
    "LDAP_CA_FILE",
    "ZOOM_REDIRECT_URL",
    "FEATURE_FLAG_PARAMETER",
)


def overrides_from(environ: Mapping[str, str]) -> dict[str, str]:
    """The overridable settings the environment sets (empty values count as unset)."""
    return {name: environ[name] for name in OVERRIDABLE if environ.get(name)}
