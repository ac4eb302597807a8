"""Usernames: the three forms the contract accepts, one throttle key per person, and nothing else."""

from __future__ import annotations

import pytest

from link_zoom.adapters.directory import realm_of
from link_zoom.domain.identity import parse_username
from link_zoom.errors import InvalidCredentials


@pytest.mark.parametrize(
    ("typed", "form", "account", "domain"),
    [
        ("alice@corp.example", "upn", "alice", "corp.example"),
        ("Alice@CORP.example", "upn", "Alice", "corp.example"),
        ("CORP\\alice", "down_level", "alice", "CORP"),
        ("alice", "bare", "alice", None),
        ("  alice  ", "bare", "alice", None),
        ("o'brien.j-x_1", "bare", "o'brien.j-x_1", None),
        ("bob)(x", "bare", "bob)(x", None),  # legal in AD; escaped wherever it meets a filter
    ],
)
def test_each_username_form_is_understood(typed: str, form: str, account: str, domain: str | None) -> None:
    login = parse_username(typed)
    assert (login.form, login.account, login.domain) == (form, account, domain)


def test_every_form_of_one_name_shares_one_throttle_key() -> None:
    keys = {parse_username(n).throttle_key for n in ["alice", "ALICE", "CORP\\alice", "alice@corp.example"]}
    assert len(keys) == 1
    assert "alice" not in keys.pop()  # stored hashed: a mistyped password in the name field is not kept


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "*",
        "a*",
        "bob\x00",
        "bob@corp.example\x00junk",
        "\\alice",
        "CORP\\",
        "alice@",
        "@corp.example",
        "a@b@corp.example",
        "CORP\\a\\b",
        "x" * 300,
        "al\nice",
        "a,b",
        "a=b",
        "a<b",
    ],
)
def test_anything_else_is_refused_like_a_wrong_password(typed: str) -> None:
    with pytest.raises(InvalidCredentials):
        parse_username(typed)


@pytest.mark.parametrize(
    ("base_dn", "realm"),
    [("DC=corp,DC=example", "corp.example"), ("OU=People, dc=Corp, dc=Example", "corp.example"), ("", "")],
)
def test_a_bare_name_binds_with_the_realm_of_the_base_dn(base_dn: str, realm: str) -> None:
    assert realm_of(base_dn) == realm
