"""The local stack's demo directory: a Samba AD DC on 127.0.0.1 with LDAPS, our own CA and demo users.

    info = ensure_directory()          # starts it, or reuses the one already running (< 1 s)
    info.env()                         # LDAP_URL, LDAP_BASE_DN, LDAP_ADMIN_GROUP_DN, LDAP_CA_FILE
    info.user("admin").password        # ada: admin through nested groups; bob: user; dora: disabled
    with hold_directory() as lease:    # the same, and stopped afterwards if this started it and nobody
        lease.info                     # else (make run, another test session) still holds it

One instance per machine (ports 389/636): everybody shares the state dir .local/samba of the checkout.
"""

from ._lease import DirectoryLease, LeaseBook, hold_directory
from ._model import DemoUser, DirectoryInfo, Role
from ._samba import (
    ADMIN_GROUP_DN,
    BASE_DN,
    DEFAULT_STATE_DIR,
    NETBIOS_DOMAIN,
    REALM,
    DirectoryError,
    ensure_directory,
    start_or_reuse,
    stop_directory,
)

__all__ = [
    "ADMIN_GROUP_DN",
    "BASE_DN",
    "DEFAULT_STATE_DIR",
    "NETBIOS_DOMAIN",
    "REALM",
    "DemoUser",
    "DirectoryError",
    "DirectoryInfo",
    "DirectoryLease",
    "LeaseBook",
    "Role",
    "ensure_directory",
    "hold_directory",
    "start_or_reuse",
    "stop_directory",
]
