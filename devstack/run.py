"""`make run`: the whole service on this machine, in the foreground, on loopback only.

    python -m devstack.run [--api-port 3000] [--aws-port 4566] [--zoom-port 8090] [--lambda-port 3001]
                           [--state-dir .local] [--no-directory] [--keep-directory]
    python -m devstack.run invoke TokenKeeperFunction [--event FILE] [--state-dir .local]

It starts (or reuses) the demo directory, the Zoom emulator and a moto server, provisions what
template.yaml declares, serves the template's routes through the local API gateway, runs the stream and
queue pollers, writes `<state-dir>/stack.json` and prints the URLs and demo users. Logs go to
`<state-dir>/logs/` (stack.log, access.log, one <Function>.log per function), not to the terminal.
Ctrl-C (or SIGTERM) stops what this process started, and only that.

Every overridable setting (devstack.settings.OVERRIDABLE) set in the environment replaces the part it names.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from devstack.aws import (
    REGION,
    LocalResources,
    aws_client,
    provision,
    put_secure_parameter,
    stack_environment,
    start_moto_process,
)
from devstack.functions import FunctionLogs, FunctionRegistry, Invocation, RoutedOutput, discover_functions
from devstack.gateway import Gateway, RunningServer, serve_api, serve_invoke_api
from devstack.iam import AccessKey, create_function_principals, function_credentials, set_enforcement
from devstack.pollers import Pollers, RetryPolicy, build_pollers, scheduled_event
from devstack.settings import LOCAL_ZOOM, overrides_from
from devstack.template import ROOT, TEMPLATE_PATH, Resolver, load_template

if TYPE_CHECKING:
    from devstack.directory import DirectoryLease

log = logging.getLogger("devstack.run")

HOST = "127.0.0.1"


@dataclass
class StackOptions:
    host: str = HOST
    api_port: int = 3000
    aws_port: int = 4566
    zoom_port: int = 8090
    lambda_port: int = 3001
    state_dir: Path = ROOT / ".local"
    template_path: Path = TEMPLATE_PATH
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    directory: bool = True  # False: no demo directory (LDAP_* stay the template's defaults)
    keep_directory: bool = False  # leave a directory this stack started running after stop()
    stream_retry_delay_s: float = 0.2
    visibility_scale: float = 0.05  # a failed sweep message comes back after 5% of its VisibilityTimeout
    event_work_backoff_s: float = 1.0  # the first retry's delay of failed per-event work (AWS: 30 s)
    route_output: bool = False  # send handlers' stdout (powertools logs) to their log files
    enforce_iam: bool = True  # every function acts under its own template policy (devstack.iam)
    # Functions that run in a process of their own (devstack.container), with a launcher prefix each.
    own_process: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class StackHandle:
    """A running local stack (in this process)."""

    info: dict[str, Any]  # what stack.json holds
    resources: LocalResources
    registry: FunctionRegistry
    gateway: Gateway
    pollers: Pollers
    demo_users: list[dict[str, str]]
    _closer: contextlib.ExitStack

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    def invoke(self, logical: str, event: Any) -> Invocation:
        return self.registry.invoke(logical, event)

    def stop(self) -> None:
        self._closer.close()


def ensure_free(host: str, port: int, option: str) -> None:
    """Fail early when a live process listens on the port; the last run's TIME_WAIT sockets do not count.

    SO_REUSEADDR as the servers themselves bind: without it, a restart fails for a minute after a stop.
    """
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise OSError(f"{host}:{port} is in use (another `make run`?); choose another port with {option}") from None


def template_parameters(template: dict[str, Any], settings: Mapping[str, str]) -> dict[str, str]:
    """Template parameter values for the settings that Globals pass to the functions through a !Ref.

    E.g. LDAP_URL → LdapUrl: the functions then get the value the way a deploy's parameter overrides give it.
    """
    function_globals = (template.get("Globals") or {}).get("Function") or {}
    variables = (function_globals.get("Environment") or {}).get("Variables") or {}
    declared = template.get("Parameters") or {}
    found: dict[str, str] = {}
    for variable, value in settings.items():
        ref = variables.get(variable)
        name = ref.get("Ref") if isinstance(ref, dict) else None
        if isinstance(name, str) and name in declared:
            found[name] = value
    return found


def start_stack(options: StackOptions) -> StackHandle:
    """Start everything (the slow part, the directory, in parallel with the rest); stop() undoes it.

    It sets the functions' environment in os.environ until stop(), and moto's backends are per process:
    in a test process that holds other moto servers, run the stack as a process of its own instead
    (devstack.stack_process.start_stack_process).
    """
    for port, option in (
        (options.api_port, "--api-port"),
        (options.aws_port, "--aws-port"),
        (options.zoom_port, "--zoom-port"),
        (options.lambda_port, "--lambda-port"),
    ):
        ensure_free(options.host, port, option)
    state_dir = options.state_dir.resolve()
    logs_dir = state_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    overrides = overrides_from(options.environ)
    template = load_template(options.template_path)
    closer = contextlib.ExitStack()
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="directory") as pool:
            wanted = options.directory and "LDAP_URL" not in overrides
            directory = pool.submit(_hold_directory, options.keep_directory) if wanted else None
            try:
                return _start_rest(options, template, overrides, logs_dir, state_dir, directory, closer)
            finally:
                if directory is not None:
                    _own_directory(directory, closer)
    except BaseException:
        closer.close()
        raise


def _hold_directory(keep: bool) -> DirectoryLease:
    from devstack.directory import LeaseBook

    return LeaseBook().hold(stop_when_done=not keep)


def _own_directory(directory: Future[DirectoryLease], closer: contextlib.ExitStack) -> None:
    """Give the directory up on close: stopped if this stack started it and no one else (a test session) holds it."""
    if directory.exception() is None:
        closer.callback(directory.result().release)


def _start_rest(
    options: StackOptions,
    template: dict[str, Any],
    overrides: dict[str, str],
    logs_dir: Path,
    state_dir: Path,
    directory: Future[DirectoryLease] | None,
    closer: contextlib.ExitStack,
) -> StackHandle:
    host = options.host
    credentials = {k: overrides.get(k, v) for k, v in LOCAL_ZOOM.env().items()}
    settings: dict[str, str] = {"ZOOM_CLIENT_ID": credentials["ZOOM_CLIENT_ID"]}
    emulator_url = None
    if not ("ZOOM_OAUTH_BASE_URL" in overrides and "ZOOM_API_BASE_URL" in overrides):
        from devstack.zoom_emulator import EmulatorConfig, start_emulator

        emulator = start_emulator(
            EmulatorConfig(
                client_id=credentials["ZOOM_CLIENT_ID"],
                client_secret=credentials["ZOOM_CLIENT_SECRET"],
                webhook_secret=credentials["ZOOM_WEBHOOK_SECRET"],
            ),
            host=host,
            port=options.zoom_port,
        )
        closer.callback(emulator.stop)
        emulator_url = emulator.base_url
        settings |= {"ZOOM_OAUTH_BASE_URL": emulator.oauth_base_url, "ZOOM_API_BASE_URL": emulator.api_base_url}

    moto = start_moto_process(host, options.aws_port)
    closer.callback(moto.stop)
    _quiet_libraries()
    demo_users: list[dict[str, str]] = []
    if directory is not None:
        directory_info = directory.result().info
        settings |= directory_info.env()
        demo_users = [
            {
                "username": u.username,
                "password": u.password,
                "upn": u.upn,
                "display_name": u.display_name,
                "role": u.role,
            }
            for u in directory_info.users
        ]
    settings |= overrides
    resources = provision(moto.endpoint_url, template_parameters(template, settings), options.template_path)
    secret_names = resources.resolver.parameters
    put_secure_parameter(resources, secret_names["ZoomClientSecretParameterName"], credentials["ZOOM_CLIENT_SECRET"])
    put_secure_parameter(resources, secret_names["ZoomWebhookSecretParameterName"], credentials["ZOOM_WEBHOOK_SECRET"])

    keys = _enforce_function_policies(resources, closer) if options.enforce_iam else {}

    function_logs = FunctionLogs(logs_dir)
    closer.callback(function_logs.close)
    registry = FunctionRegistry(
        discover_functions(template, options.template_path.parent, resources.resolver),
        function_logs,
        own_process=options.own_process,
    )
    registry.function_keys = keys
    closer.callback(registry.stop_own_processes)
    if options.route_output:
        _route_output(function_logs, logs_dir, closer)
    invoke_api = serve_invoke_api(registry, host, options.lambda_port)
    closer.callback(invoke_api.stop)
    environment = stack_environment(resources)
    # The functions' own lambda clients (DlqReplay invokes CalendarStream) reach the local Invoke API.
    environment["AWS_ENDPOINT_URL_LAMBDA"] = invoke_api.url
    # Failed event work comes back after seconds locally, not after AWS's 30 s doubling to 15 minutes.
    environment["EVENT_WORK_BACKOFF_BASE_S"] = str(options.event_work_backoff_s)
    _apply_environment(environment, closer)

    gateway = Gateway(registry, resources.resolver, access_log=logs_dir / "access.log")
    closer.callback(gateway.close)
    api = serve_api(gateway, host, options.api_port)
    closer.callback(api.stop)
    pollers = build_pollers(
        registry,
        resources.resolver,
        moto.endpoint_url,
        retry=RetryPolicy(first_delay_s=options.stream_retry_delay_s),
        visibility_scale=options.visibility_scale,
        keys={f: (k.access_key_id, k.secret_access_key) for f, k in keys.items()},  # mappings act as their functions
    )
    pollers.start()
    closer.callback(pollers.stop)

    info = _stack_info(api, invoke_api, resources, settings, emulator_url, logs_dir, demo_users)
    _write_stack_json(state_dir / "stack.json", info, closer)
    return StackHandle(info, resources, registry, gateway, pollers, demo_users, closer)


def _stack_info(
    api: RunningServer,
    invoke_api: RunningServer,
    resources: LocalResources,
    settings: dict[str, str],
    emulator_url: str | None,
    logs_dir: Path,
    demo_users: list[dict[str, str]],
) -> dict[str, Any]:
    parameters = resources.resolver.parameters
    return {
        # The contract's keys (section 5) first.
        "api_url": api.url,
        "aws_endpoint_url": resources.endpoint_url,
        "region": REGION,
        "calendar_table": resources.tables["CalendarTable"],
        "zoom_oauth_base_url": settings.get("ZOOM_OAUTH_BASE_URL", parameters.get("ZoomOAuthBaseUrl")),
        "zoom_api_base_url": settings.get("ZOOM_API_BASE_URL", parameters.get("ZoomApiBaseUrl")),
        "ldap_url": settings.get("LDAP_URL", parameters.get("LdapUrl")),
        # Extras for tests and people.
        "lambda_endpoint_url": invoke_api.url,
        "zoom_emulator_url": emulator_url,
        "ldap_ca_file": settings.get("LDAP_CA_FILE", parameters.get("LdapCaFile")),
        "calendar_stream_dlq_url": resources.queues.get("CalendarStreamDLQ"),
        "tables": dict(resources.tables),
        "queues": dict(resources.queues),
        "feature_flag_parameter": parameters.get("FeatureFlagParameterName"),
        "logs_dir": str(logs_dir),
        "demo_users": demo_users,
        "pid": os.getpid(),
    }


def _write_stack_json(path: Path, info: dict[str, Any], closer: contextlib.ExitStack) -> None:
    # It holds the demo users' passwords: owner-only, written whole (readers poll for it).
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(info, indent=2) + "\n")
    partial.chmod(0o600)
    partial.replace(path)

    def remove() -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()

    closer.callback(remove)


def _enforce_function_policies(resources: LocalResources, closer: contextlib.ExitStack) -> dict[str, AccessKey]:
    """One IAM user per function from its template policy; moto checks every request from here on."""
    keys = create_function_principals(resources)
    closer.enter_context(function_credentials(keys))
    set_enforcement(resources.endpoint_url, True)
    closer.callback(set_enforcement, resources.endpoint_url, False)
    log.info("IAM enforced on the local AWS: each of %d functions acts under its template policy", len(keys))
    return keys


def _apply_environment(env: dict[str, str], closer: contextlib.ExitStack) -> None:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    closer.callback(restore)


def _route_output(logs: FunctionLogs, logs_dir: Path, closer: contextlib.ExitStack) -> None:
    stray: TextIO = (logs_dir / "stack.log").open("a", encoding="utf-8", buffering=1)
    saved = sys.stdout, sys.stderr
    sys.stdout = RoutedOutput(logs, stray)
    sys.stderr = RoutedOutput(logs, stray)

    def restore() -> None:
        sys.stdout, sys.stderr = saved
        stray.close()

    closer.callback(restore)


def _quiet_libraries() -> None:
    # The emulator's werkzeug server logs every request; moto quiets itself in its own process (prepare_moto).
    for name in ("werkzeug", "botocore.credentials"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ---------------------------------------------------------------- invoking a function of a running stack


def invoke_function(
    name: str, event: Any | None, state_dir: Path, template_path: Path = TEMPLATE_PATH
) -> tuple[Any, bool]:
    """Invoke a function of the stack running from state_dir (else of a fresh in-process one).

    Without an event, a function with a `Type: Schedule` event gets what EventBridge would send it
    (`make keeper`), any other `{}` (`make replay-dlq`). Returns (payload or Lambda error object, whether
    it is an error).
    """
    template = load_template(template_path)
    resolver = Resolver(template, region=REGION)
    specs = discover_functions(template, template_path.parent, resolver)
    logical = FunctionRegistry(specs).resolve_name(name)
    if logical is None:
        raise SystemExit(f"no function {name} in {template_path.name}; one of: {', '.join(sorted(specs))}")
    if event is None:
        # Like `aws lambda invoke` without a payload, unless EventBridge would be the caller.
        scheduled = specs[logical].events_of_type("Schedule")
        event = scheduled_event(FunctionRegistry(specs), logical, resolver) if scheduled else {}
    running = _running_stack(state_dir / "stack.json")
    if running is not None:
        client = aws_client("lambda", running["lambda_endpoint_url"])
        answer = client.invoke(FunctionName=logical, Payload=json.dumps(event).encode())
        return json.loads(answer["Payload"].read() or b"null"), "FunctionError" in answer
    print("no running stack (make run): invoking in a fresh, empty in-process stack", file=sys.stderr)
    with _temporary_stack(state_dir, template_path) as handle:
        invocation = handle.invoke(logical, event)
    if invocation.error is not None:
        return invocation.error, True
    return invocation.payload, False


def _running_stack(path: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError, PermissionError):
        return None
    return info


@contextlib.contextmanager
def _temporary_stack(state_dir: Path, template_path: Path) -> Iterator[StackHandle]:
    handle = start_stack(
        StackOptions(
            api_port=0,
            aws_port=0,
            zoom_port=0,
            lambda_port=0,
            directory=False,
            state_dir=state_dir / "invoke",
            template_path=template_path,
            route_output=True,
        )
    )
    try:
        yield handle
    finally:
        handle.stop()


# ---------------------------------------------------------------- the command line


def _configure_logging(logs_dir: Path) -> None:
    logs_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs_dir / "stack.log", encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("devstack").setLevel(logging.INFO)


def _banner(handle: StackHandle, seconds: float, state_dir: Path) -> str:
    info = handle.info
    lines = [
        f"Link ⇄ Zoom local stack is up ({seconds:.1f} s). Ctrl-C stops everything started here.",
        "",
        f"  API              {info['api_url']}   (health: {info['api_url']}/v1/health)",
        f"  My Account page  {info['api_url']}/account",
        f"  AWS (moto)       {info['aws_endpoint_url']}   region {info['region']}",
        f"  Lambda invoke    {info['lambda_endpoint_url']}   (make keeper)",
        f"  Zoom OAuth       {info['zoom_oauth_base_url']}",
        f"  Zoom API         {info['zoom_api_base_url']}",
        f"  Directory        {info['ldap_url']}",
    ]
    if handle.demo_users:
        lines += ["", "  Demo users (username / password):"]
        width = max(len(u["upn"]) for u in handle.demo_users)
        for user in handle.demo_users:
            lines.append(f"    {user['upn']:<{width}}  {user['password']}   {user['role']} ({user['display_name']})")
    lines += ["", f"  stack.json: {state_dir / 'stack.json'}    logs: {state_dir / 'logs'}/"]
    return "\n".join(lines)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir).resolve()
    _configure_logging(state_dir / "logs")
    terminal = sys.stdout
    signal.signal(signal.SIGTERM, _raise_interrupt)
    began = time.monotonic()
    handle = None
    try:
        handle = start_stack(
            StackOptions(
                api_port=args.api_port,
                aws_port=args.aws_port,
                zoom_port=args.zoom_port,
                lambda_port=args.lambda_port,
                state_dir=state_dir,
                directory=not args.no_directory,
                keep_directory=args.keep_directory,
                route_output=True,
                own_process={name: tuple(shlex.split(args.own_process_launcher)) for name in args.own_process},
            )
        )
        log.info("stack up in %.2f s", time.monotonic() - began)
        print(_banner(handle, time.monotonic() - began, state_dir), file=terminal, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if handle is not None:
            handle.stop()
            print("stopped", file=terminal, flush=True)
    return 0


def _invoke(args: argparse.Namespace) -> int:
    event = None
    if args.event:
        event = json.loads(sys.stdin.read() if args.event == "-" else Path(args.event).read_text())
    payload, failed = invoke_function(args.function, event, Path(args.state_dir).resolve())
    print(json.dumps(payload, indent=2))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api-port", type=int, default=3000)
    parser.add_argument("--aws-port", type=int, default=4566)
    parser.add_argument("--zoom-port", type=int, default=8090)
    parser.add_argument("--lambda-port", type=int, default=3001)
    parser.add_argument("--state-dir", default=str(ROOT / ".local"))
    parser.add_argument("--no-directory", action="store_true", help="do not start the demo directory")
    parser.add_argument(
        "--keep-directory", action="store_true", help="leave a demo directory started here running when the stack stops"
    )
    parser.add_argument(
        "--own-process",
        action="append",
        default=[],
        metavar="FUNCTION",
        help="run this function (logical id) in a process of its own, as a Lambda sandbox (repeatable)",
    )
    parser.add_argument(
        "--own-process-launcher",
        default="",
        help="command prefix for those processes, e.g. 'taskset -c 0' (default: none)",
    )
    commands = parser.add_subparsers(dest="command")
    invoke = commands.add_parser("invoke", help="invoke a function of the running stack (make keeper)")
    invoke.add_argument("function", help="logical id (TokenKeeperFunction), function name or ARN")
    invoke.add_argument("--event", help="JSON event file, or - for stdin (default: a scheduled event, or {})")
    invoke.add_argument("--state-dir", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        return _invoke(args) if args.command == "invoke" else _run(args)
    except SystemExit:
        raise
    except Exception as exc:
        log.exception("the local stack failed")
        print(f"error: {exc} (details in the stack log)", file=sys.__stderr__)
        return 1


if __name__ == "__main__":
    sys.exit(main())
