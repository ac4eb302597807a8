"""`make run` and `make test` set the machine up themselves: they install missing Debian packages when root, and
otherwise stop at once with the one command that installs them.

`dpkg`, `id` and `apt-get` are replaced on PATH by scripts that answer as a bare machine would and record what
they were asked, so the real Makefile runs without touching the machine's packages.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from devstack.template import ROOT

pytestmark = pytest.mark.integration

SAMBA = ["samba-ad-dc", "samba", "winbind", "krb5-user", "ldap-utils"]


def _fake_machine(bin_dir: Path, *, missing: list[str], uid: int) -> Path:
    """dpkg that lacks `missing`, id that says `uid`, apt-get that only writes down its arguments."""
    calls = bin_dir / "apt-get.calls"
    scripts = {
        "dpkg": f'for p in {" ".join(missing) or "__none__"}; do [ "$2" = "$p" ] && exit 1; done; exit 0',
        "id": f'[ "$1" = "-u" ] && echo {uid} || exec /usr/bin/id "$@"',
        "apt-get": f'echo "$@" >> {calls}',
    }
    bin_dir.mkdir()
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return calls


def _make(target: str, bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "LDAP_URL"}
    environment |= {"PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_run_without_root_stops_at_once_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    _fake_machine(tmp_path / "bin", missing=["python3-venv", *SAMBA], uid=1000)

    began = time.monotonic()
    done = _make("run", tmp_path / "bin")

    assert done.returncode != 0
    assert "sudo apt-get install -y python3-venv samba-ad-dc samba winbind krb5-user ldap-utils" in done.stderr
    assert time.monotonic() - began < 10  # before any venv, pip or stack work
    assert "devstack.run" not in done.stdout + done.stderr


def test_make_test_without_chromium_stops_before_running_anything(tmp_path: Path) -> None:
    _fake_machine(tmp_path / "bin", missing=["chromium"], uid=1000)

    done = _make("test", tmp_path / "bin")

    assert done.returncode != 0
    assert "sudo apt-get install -y chromium" in done.stderr
    assert "ruff" not in done.stdout + done.stderr


def test_as_root_the_missing_packages_are_installed(tmp_path: Path) -> None:
    calls = _fake_machine(tmp_path / "bin", missing=["chromium", "winbind"], uid=0)

    done = _make("system-packages", tmp_path / "bin")

    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == ["update -q", "install -y -q winbind chromium"]


def test_nothing_is_installed_when_everything_is_there_and_a_real_directory_needs_no_samba(tmp_path: Path) -> None:
    calls = _fake_machine(tmp_path / "bin", missing=SAMBA, uid=1000)

    assert _make("run-packages", tmp_path / "bin", LDAP_URL="ldaps://dc.corp.test:636").returncode == 0
    _fake_machine(tmp_path / "bin2", missing=[], uid=0)
    assert _make("system-packages", tmp_path / "bin2").returncode == 0
    assert not calls.exists() and not (tmp_path / "bin2" / "apt-get.calls").exists()
