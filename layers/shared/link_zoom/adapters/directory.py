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
_USER_ATTRIBUTES = ["objectGUID", "sAMAccountName", "userPrincipalName", "displayName", "userAccountControl"]


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
        bind_name = self._bind_name(login)
        return Connection(
            server,
            user=bind_name,
            password=password,
            receive_timeout=math.ceil(LDAP_RECEIVE_TIMEOUT_S),
            read_only=True,
            raise_exceptions=False,
        )

    def _bind_name(self, login: Login) -> str:
        """The name to bind with: a bare name and `<dns-domain>\\name` bind as the realm's UPN (AD refuses a DNS
        domain in the down-level form); `NETBIOS\\name` and UPNs as typed, so the directory judges the domain."""
        if login.form == "bare" or (login.form == "down_level" and (login.domain or "").casefold() == self._realm):
            return f"{login.account}@{self._realm}"
        return login.typed

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
        entry = self._bound_entry(connection, login)
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

    def _bound_entry(self, connection: Connection, login: Login) -> dict[str, Any]:
        """The entry of the identity the directory bound (not of a name looked up), checked against the login."""
        from ldap3.utils.conv import escape_filter_chars

        bound = _who_am_i(connection)
        if bound is not None:
            domain, _, account = bound.partition("\\")
            if login.form == "down_level" and (login.domain or "").casefold() not in {domain.casefold(), self._realm}:
                raise InvalidCredentials()  # another domain's prefix (the directory may bind it to its own user)
            entry = self._find_one(connection, f"(sAMAccountName={escape_filter_chars(account)})")
        else:
            entry = self._find_one(connection, _sid_filter(self._token_sids(connection)))
        if entry is None or not _names_match(entry, login):
            raise InvalidCredentials()
        return entry

    def _token_sids(self, connection: Connection) -> list[bytes]:
        """Directories without who-am-I (Samba): the bound identity's security token, from the rootDSE."""
        from ldap3 import BASE

        connection.search("", "(objectClass=*)", BASE, attributes=["tokenGroups"])
        _check_search(connection)
        entries = [r for r in connection.response or [] if r.get("type") == "searchResEntry"]
        return list(entries[0]["raw_attributes"].get("tokenGroups") or []) if entries else []

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


def _who_am_i(connection: Connection) -> str | None:
    """`DOMAIN\\account` the directory bound (RFC 4532, Active Directory), or None where it has no who-am-I."""
    answer = connection.extend.standard.who_am_i()
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8")
    if not isinstance(answer, str) or not answer.startswith("u:") or "\\" not in answer:
        return None
    return answer[2:]


def _sid_filter(sids: list[bytes]) -> str:
    """An objectSid filter for the token's SIDs (only the user's own SID names a person among them)."""
    from ldap3.utils.conv import escape_bytes

    if not sids:
        return "(objectSid=\\00)"  # matches nothing: no token, no identity
    return "(|" + "".join(f"(objectSid={escape_bytes(sid)})" for sid in sids) + ")"


def _names_match(entry: dict[str, Any], login: Login) -> bool:
    """The bound entry is the account the login named (its sAMAccountName, or its UPN for a UPN login)."""
    attributes = entry["raw_attributes"]
    sam = (_first(attributes, "sAMAccountName") or b"").decode("utf-8").casefold()
    if login.form != "upn":
        return sam == login.account.casefold()
    upn = (_first(attributes, "userPrincipalName") or b"").decode("utf-8").casefold()
    return upn == login.typed.casefold() or sam == login.account.casefold()


def _check_search(connection: Connection) -> None:
    # 0 success, 4 size limit (more than one match: handled by the caller). Others: the directory is failing.
    code = connection.result.get("result")
    if code not in (0, 4):
        logger.warning("directory search failed", extra={"ldap_result": code})
        raise DirectoryUnavailable()


def _first(attributes: dict[str, list[bytes]], name: str) -> bytes | None:
    values = attributes.get(name) or []
    return values[0] if values else None
