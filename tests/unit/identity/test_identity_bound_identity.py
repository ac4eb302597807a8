"""The account read after a bind is the one the directory bound: who-am-I's answer (Active Directory).

Samba has no who-am-I, so the integration tests cover the other path (the bound token's SID); this covers
who-am-I with a stand-in connection that answers as AD does (`u:CORP\\bob`).
"""

from __future__ import annotations

import dataclasses
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from link_zoom.adapters.directory import LdapDirectory
from link_zoom.config import Settings
from link_zoom.domain.identity import parse_username
from link_zoom.errors import InvalidCredentials

GUIDS = {"bob": uuid.uuid4(), "mallory": uuid.uuid4()}


class DirectoryConnection:
    """Answers who-am-I with `bound` and every search with the entry of the account its filter names."""

    def __init__(self, bound: str) -> None:
        self.extend = SimpleNamespace(standard=SimpleNamespace(who_am_i=lambda: f"u:{bound}"))
        self.result: dict[str, Any] = {"result": 0}
        self.response: list[dict[str, Any]] = []
        self.filters: list[str] = []

    def search(self, base: str, search_filter: str, *args: Any, **kwargs: Any) -> None:
        self.filters.append(search_filter)
        names = [n for n in GUIDS if f"(sAMAccountName={n})" in search_filter]
        self.response = [
            {
                "type": "searchResEntry",
                "dn": f"CN={n},CN=Users,DC=corp,DC=example",
                "raw_attributes": {
                    "objectGUID": [GUIDS[n].bytes_le],
                    "sAMAccountName": [n.encode()],
                    "userAccountControl": [b"512"],
                },
            }
            for n in names
        ]


@pytest.fixture
def directory() -> LdapDirectory:
    settings = dataclasses.replace(
        Settings.from_environ(),
        ldap_url="ldaps://dc1.corp.example:636",
        ldap_base_dn="DC=corp,DC=example",
        ldap_admin_group_dn="",
    )
    return LdapDirectory(settings)


@pytest.mark.parametrize("typed", ["CORP\\bob", "corp\\bob", "corp.example\\bob", "bob", "bob@corp.example"])
def test_the_bound_account_is_read(directory: LdapDirectory, typed: str) -> None:
    connection = DirectoryConnection("CORP\\bob")
    user = directory._read_user(connection, parse_username(typed))  # type: ignore[arg-type]
    assert (user.user_id, user.username) == (str(GUIDS["bob"]), "bob")
    assert connection.filters[0].endswith("(sAMAccountName=bob))")


def test_a_prefix_naming_another_domain_is_refused_even_if_the_directory_bound_it(directory: LdapDirectory) -> None:
    connection = DirectoryConnection("CORP\\bob")
    with pytest.raises(InvalidCredentials):
        directory._read_user(connection, parse_username("OTHER\\bob"))  # type: ignore[arg-type]
    assert connection.filters == []


def test_a_bind_that_landed_on_another_account_is_refused(directory: LdapDirectory) -> None:
    connection = DirectoryConnection("CORP\\mallory")
    with pytest.raises(InvalidCredentials):
        directory._read_user(connection, parse_username("CORP\\bob"))  # type: ignore[arg-type]
