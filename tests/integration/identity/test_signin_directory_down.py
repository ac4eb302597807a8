"""The directory unreachable: a 503 within the configured timeouts, never a hang, never a lockout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from devstack.directory import DirectoryInfo
from link_zoom.config import LDAP_CONNECT_TIMEOUT_S, LDAP_RECEIVE_TIMEOUT_S
from tests.conftest import reset_process_caches
from tests.integration.identity.conftest import Api, body

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")]

BUDGET_S = LDAP_CONNECT_TIMEOUT_S + LDAP_RECEIVE_TIMEOUT_S + 1.0


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake but whose owner never answers (a hung directory)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def _point_at(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_process_caches()


def _timed_sign_in(api: Api, info: DirectoryInfo) -> tuple[dict, float]:
    bob = info.user("user")
    started = time.monotonic()
    response = api.sign_in(bob.upn, bob.password)
    return response, time.monotonic() - started


def test_a_closed_port_is_a_fast_503(
    api: Api, identity_env: DirectoryInfo, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    _point_at(monkeypatch, LDAP_URL=f"ldaps://127.0.0.1:{closed_port}")
    response, elapsed = _timed_sign_in(api, identity_env)
    print(f"\ndirectory down (connection refused): 503 after {elapsed * 1000:.0f} ms")
    assert (response["statusCode"], body(response)["error"]["code"]) == (503, "directory_unavailable")
    assert elapsed < 1.0


def test_a_directory_that_never_answers_is_a_503_within_the_timeouts(
    api: Api, identity_env: DirectoryInfo, monkeypatch: pytest.MonkeyPatch, silent_port: int
) -> None:
    _point_at(monkeypatch, LDAP_URL=f"ldaps://127.0.0.1:{silent_port}")
    response, elapsed = _timed_sign_in(api, identity_env)
    print(f"\ndirectory down (accepts, never answers): 503 after {elapsed * 1000:.0f} ms")
    assert response["statusCode"] == 503
    assert LDAP_RECEIVE_TIMEOUT_S - 0.5 <= elapsed < BUDGET_S


def test_a_certificate_from_another_ca_is_refused_as_unavailable(
    api: Api, identity_env: DirectoryInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(monkeypatch, LDAP_CA_FILE="/etc/ssl/certs/ca-certificates.crt")
    response, _ = _timed_sign_in(api, identity_env)
    assert response["statusCode"] == 503


def test_outages_do_not_count_as_failed_attempts(
    api: Api, identity_env: DirectoryInfo, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    _point_at(monkeypatch, LDAP_URL=f"ldaps://127.0.0.1:{closed_port}")
    assert [_timed_sign_in(api, identity_env)[0]["statusCode"] for _ in range(7)] == [503] * 7
    _point_at(monkeypatch, LDAP_URL=identity_env.ldap_url)
    assert _timed_sign_in(api, identity_env)[0]["statusCode"] == 201
