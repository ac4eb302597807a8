"""Sign-in against the Samba AD DC: username forms, every credential failure, injection, nested admins."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devstack.directory import DirectoryInfo
from link_zoom.adapters.directory import LdapDirectory
from tests.conftest import reset_process_caches
from tests.integration.identity.conftest import Api, body

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")]

CANONICAL_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def binds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every bind the service asks the directory for."""
    seen: list[str] = []
    original = LdapDirectory._bind

    def spy(self: LdapDirectory, connection: Any) -> None:
        seen.append(connection.user)
        original(self, connection)

    monkeypatch.setattr(LdapDirectory, "_bind", spy)
    return seen


def test_every_username_form_signs_in_as_the_same_user(api: Api, identity_env: DirectoryInfo) -> None:
    bob = identity_env.user("user")
    forms = [
        bob.upn,
        bob.upn.upper(),
        f"{identity_env.netbios_domain}\\{bob.username}",
        bob.username,
        bob.username.upper(),
        f"{bob.username}@{identity_env.realm.lower()}",
    ]
    users = []
    for typed in forms:
        response = api.sign_in(typed, bob.password)
        assert response["statusCode"] == 201, (typed, response["body"])
        users.append(body(response)["user"])

    assert all(user == users[0] for user in users)
    assert CANONICAL_GUID.fullmatch(users[0]["id"])
    assert users[0]["username"].lower() == bob.username
    assert users[0]["display_name"] == bob.display_name
    assert users[0]["is_admin"] is False


def test_a_domain_prefix_must_name_the_directorys_own_domain(
    api: Api, identity_env: DirectoryInfo, binds: list[str]
) -> None:
    bob = identity_env.user("user")
    netbios, realm = identity_env.netbios_domain, identity_env.realm
    own = [f"{netbios}\\{bob.username}", f"{netbios.lower()}\\{bob.username}", f"{realm.upper()}\\{bob.username}"]
    own.append(f"{realm.lower()}\\{bob.username}")
    for typed in own:
        response = api.sign_in(typed, bob.password)
        assert response["statusCode"] == 201, (typed, response["body"])
        assert body(response)["user"]["username"].lower() == bob.username

    for typed in (f"OTHER\\{bob.username}", f"other.example\\{bob.username}", f"{netbios}X\\{bob.username}"):
        response = api.sign_in(typed, bob.password)
        assert (response["statusCode"], body(response)["error"]["code"]) == (401, "invalid_credentials"), typed
    # The DNS-domain form binds as the realm's UPN (AD refuses `corp.example\\bob`); the others go as typed.
    assert f"{bob.username}@{realm.lower()}" in binds and f"OTHER\\{bob.username}" in binds


def test_the_identity_is_the_one_the_directory_bound(
    identity_env: DirectoryInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bind that succeeds as someone else than the typed name (a directory mapping names) is refused."""
    from link_zoom.config import get_settings
    from link_zoom.domain.identity import parse_username
    from link_zoom.errors import InvalidCredentials

    bob, ada = identity_env.user("user"), identity_env.user("admin")
    directory = LdapDirectory(get_settings())
    real_bind_name = LdapDirectory._bind_name
    # The directory binds bob whatever the login says: the account read after the bind must be bob's.
    monkeypatch.setattr(LdapDirectory, "_bind_name", lambda self, login: real_bind_name(self, parse_username(bob.upn)))

    assert directory.authenticate(parse_username(bob.username), bob.password).username.lower() == bob.username
    with pytest.raises(InvalidCredentials):
        directory.authenticate(parse_username(ada.username), bob.password)


def test_the_user_id_is_the_directorys_object_guid(api: Api, identity_env: DirectoryInfo) -> None:
    import ssl
    import uuid

    import ldap3

    bob = identity_env.user("user")
    user_id = body(api.sign_in(bob.upn, bob.password))["user"]["id"]
    # Read independently, formatted by ldap3's own GUID formatter (with the schema it knows the syntax).
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=identity_env.ca_file)
    server = ldap3.Server(identity_env.ldap_url, tls=tls, get_info=ldap3.ALL, connect_timeout=3)
    with ldap3.Connection(server, user=bob.upn, password=bob.password, receive_timeout=5, auto_bind=True) as conn:
        conn.search(identity_env.base_dn, f"(sAMAccountName={bob.username})", attributes=["objectGUID"])
        formatted = str(conn.entries[0].objectGUID.value)
    assert str(uuid.UUID(formatted.strip("{}"))) == user_id


def test_admin_rights_come_through_nested_groups(api: Api, identity_env: DirectoryInfo) -> None:
    ada = identity_env.user("admin")
    user = body(api.sign_in(ada.username, ada.password))["user"]
    assert user["is_admin"] is True
    assert user["display_name"] == ada.display_name


def test_every_credential_failure_is_one_and_the_same_401(
    api: Api, identity_env: DirectoryInfo, binds: list[str]
) -> None:
    bob, dora = identity_env.user("user"), identity_env.user("disabled")
    attempts = {
        "wrong password": (bob.upn, bob.password + "x"),
        "unknown user": ("nobody-here@" + identity_env.realm.lower(), bob.password),
        "empty password": (bob.upn, ""),
        "disabled account": (dora.upn, dora.password),
        "disabled, bare name": (dora.username, dora.password),
    }
    answers = {case: api.sign_in(*credentials) for case, credentials in attempts.items()}

    assert {case: a["statusCode"] for case, a in answers.items()} == dict.fromkeys(attempts, 401)
    assert len({a["body"] for a in answers.values()}) == 1
    assert body(answers["wrong password"])["error"]["code"] == "invalid_credentials"
    assert binds.count(bob.upn) == 1  # the wrong password bound; the empty one never reached the directory


def test_an_empty_password_never_reaches_the_directory(api: Api, identity_env: DirectoryInfo, binds: list[str]) -> None:
    bob = identity_env.user("user")
    for typed in [bob.upn, bob.username, "", " "]:
        assert api.sign_in(typed, "")["statusCode"] == 401
    assert binds == []


@pytest.mark.parametrize(
    "username",
    [
        "*",
        "b*",
        "*@corp.example",
        ")(",
        "bob)(|(objectClass=*)",
        "*)(sAMAccountName=*",
        "CORP\\*",
        "bob\x00",
        "bob@corp.example\x00junk",
        "CORP\\bob\x00",
        "\x00",
    ],
)
def test_ldap_injection_attempts_are_refused(api: Api, identity_env: DirectoryInfo, username: str) -> None:
    # With the RIGHT password: the directory truncates bind names at NUL, so "bob@corp.example\0junk"
    # would bind as bob if the service passed it on.
    response = api.sign_in(username, identity_env.user("user").password)
    assert (response["statusCode"], body(response)["error"]["code"]) == (401, "invalid_credentials")


@pytest.mark.parametrize("password", ["*", ")(", "\x00", "x\x00" + "y" * 10])
def test_odd_passwords_are_just_wrong_passwords(api: Api, identity_env: DirectoryInfo, password: str) -> None:
    assert api.sign_in(identity_env.user("user").upn, password)["statusCode"] == 401


def test_five_failures_lock_the_name_then_429_with_retry_after(
    api: Api, identity_env: DirectoryInfo, binds: list[str]
) -> None:
    bob = identity_env.user("user")
    typed = [bob.username, bob.upn, f"{identity_env.netbios_domain}\\{bob.username}", bob.username.upper(), bob.upn]
    for name in typed:
        assert api.sign_in(name, "not-the-password")["statusCode"] == 401

    locked = api.sign_in(bob.username, bob.password)

    assert locked["statusCode"] == 429
    assert body(locked)["error"]["code"] == "too_many_attempts"
    assert 840 <= int(locked["multiValueHeaders"]["Retry-After"][0]) <= 900
    assert len(binds) == 5
    ada = identity_env.user("admin")
    assert api.sign_in(ada.username, ada.password)["statusCode"] == 201  # other names are not affected


def test_no_password_or_token_in_logs_or_error_answers(
    api: Api, identity_env: DirectoryInfo, captured_logs: Any
) -> None:
    bob = identity_env.user("user")
    signed_in = api.sign_in(bob.upn, bob.password)
    token = body(signed_in)["token"]
    failures = [api.sign_in(bob.upn, "Typo-" + bob.password), api.sign_in(bob.upn + "\x00", bob.password)]
    api.request("session", token, "DELETE", "/v1/session")

    logs = captured_logs.getvalue()
    assert '"message":"signed in"' in logs
    for secret in [bob.password, "Typo-" + bob.password, token]:
        assert secret not in logs
        assert all(secret not in f["body"] for f in failures)
    assert bob.password not in signed_in["body"]


def test_a_plain_ldap_url_signs_in_over_starttls(
    api: Api, identity_env: DirectoryInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LDAP_URL", identity_env.ldap_url.replace("ldaps://", "ldap://").replace(":636", ":389"))
    reset_process_caches()
    bob = identity_env.user("user")
    assert api.sign_in(bob.upn, bob.password)["statusCode"] == 201
