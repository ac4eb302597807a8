"""Who is using the shared demo directory, so that whoever started it stops it once nobody needs it any more.

A holder (a test session, `make run`) takes a lease file `leases/<pid>-<start time>-<random>` for as long as it uses the
directory. A holder that started the directory asks, when it leaves, for it to be stopped (`stop-requested`,
naming that samba's pid); whoever leaves last among the lease holders then stops it. A directory that no lease
holder started (a person's, or one left by an older checkout) is never stopped here.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ._model import DirectoryInfo
from ._samba import DEFAULT_STATE_DIR, _Layout, _locked, _read_pid, start_or_reuse, stop_directory

StartFn = Callable[[Path, bool], tuple[DirectoryInfo, bool]]
StopFn = Callable[[Path], bool]


def _process_start(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): with the pid, it names one process even after pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # field 22 of stat; fields here start at field 3


@dataclass
class DirectoryLease:
    """The directory while this process uses it; release() when done (a `with hold_directory()` does it)."""

    info: DirectoryInfo
    started: bool  # this holder started samba (rather than reusing a running one)
    _book: LeaseBook
    _path: Path
    _stop_when_done: bool

    def release(self) -> bool:
        """Give the directory up; True when this stopped it (started by a holder, and nobody else holds it)."""
        return self._book.release(self)


class LeaseBook:
    """The lease files of one state dir; `start`/`stop`/`instance` default to the real samba's."""

    def __init__(
        self,
        state_dir: Path = DEFAULT_STATE_DIR,
        *,
        start: StartFn = start_or_reuse,
        stop: StopFn = stop_directory,
        instance: Callable[[], int | None] | None = None,
    ) -> None:
        self.root = Path(state_dir).expanduser().resolve()
        self._start, self._stop = start, stop
        self._instance = instance or (lambda: _read_pid(_Layout(self.root)))

    @property
    def leases(self) -> Path:
        return self.root / "leases"

    @property
    def stop_request(self) -> Path:
        return self.root / "stop-requested"

    def hold(self, *, install: bool = True, stop_when_done: bool = True) -> DirectoryLease:
        """Start the directory or reuse the running one, and hold it until release()."""
        self.leases.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / "leases.lock"):
            info, started = self._start(self.root, install)
            path = self.leases / f"{os.getpid()}-{_process_start(os.getpid())}-{uuid.uuid4().hex[:8]}"
            path.touch()
        return DirectoryLease(info, started, self, path, stop_when_done and started)

    def release(self, lease: DirectoryLease) -> bool:
        with _locked(self.root / "leases.lock"):
            lease._path.unlink(missing_ok=True)
            if lease._stop_when_done:
                self.stop_request.write_text(f"{self._instance()}\n")
            if not self._stop_requested() or self.holders():
                return False  # someone else still uses it: the last of them stops it
            self.stop_request.unlink(missing_ok=True)
            return self._stop(self.root)

    def holders(self) -> list[Path]:
        """Leases of processes still alive (those of processes that died are removed)."""
        alive = []
        for path in self.leases.glob("*-*-*") if self.leases.exists() else []:
            pid, start, _ = path.name.split("-", 2)
            if pid.isdigit() and _process_start(int(pid)) == start:
                alive.append(path)
            else:
                path.unlink(missing_ok=True)
        return alive

    def _stop_requested(self) -> bool:
        with contextlib.suppress(OSError, ValueError):
            return self.stop_request.read_text().strip() == str(self._instance())
        return False


@contextlib.contextmanager
def hold_directory(
    state_dir: Path = DEFAULT_STATE_DIR, *, install: bool = True, stop_when_done: bool = True
) -> Iterator[DirectoryLease]:
    """The demo directory for the `with` block; stopped after it if this started it and nobody else holds it."""
    lease = LeaseBook(state_dir).hold(install=install, stop_when_done=stop_when_done)
    try:
        yield lease
    finally:
        lease.release()
