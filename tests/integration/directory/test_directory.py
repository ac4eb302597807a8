"""The demo directory behaves like the Active Directory the service will meet in production.

These tests start (or reuse) the one shared Samba AD DC and talk to it only the way the service will:
ldap3 over LDAPS with certificate validation and explicit timeouts.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPSocketOpenError

from devstack.directory import DirectoryError, DirectoryInfo, _samba, ensure_directory

pytestmark = [
    pytest.mark.integration,
    # ldap3 2.9 checks the host name with ssl.match_hostname (deprecated in 3.11, gone in 3.12, where
    # ldap3 uses its own copy); the check itself still runs, as the system-CA test shows.
    pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning"),
]

REPO = Path(__file__).resolve().parents[3]
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN: membership through nested groups
CANONICAL_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def info(demo_directory: DirectoryInfo) -> DirectoryInfo:
    return demo_directory


def _server(info: DirectoryInfo, ca_file: str | None = "from-info") -> ldap3.Server:
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=info.ca_file if ca_file == "from-info" else ca_file,
    )
    return ldap3.Server(info.ldap_url, tls=tls, connect_timeout=5)


def _connect(info: DirectoryInfo, user: str, password: str, server: ldap3.Server | None = None) -> ldap3.Connection:
    # receive_timeout is an int on purpose: ldap3 packs it with struct and a float raises struct.error.
    return ldap3.Connection(server or _server(info), user=user, password=password, receive_timeout=5)


@pytest.fixture(scope="module")
def bob_conn(info: DirectoryInfo) -> ldap3.Connection:
    bob = info.user("user")
    conn = _connect(info, bob.upn, bob.password)
    assert conn.bind(), conn.result
    return conn


def test_info_describes_the_demo_directory(info: DirectoryInfo) -> None:
    assert info.ldap_url == "ldaps://127.0.0.1:636"
    assert info.base_dn == "DC=corp,DC=example"
    assert info.admin_group_dn == "CN=Link Admins,CN=Users,DC=corp,DC=example"
    assert (info.realm, info.netbios_domain) == ("CORP.EXAMPLE", "CORP")
    assert Path(info.ca_file).is_absolute() and Path(info.ca_file).is_file()
    users = {(u.username, u.role, u.display_name, u.upn) for u in info.users}
    assert users == {
        ("ada", "admin", "Ada Admin", "ada@corp.example"),
        ("bob", "user", "Bob User", "bob@corp.example"),
        ("dora", "disabled", "Dora Disabled", "dora@corp.example"),
    }
    assert info.env()["LDAP_CA_FILE"] == info.ca_file


@pytest.mark.parametrize("form", ["upn", "down-level"])
def test_ldaps_bind_with_ca_validation(info: DirectoryInfo, form: str) -> None:
    for user in (info.user("user"), info.user("admin")):
        name = user.upn if form == "upn" else f"{info.netbios_domain}\\{user.username}"
        conn = _connect(info, name, user.password)
        try:
            assert conn.bind(), conn.result
        finally:
            conn.unbind()


def test_system_ca_store_does_not_trust_the_demo_ca(info: DirectoryInfo) -> None:
    bob = info.user("user")
    conn = _connect(info, bob.upn, bob.password, server=_server(info, ca_file=None))
    with pytest.raises(LDAPSocketOpenError, match="CERTIFICATE_VERIFY_FAILED"):
        conn.bind()


def test_wrong_password_is_invalid_credentials_52e(info: DirectoryInfo) -> None:
    bob = info.user("user")
    conn = _connect(info, bob.upn, bob.password + "x")
    assert conn.bind() is False
    assert conn.result["result"] == 49
    assert "data 52e" in conn.result["message"]


def test_disabled_account_is_refused_533(info: DirectoryInfo) -> None:
    dora = info.user("disabled")
    conn = _connect(info, f"{info.netbios_domain}\\{dora.username}", dora.password)
    assert conn.bind() is False
    assert conn.result["result"] == 49
    assert "data 533" in conn.result["message"]


def test_admin_only_through_nested_group(info: DirectoryInfo, bob_conn: ldap3.Connection) -> None:
    # ada's direct groups do not include Link Admins: only the in-chain rule sees her as an admin.
    bob_conn.search(info.base_dn, "(sAMAccountName=ada)", attributes=["memberOf"])
    assert info.admin_group_dn not in bob_conn.entries[0].memberOf.values

    # The in-chain match also returns the intermediate group (IT Staff), so restrict it to people.
    flt = f"(&(objectCategory=person)(memberOf:{IN_CHAIN}:={info.admin_group_dn}))"
    bob_conn.search(info.base_dn, flt, attributes=["sAMAccountName"])
    assert {e.sAMAccountName.value for e in bob_conn.entries} == {"ada"}

    # The check the service makes per user: is this one DN in the chain?
    for username, expected in (("ada", True), ("bob", False)):
        dn = f"CN={username},CN=Users,{info.base_dn}"
        bob_conn.search(dn, f"(memberOf:{IN_CHAIN}:={info.admin_group_dn})", ldap3.BASE, attributes=["cn"])
        assert bool(bob_conn.entries) is expected, username


def test_object_guid_canonical_form(info: DirectoryInfo, bob_conn: ldap3.Connection) -> None:
    bob_conn.search(info.base_dn, "(userPrincipalName=ada@corp.example)", attributes=["objectGUID", "displayName"])
    entry = bob_conn.entries[0]
    raw = entry.objectGUID.raw_values[0]
    assert len(raw) == 16
    # AD stores the GUID mixed-endian; uuid's bytes_le reads it the way AD prints it.
    from_raw = str(uuid.UUID(bytes_le=raw))
    # ldap3 already formats it as "{...}": uuid.UUID() drops the braces and lower-cases.
    from_formatted = str(uuid.UUID(entry.objectGUID.value))
    assert entry.objectGUID.value.startswith("{")
    assert from_raw == from_formatted
    assert CANONICAL_GUID.match(from_raw)
    assert entry.displayName.value == "Ada Admin"


def test_plain_ldap_simple_bind_is_refused(info: DirectoryInfo) -> None:
    bob = info.user("user")
    server = ldap3.Server("127.0.0.1", port=389, use_ssl=False, connect_timeout=5)
    conn = _connect(info, bob.upn, bob.password, server=server)
    assert conn.bind() is False
    assert conn.result["description"] == "strongerAuthRequired"


def test_ensure_again_is_fast_and_keeps_passwords(info: DirectoryInfo) -> None:
    began = time.monotonic()
    again = ensure_directory()
    elapsed = time.monotonic() - began
    assert elapsed < 2.0, f"reuse took {elapsed:.2f} s"
    assert again == info
    assert {u.username: u.password for u in again.users} == {u.username: u.password for u in info.users}


def test_cli_prints_the_same_info(info: DirectoryInfo) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "devstack.directory", "ensure"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert DirectoryInfo.from_dict(json.loads(out.stdout)) == info


def test_generated_passwords_meet_ad_complexity() -> None:
    for _ in range(500):
        pw = _samba._strong_password(["bob", "Bob", "User", "CORP"])
        assert len(pw) == 20 and pw[0].isalpha()
        assert any(c.islower() for c in pw) and any(c.isupper() for c in pw)
        assert any(c.isdigit() for c in pw) and any(not c.isalnum() for c in pw)
        assert not any(t in pw.lower() for t in ("bob", "user", "corp"))


def test_missing_samba_is_installed_only_when_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    layout = _samba._Layout(tmp_path)
    installed: list[bool] = []
    monkeypatch.setattr(_samba, "_which", lambda name: f"/usr/sbin/{name}" if installed else None)
    with pytest.raises(DirectoryError, match="apt-get install -y"):
        _samba._ensure_packages(layout, install=False)

    calls: list[tuple[str, ...]] = []

    def fake_run(args: tuple[str, ...], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append(tuple(args))
        assert kwargs["env"]["DEBIAN_FRONTEND"] == "noninteractive"
        installed.append(True)
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(_samba.subprocess, "run", fake_run)
    monkeypatch.setattr(_samba.os, "geteuid", lambda: 0)
    assert _samba._ensure_packages(layout, install=True) == ("/usr/sbin/samba", "/usr/sbin/samba-tool")
    assert calls == [("apt-get", "install", "-y", *_samba.PACKAGES)]
