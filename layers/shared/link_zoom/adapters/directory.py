"""Active Directory over LDAPS (or StartTLS) with ldap3: bind as the user, then read who they are.

ldap3 is imported only here and only when a sign-in happens. Its traps, all handled below: no certificate
check and no timeouts unless asked for; a `Server` remembers a failed address and refuses to retry it (so one
is built per sign-in); an integer receive timeout is required (it is packed into SO_RCVTIMEO as 'LL').
"""

from __future__ import annotations

import contextlib
import math
import ssl
import uuid
from typing import TYPE_CHECKING, Any

from link_zoom.config import LDAP_CONNECT_TIMEOUT_S, LDAP_RECEIVE_TIMEOUT_S, Settings
from link_zoom.domain.identity import DirectoryUser, Login
from link_zoom.errors import DirectoryUnavailable, InvalidCredentials
from link_zoom.observability import logger

if TYPE_CHECKING:
    from ldap3 import Connection

# The in-chain matching rule: membership through nested groups counts.
IN_CHAIN = "1.2.840.113556.1.4.1941"
ACCOUNT_DISABLED = 0x2
# 49 invalidCredentials (wrong password, unknown user, disabled, locked, expired: AD's "data" sub-codes),
# 53 unwillingToPerform (account restrictions). Anything else is the directory failing, not the user.
_CREDENTIAL_RESULTS = {49, 53}
_USER_ATTRIBUTES = ["objectGUID", "sAMAccountName", "displayName", "userAccountControl"]


def realm_of(base_dn: str) -> str:
    """`DC=corp,DC=example` -> `corp.example`: the suffix a bare name binds with (AD's implicit UPN)."""
    parts = [rdn.split("=", 1)[1] for rdn in base_dn.split(",") if rdn.strip().lower().startswith("dc=")]
    return ".".join(p.strip() for p in parts).lower()


class LdapDirectory:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._realm = realm_of(settings.ldap_base_dn)
        self._use_ssl = settings.ldap_url.lower().startswith("ldaps://")

    def authenticate(self, login: Login, password: str) -> DirectoryUser:
        from ldap3.core.exceptions import LDAPException, LDAPSASLPrepError

        connection = self._connection(login, password)
        try:
            self._bind(connection)
            return self._read_user(connection, login)
        except LDAPSASLPrepError as exc:
            # ldap3 normalises the password first (RFC 4013) and refuses ones with NUL or other prohibited
            # characters: a password the directory could never have accepted.
            raise InvalidCredentials() from exc
        except LDAPException as exc:
            # Connection refused, timeouts, TLS or certificate failures: never the user's fault.
            logger.warning("directory unavailable", extra={"ldap_error": type(exc).__name__})
            raise DirectoryUnavailable() from exc
        finally:
            with contextlib.suppress(LDAPException):
                connection.unbind()

    def _connection(self, login: Login, password: str) -> Connection:
        from ldap3 import NONE, Connection, Server, Tls

        settings = self._settings
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ldap_ca_file)
        # get_info=NONE: reading the schema on every bind costs round trips we do not need.
        server = Server(
            settings.ldap_url, use_ssl=self._use_ssl, tls=tls, get_info=NONE, connect_timeout=LDAP_CONNECT_TIMEOUT_S
        )
        bind_name = login.typed if login.form != "bare" else f"{login.account}@{self._realm}"
        return Connection(
            server,
            user=bind_name,
            password=password,
            receive_timeout=math.ceil(LDAP_RECEIVE_TIMEOUT_S),
            read_only=True,
            raise_exceptions=False,
        )

    def _bind(self, connection: Connection) -> None:
        connection.open()
        # A plain ldap:// URL is only acceptable with StartTLS: never send a password in clear.
        if not self._use_ssl and not connection.start_tls():
            raise DirectoryUnavailable()
        if connection.bind():
            return
        code = connection.result.get("result")
        if code in _CREDENTIAL_RESULTS:
            raise InvalidCredentials()
        logger.warning("directory refused the bind", extra={"ldap_result": code})
        raise DirectoryUnavailable()

    def _read_user(self, connection: Connection, login: Login) -> DirectoryUser:
        from ldap3.utils.conv import escape_filter_chars

        account = escape_filter_chars(login.account)
        entry = None
        if login.form == "upn":
            entry = self._find_one(connection, f"(userPrincipalName={escape_filter_chars(login.typed)})")
            if entry is None and login.domain != self._realm:
                raise InvalidCredentials()
        if entry is None:
            # `CORP\alice`, `alice`, and `alice@<realm>` without an explicit UPN all bind as sAMAccountName.
            entry = self._find_one(connection, f"(sAMAccountName={account})")
        if entry is None:
            raise InvalidCredentials()
        attributes = entry["raw_attributes"]
        control = int(_first(attributes, "userAccountControl") or b"0")
        if control & ACCOUNT_DISABLED:
            raise InvalidCredentials()
        guid = _first(attributes, "objectGUID")
        if not guid or len(guid) != 16:
            raise InvalidCredentials()
        username = (_first(attributes, "sAMAccountName") or login.account.encode()).decode("utf-8")
        display_name = (_first(attributes, "displayName") or username.encode()).decode("utf-8")
        return DirectoryUser(
            # objectGUID is stored little-endian in its first three fields (Microsoft's GUID layout).
            user_id=str(uuid.UUID(bytes_le=guid)),
            username=username,
            display_name=display_name,
            is_admin=self._is_admin(connection, entry["dn"]),
        )

    def _find_one(self, connection: Connection, condition: str) -> dict[str, Any] | None:
        from ldap3 import SUBTREE

        search = f"(&(objectCategory=person)(objectClass=user){condition})"
        connection.search(self._settings.ldap_base_dn, search, SUBTREE, attributes=_USER_ATTRIBUTES, size_limit=2)
        _check_search(connection)
        # Referrals to the configuration and DNS partitions come back too; only entries count.
        entries = [r for r in connection.response or [] if r.get("type") == "searchResEntry"]
        return entries[0] if len(entries) == 1 else None

    def _is_admin(self, connection: Connection, user_dn: str) -> bool:
        from ldap3 import BASE
        from ldap3.utils.conv import escape_filter_chars

        group = self._settings.ldap_admin_group_dn
        if not group:
            return False
        connection.search(user_dn, f"(memberOf:{IN_CHAIN}:={escape_filter_chars(group)})", BASE, attributes=["1.1"])
        _check_search(connection)
        return any(r.get("type") == "searchResEntry" for r in connection.response or [])


def _check_search(connection: Connection) -> None:
    # 0 success, 4 size limit (more than one match: handled by the caller). Others: the directory is failing.
    code = connection.result.get("result")
    if code not in (0, 4):
        logger.warning("directory search failed", extra={"ldap_result": code})
        raise DirectoryUnavailable()


def _first(attributes: dict[str, list[bytes]], name: str) -> bytes | None:
    values = attributes.get(name) or []
    return values[0] if values else None
