"""Who stops the shared demo directory: the holder that started it, once no other holder (make run, another test
session) still uses it; a directory someone else started is left alone.

The bookkeeping tests use a directory stand-in (its start/stop only count) so that they never stop the machine's
one Samba, which other sessions share; the last test runs a real pytest session against the real Samba.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.directory import DirectoryInfo, LeaseBook, _samba, ensure_directory, stop_directory

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


@dataclass
class StandIn:
    """A directory that is either running or not; `started_by_someone_else` is a person's `make run`."""

    info: DirectoryInfo
    running: bool = False
    instance: int = 0
    stops: list[int] = field(default_factory=list)

    def start_or_reuse(self, state_dir: Path, install: bool) -> tuple[DirectoryInfo, bool]:
        if self.running:
            return self.info, False
        self.running, self.instance = True, self.instance + 1
        return self.info, True

    def stop(self, state_dir: Path) -> bool:
        self.stops.append(self.instance)
        was, self.running = self.running, False
        return was

    def book(self, root: Path) -> LeaseBook:
        return LeaseBook(root, start=self.start_or_reuse, stop=self.stop, instance=lambda: self.instance)


@pytest.fixture
def stand_in() -> StandIn:
    return StandIn(DirectoryInfo("ldaps://127.0.0.1:636", "DC=corp,DC=example", "CN=Admins", "ca.pem", "X", "X", []))


def test_the_holder_that_started_it_stops_it(stand_in: StandIn, tmp_path: Path) -> None:
    lease = stand_in.book(tmp_path).hold()

    assert lease.started
    assert lease.release() is True
    assert not stand_in.running


def test_a_directory_started_by_someone_else_is_left_alone(stand_in: StandIn, tmp_path: Path) -> None:
    stand_in.running = True  # e.g. a `make run` in another checkout, or a person

    lease = stand_in.book(tmp_path).hold()

    assert not lease.started
    assert lease.release() is False
    assert stand_in.running and stand_in.stops == []


def test_the_starter_leaves_it_to_the_last_holder(stand_in: StandIn, tmp_path: Path) -> None:
    book = stand_in.book(tmp_path)
    tests, make_run = book.hold(), book.hold()  # a test session started it; make run reused it

    assert tests.release() is False  # make run still uses it
    assert stand_in.running
    assert make_run.release() is True  # the last one out stops what a holder started
    assert not stand_in.running


def test_keep_means_nobody_stops_it(stand_in: StandIn, tmp_path: Path) -> None:
    book = stand_in.book(tmp_path)
    kept = book.hold(stop_when_done=False)  # `make run --keep-directory`
    other = book.hold()

    assert kept.release() is False and other.release() is False
    assert stand_in.running


def test_a_dead_holders_lease_does_not_keep_it_running(stand_in: StandIn, tmp_path: Path) -> None:
    book = stand_in.book(tmp_path)
    lease = book.hold()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (book.leases / f"{gone.stdout.strip()}-1-deadbeef").touch()  # a session that was killed

    assert lease.release() is True
    assert book.holders() == []


def test_a_stop_request_for_an_earlier_instance_stops_nothing(stand_in: StandIn, tmp_path: Path) -> None:
    book = stand_in.book(tmp_path)
    book.stop_request.parent.mkdir(parents=True, exist_ok=True)
    book.stop_request.write_text("0\n")  # left by a holder that died before it could stop instance 0
    stand_in.running, stand_in.instance = True, 7  # someone else's directory runs now

    assert book.hold().release() is False
    assert stand_in.running


def test_a_test_session_leaves_a_running_real_directory_running(demo_directory: DirectoryInfo, tmp_path: Path) -> None:
    # Given the real Samba running (held by this session) and a second test session that uses it
    probe = tmp_path / "test_uses_directory.py"
    probe.write_text(
        textwrap.dedent(
            """
            def test_uses_it(demo_directory):
                assert demo_directory.ldap_url.startswith("ldaps://")
            """
        )
    )
    # When that session ends
    done = subprocess.run(
        # tests/conftest.py as a plugin: the probe lives outside tests/, with the same demo_directory fixture
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(probe)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    # Then the directory it did not start still answers (reuse is one validated LDAPS bind)
    assert ensure_directory() == demo_directory


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root and unshare")
def test_a_test_session_stops_the_real_directory_it_started(tmp_path: Path) -> None:
    # Given a machine where no directory runs: a network namespace of its own (its loopback's 389/636 are free,
    # the shared Samba stays untouched) and a state dir of its own
    state_dir = tmp_path / "samba"
    probe = tmp_path / "test_starts_directory.py"
    probe.write_text(
        textwrap.dedent(
            """
            def test_uses_it(demo_directory):
                assert demo_directory.ldap_url == "ldaps://127.0.0.1:636"
            """
        )
    )
    session = f"ip link set lo up && {sys.executable} -m pytest -q -p no:cacheprovider -p tests.conftest {probe}"
    try:
        # When a test session that uses the directory runs there and ends
        done = subprocess.run(
            ["unshare", "--net", "sh", "-c", session],
            cwd=REPO,
            env={**os.environ, "DEMO_DIRECTORY_STATE_DIR": str(state_dir)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 passed" in done.stdout
        # Then the Samba it started is gone
        assert _samba._our_processes(_samba._Layout(state_dir.resolve())) == set()
    finally:
        stop_directory(state_dir)  # whatever the outcome, nothing of this test keeps running
