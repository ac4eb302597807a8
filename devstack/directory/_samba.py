"""Provision, start, reuse and stop the one Samba AD DC that serves the local stack.

Only one Samba can listen on 389/636 on a machine, so every caller (make run, tests, people) goes
through ensure_directory(), which reuses a running instance started from the same state dir and
only does the slow work (install, provision, start) under a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._model import DemoUser, DirectoryInfo, Role
from ._tls import TlsFiles, ensure_tls

# The repo's .local/ (gitignored); anchored to the checkout, not the cwd, so that callers running
# from another directory still share the one instance instead of provisioning a second one.
DEFAULT_STATE_DIR = Path(__file__).resolve().parents[2] / ".local" / "samba"

HOST = "127.0.0.1"
LDAP_PORT = 389
LDAPS_PORT = 636
REALM = "CORP.EXAMPLE"
DNS_DOMAIN = "corp.example"
NETBIOS_DOMAIN = "CORP"
BASE_DN = "DC=corp,DC=example"
ADMIN_GROUP = "Link Admins"
STAFF_GROUP = "IT Staff"
ADMIN_GROUP_DN = f"CN={ADMIN_GROUP},CN=Users,{BASE_DN}"

PACKAGES = ("samba-ad-dc", "samba", "winbind", "krb5-user", "ldap-utils")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
LOG_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class _DemoSpec:
    username: str
    given_name: str
    surname: str
    role: Role


DEMO_USERS = (
    _DemoSpec("ada", "Ada", "Admin", "admin"),
    _DemoSpec("bob", "Bob", "User", "user"),
    _DemoSpec("dora", "Dora", "Disabled", "disabled"),
)


class DirectoryError(RuntimeError):
    """The demo directory could not be installed, provisioned or started."""


@dataclass(frozen=True)
class _Layout:
    root: Path

    @property
    def dc(self) -> Path:  # samba-tool --targetdir: etc/, private/, state/, run/, cache/
        return self.root / "dc"

    @property
    def conf(self) -> Path:
        return self.dc / "etc" / "smb.conf"

    @property
    def sam(self) -> Path:
        return self.dc / "private" / "sam.ldb"

    @property
    def provisioned(self) -> Path:  # written last: without it a half-done provision is redone
        return self.dc / ".provisioned"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def pid(self) -> Path:
        return self.root / "samba.pid"

    @property
    def log(self) -> Path:
        return self.root / "samba.log"

    @property
    def setup_log(self) -> Path:
        return self.root / "setup.log"

    @property
    def info(self) -> Path:
        return self.root / "directory.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


# Popen objects of the sambas this process started, so stop_directory() can reap them (no zombie).
_STARTED: dict[Path, subprocess.Popen[bytes]] = {}


# ---------------------------------------------------------------- passwords


# No quote, backslash, $ or space: the passwords travel through samba-tool's argv and people's shells.
_SYMBOLS = "!#%+-.=@_"


def _strong_password(avoid: Sequence[str], length: int = 20) -> str:
    """A password AD's complexity check accepts.

    AD wants three of four character classes (we give all four) and rejects passwords that contain the
    account name or any 3+ character token of the display name, case-insensitively.
    """
    alphabet = string.ascii_letters + string.digits + _SYMBOLS
    banned = [t.lower() for t in avoid if len(t) >= 3]
    while True:
        # Starts with a letter: samba-tool would take a leading '-' for an option.
        pw = secrets.choice(string.ascii_letters) + "".join(secrets.choice(alphabet) for _ in range(length - 1))
        classes = (
            any(c.islower() for c in pw),
            any(c.isupper() for c in pw),
            any(c.isdigit() for c in pw),
            any(c in _SYMBOLS for c in pw),
        )
        if all(classes) and not any(t in pw.lower() for t in banned):
            return pw


def _read_secrets(layout: _Layout) -> dict[str, Any] | None:
    data = _read_json(layout.secrets)
    with contextlib.suppress(TypeError, KeyError):
        if isinstance(data["administrator"], str) and all(
            isinstance(data["users"][u.username], str) for u in DEMO_USERS
        ):
            return dict(data)
    return None


def _load_or_create_secrets(layout: _Layout) -> tuple[dict[str, Any], bool]:
    """Passwords are made once and kept, so they stay the same across restarts and re-provisions.

    Returns (secrets, whether they were just made).
    """
    data = _read_secrets(layout)
    if data is not None:
        return data, False
    data = {
        "administrator": _strong_password(["Administrator", NETBIOS_DOMAIN]),
        "users": {
            u.username: _strong_password([u.username, u.given_name, u.surname, NETBIOS_DOMAIN]) for u in DEMO_USERS
        },
    }
    _write_json(layout.secrets, data, private=True)
    return data, True


# ---------------------------------------------------------------- small file helpers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two test sessions (or make run and a test) may call ensure_directory() at once: only one provisions.
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build_info(layout: _Layout, secret: dict[str, Any]) -> DirectoryInfo:
    return DirectoryInfo(
        ldap_url=f"ldaps://{HOST}:{LDAPS_PORT}",
        base_dn=BASE_DN,
        admin_group_dn=ADMIN_GROUP_DN,
        ca_file=str(layout.tls_dir / "ca.pem"),
        realm=REALM,
        netbios_domain=NETBIOS_DOMAIN,
        users=[
            DemoUser(
                username=u.username,
                password=secret["users"][u.username],
                upn=f"{u.username}@{DNS_DOMAIN}",
                display_name=f"{u.given_name} {u.surname}",
                role=u.role,
            )
            for u in DEMO_USERS
        ],
    )


def _write_info(layout: _Layout, info: DirectoryInfo) -> None:
    if _read_json(layout.info) != info.to_dict():
        _write_json(layout.info, info.to_dict(), private=True)


# ---------------------------------------------------------------- processes


def _clean_env() -> dict[str, str]:
    # samba-tool runs on the system python3: keep our venv's and pytest's Python settings away from it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    env["LC_ALL"] = "C.UTF-8"
    return env


def _which(name: str) -> str | None:
    return shutil.which(name, path=_clean_env()["PATH"])


def _is_our_samba(pid: int, layout: _Layout) -> bool:
    """Whether pid is a live samba process serving this state dir.

    Samba overwrites its argv with a title ("samba: root process"), so its command line no longer names
    our smb.conf. What still names this state dir: its open files (sam.ldb under dc/) and its working
    directory (we start it in the state dir).
    """
    proc = Path(f"/proc/{pid}")
    try:
        exe = os.readlink(proc / "exe")  # fails for zombies and for processes that are gone
    except OSError:
        return False
    if os.path.basename(exe.removesuffix(" (deleted)")) != "samba":
        return False
    with contextlib.suppress(OSError):
        if os.readlink(proc / "cwd") == str(layout.root):
            return True
    prefix = str(layout.dc) + os.sep
    try:
        fds = list((proc / "fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith(prefix):
                return True
    return False


def _our_processes(layout: _Layout) -> set[int]:
    pids = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return {pid for pid in pids if _is_our_samba(pid, layout)}


def _is_root_process(pid: int, layout: _Layout) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # Once running, samba titles its parent "samba: root process" (workers: "samba: task[ldap] ...");
    # in the first moments after exec its argv still names our smb.conf.
    return argv[0].startswith(b"samba: root process") or str(layout.conf).encode() in argv


def _find_our_sambas(layout: _Layout) -> list[int]:
    """Root processes of sambas serving this state dir (normally none or one)."""
    return sorted(p for p in _our_processes(layout) if _is_root_process(p, layout))


def _read_pid(layout: _Layout) -> int | None:
    try:
        return int(layout.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    popen = next((p for p in _STARTED.values() if p.pid == pid), None)
    if popen is not None:
        return popen.poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _terminate(pid: int, layout: _Layout) -> None:
    """Stop one samba of ours: SIGTERM (samba then stops its process group), SIGKILL if it hangs."""
    if not _is_our_samba(pid, layout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid) and _is_our_samba(pid, layout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _kill_leftovers(layout)
    for key, popen in list(_STARTED.items()):
        if popen.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=1)
            del _STARTED[key]


def _kill_leftovers(layout: _Layout) -> None:
    """Workers still exiting, or orphaned by a killed root, would keep the ports.

    They are ours (they serve our dc/): give them a moment, then kill what is left.
    """
    deadline = time.monotonic() + 3.0
    while leftovers := _our_processes(layout):
        if time.monotonic() > deadline:
            for child in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            if time.monotonic() > deadline + 5.0:
                raise DirectoryError(f"samba processes {leftovers} of {layout.root} do not stop")
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _redact(args: Sequence[str], secret: dict[str, Any] | None) -> list[str]:
    hidden = set()
    if secret:
        hidden = {secret["administrator"], *secret["users"].values()}
    out = []
    for a in args:
        for h in hidden:
            a = a.replace(h, "***")
        out.append(a)
    return out


def _run(args: Sequence[str], layout: _Layout, secret: dict[str, Any] | None = None, timeout: float = 300) -> None:
    """Run a setup command, its output appended to setup.log; fail with a readable, password-free message."""
    shown = " ".join(_redact(args, secret))
    with open(layout.setup_log, "ab") as log:
        log.write(f"\n$ {shown}\n".encode())
        log.flush()
        result = subprocess.run(
            list(args), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=_clean_env(), timeout=timeout, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise DirectoryError(f"`{shown}` failed with exit code {result.returncode}; see {layout.setup_log}")


# ---------------------------------------------------------------- LDAPS probe


def _ldaps_bind_ok(ca_file: str, user: str, password: str, timeout: int = 2) -> bool:
    """One validated LDAPS bind: the readiness check every caller relies on."""
    import ldap3  # imported here: the CLI's `stop` and plain imports of this package don't need it
    from ldap3.core.exceptions import LDAPException

    if not os.path.exists(ca_file):
        return False
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
    # receive_timeout must be an int: ldap3 packs it into SO_RCVTIMEO with struct and a float raises.
    server = ldap3.Server(HOST, port=LDAPS_PORT, use_ssl=True, tls=tls, connect_timeout=timeout)
    conn = ldap3.Connection(server, user=user, password=password, receive_timeout=timeout)
    try:
        return bool(conn.bind())
    except (LDAPException, OSError):
        return False
    finally:
        with contextlib.suppress(Exception):
            conn.unbind()


def _admin_bind_ok(layout: _Layout, secret: dict[str, Any], timeout: int = 2) -> bool:
    return _ldaps_bind_ok(
        str(layout.tls_dir / "ca.pem"), f"{NETBIOS_DOMAIN}\\Administrator", secret["administrator"], timeout
    )


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(layout: _Layout, secret: dict[str, Any], timeout: float, proc: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DirectoryError(
                f"samba exited with code {proc.returncode} while starting; last lines of {layout.log}:\n"
                + _log_tail(layout.log)
            )
        if _port_open(LDAPS_PORT) and _admin_bind_ok(layout, secret):
            return True
        time.sleep(0.2)
    return False


# ---------------------------------------------------------------- install, provision, configure, start


def _ensure_packages(layout: _Layout, install: bool) -> tuple[str, str]:
    samba, tool = _which("samba"), _which("samba-tool")
    if samba and tool:
        return samba, tool
    cmd = ["apt-get", "install", "-y", *PACKAGES]
    if not install:
        raise DirectoryError(f"Samba is not installed; run: {' '.join(cmd)}")
    if os.geteuid() != 0:
        raise DirectoryError(f"Samba is not installed and this is not root; run as root: {' '.join(cmd)}")
    env = {**_clean_env(), "DEBIAN_FRONTEND": "noninteractive"}
    with open(layout.setup_log, "ab") as log:

        def apt(*apt_args: str) -> bool:
            done = subprocess.run(apt_args, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
            return done.returncode == 0

        ok = apt(*cmd)
        if not ok:  # a fresh machine or CI image may have no package lists yet
            ok = apt("apt-get", "update") and apt(*cmd)
    samba, tool = _which("samba"), _which("samba-tool")
    if not (ok and samba and tool):
        raise DirectoryError(f"installing Samba failed; see {layout.setup_log}")
    return samba, tool


def _provision(layout: _Layout, tool: str, secret: dict[str, Any]) -> None:
    if layout.dc.exists():
        shutil.rmtree(layout.dc)
    layout.dc.mkdir(parents=True)
    run_dir = layout.dc / "run"
    # An empty base config: otherwise samba-tool copies /etc/samba/smb.conf's settings (log file in
    # /var/log/samba, printers, ...) into ours and our instance would share paths with a system Samba.
    base_conf = layout.root / "provision-base.conf"
    base_conf.write_text("")
    options = {
        "interfaces": "lo",
        "bind interfaces only": "yes",
        "server services": "ldap",  # no smb, kdc, dns, rpc: fewer ports and nothing to clash with
        "pid directory": str(run_dir),
        "ncalrpc dir": str(run_dir / "ncalrpc"),
        "winbindd socket directory": str(run_dir / "winbindd"),
        "ntp signd socket directory": str(run_dir / "ntp_signd"),
        "log file": str(layout.root / "samba-debug.log"),
        "prefork children": "2",
    }
    _run(
        [
            tool, "domain", "provision", "-s", str(base_conf),
            f"--realm={REALM}", f"--domain={NETBIOS_DOMAIN}", "--server-role=dc", "--dns-backend=NONE",
            "--use-rfc2307", "--host-name=dc1", f"--adminpass={secret['administrator']}",
            f"--targetdir={layout.dc}",
            *(f"--option={k}={v}" for k, v in options.items()),
        ],
        layout, secret,
    )  # fmt: skip
    db = ["-s", str(layout.conf), "-H", str(layout.sam)]
    # Demo passwords must not expire (default 42 days) on a long-lived state dir; complexity stays on.
    _run([tool, "domain", "passwordsettings", "set", "--max-pwd-age=0", "--min-pwd-age=0", *db], layout, secret)
    for u in DEMO_USERS:
        _run(
            [
                tool, "user", "create", u.username, secret["users"][u.username],
                f"--given-name={u.given_name}", f"--surname={u.surname}",  # displayName = "Given Surname"
                "--use-username-as-cn", f"--mail-address={u.username}@{DNS_DOMAIN}", *db,
            ],
            layout, secret,
        )  # fmt: skip
        _run([tool, "user", "setexpiry", u.username, "--noexpiry", *db], layout, secret)
        if u.role == "disabled":
            _run([tool, "user", "disable", u.username, *db], layout, secret)
    # Admin rights only through nesting (ada ∈ IT Staff ∈ Link Admins): the service must resolve the chain.
    _run(
        [tool, "group", "add", ADMIN_GROUP, "--description=Admins of the Link Zoom service", *db],
        layout,
        secret,
    )
    _run([tool, "group", "add", STAFF_GROUP, "--description=IT staff", *db], layout, secret)
    admins = [u.username for u in DEMO_USERS if u.role == "admin"]
    _run([tool, "group", "addmembers", STAFF_GROUP, ",".join(admins), *db], layout, secret)
    _run([tool, "group", "addmembers", ADMIN_GROUP, STAFF_GROUP, *db], layout, secret)
    layout.provisioned.write_text(f"{time.time()}\n")


_TLS_KEYS = ("tls enabled", "tls keyfile", "tls certfile", "tls cafile")


def _configure_tls(layout: _Layout, tls: TlsFiles) -> bool:
    """Point smb.conf's [global] at our certificate; return whether the file changed."""
    text = layout.conf.read_text()
    kept = [line for line in text.splitlines() if line.strip().split("=")[0].strip().lower() not in _TLS_KEYS]
    wanted = {
        "tls enabled": "yes",
        "tls keyfile": str(tls.server_key),
        "tls certfile": str(tls.server_cert),
        "tls cafile": str(tls.ca_cert),
    }
    at = next(i for i, line in enumerate(kept) if line.strip().lower() == "[global]") + 1
    kept[at:at] = [f"\t{k} = {v}" for k, v in wanted.items()]
    new = "\n".join(kept) + "\n"
    if new == text:
        return False
    layout.conf.write_text(new)
    return True


def _rotate_log(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_MAX_BYTES:
            os.replace(path, path.with_suffix(path.suffix + ".1"))


def _start(layout: _Layout, samba: str) -> subprocess.Popen[bytes]:
    _rotate_log(layout.log)
    with open(layout.log, "ab") as log:
        log.write(f"\n==== starting samba at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        # -F keeps the root process as our child's pid (no daemon fork) but, unlike -i, does not quit
        # when stdin is closed; its own session keeps it out of our terminal's signals, so it outlives us.
        proc = subprocess.Popen(
            [samba, "-s", str(layout.conf), "-F", "--debug-stdout"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=layout.root, env=_clean_env(), start_new_session=True, close_fds=True,
        )  # fmt: skip
    _STARTED[layout.root] = proc
    layout.pid.write_text(f"{proc.pid}\n")
    return proc


def _other_samba_dirs() -> list[str]:
    """Working directories of other sambas' root processes: ours start in their state dir."""
    dirs = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"samba: root process"):
                dirs.append(os.readlink(proc / "cwd"))
    return dirs


def _check_ports_free() -> None:
    if not (_port_open(LDAPS_PORT) or _port_open(LDAP_PORT)):
        return
    others = ", ".join(_other_samba_dirs()) or "unknown"
    raise DirectoryError(
        f"something else already listens on {HOST}:{LDAPS_PORT} or {LDAP_PORT} (only one Samba fits on a "
        f"machine; samba root processes run in: {others}). If it is a demo directory from another state dir, "
        "stop it with `python -m devstack.directory stop --state-dir <that dir>`, or use that one."
    )


# ---------------------------------------------------------------- public API


def _reuse(layout: _Layout) -> DirectoryInfo | None:
    """The fast path: our samba is alive (pid file) and answers a validated LDAPS bind."""
    secret = _read_secrets(layout)
    pid = _read_pid(layout)
    if not secret or pid is None or not layout.provisioned.exists():
        return None
    if not _is_our_samba(pid, layout) or not _admin_bind_ok(layout, secret):
        return None
    info = _build_info(layout, secret)
    _write_info(layout, info)
    return info


def start_or_reuse(state_dir: Path = DEFAULT_STATE_DIR, install: bool = True) -> tuple[DirectoryInfo, bool]:
    """Like ensure_directory(), and also tell whether this call started samba (so the caller may stop it)."""
    layout = _Layout(Path(state_dir).expanduser().resolve())
    info = _reuse(layout)
    if info is not None:
        return info, False
    layout.root.mkdir(parents=True, exist_ok=True)
    with _locked(layout.lock):
        info = _reuse(layout)  # someone else may have started it while we waited for the lock
        if info is not None:
            return info, False
        return _set_up_and_start(layout, install)


def _set_up_and_start(layout: _Layout, install: bool) -> tuple[DirectoryInfo, bool]:
    """Under the lock: install and provision as needed, then adopt a samba of ours that still runs, or start one."""
    samba, tool = _ensure_packages(layout, install)
    secret, new_secrets = _load_or_create_secrets(layout)
    if new_secrets:  # a database made with other (lost) passwords is of no use: provision afresh
        layout.provisioned.unlink(missing_ok=True)
    running = _find_our_sambas(layout)
    if not running and not _our_processes(layout):
        _check_ports_free()  # fail before a provision we could not serve anyway
    if not layout.provisioned.exists():
        for pid in running:
            _terminate(pid, layout)
        running = []
        _provision(layout, tool, secret)
    tls, tls_changed = ensure_tls(layout.tls_dir)
    conf_changed = _configure_tls(layout, tls)
    info = _build_info(layout, secret)
    # A samba of ours whose pid file is stale or missing (say, a previous run was killed): give it a
    # moment in case it is still starting, then adopt it, unless its TLS settings just changed.
    if running and not (tls_changed or conf_changed) and _wait_ready(layout, secret, 10.0, None):
        layout.pid.write_text(f"{running[0]}\n")
        _write_info(layout, info)
        return info, False
    for pid in running:
        _terminate(pid, layout)
    _kill_leftovers(layout)
    _check_ports_free()
    _start_and_wait(layout, samba, secret)
    _write_info(layout, info)
    return info, True


def _start_and_wait(layout: _Layout, samba: str, secret: dict[str, Any]) -> None:
    proc = _start(layout, samba)
    try:
        ready = _wait_ready(layout, secret, START_TIMEOUT, proc)
    except BaseException:  # including Ctrl-C: don't leave a half-started samba holding the ports
        _terminate(proc.pid, layout)
        raise
    if not ready:
        _terminate(proc.pid, layout)
        raise DirectoryError(
            f"samba did not answer LDAPS on {HOST}:{LDAPS_PORT} within {START_TIMEOUT:.0f} s; "
            f"last lines of {layout.log}:\n{_log_tail(layout.log)}"
        )


def ensure_directory(state_dir: Path = DEFAULT_STATE_DIR, install: bool = True) -> DirectoryInfo:
    """Make sure the demo directory runs (install, provision, start as needed) and describe it.

    Idempotent; when it already runs this takes one LDAPS bind (well under a second).
    """
    return start_or_reuse(state_dir, install)[0]


def stop_directory(state_dir: Path = DEFAULT_STATE_DIR) -> bool:
    """Stop the samba serving this state dir (only ever that one); return whether one was running."""
    layout = _Layout(Path(state_dir).expanduser().resolve())
    if not layout.root.exists():
        return False
    with _locked(layout.lock):
        pids = set(_find_our_sambas(layout))
        pid = _read_pid(layout)
        if pid is not None and _is_our_samba(pid, layout):
            pids.add(pid)
        for p in sorted(pids):
            _terminate(p, layout)
        _kill_leftovers(layout)
        with contextlib.suppress(FileNotFoundError):
            layout.pid.unlink()
        return bool(pids)
