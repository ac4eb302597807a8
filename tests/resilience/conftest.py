"""The resilience suite: the service under faults, load, fuzzing and attack.

Two ways in:
- over HTTP, through a stack started like `make run` (`python -m devstack.run` in a child process) whose Zoom is
  an emulator in this process (`stack_zoom`), so tests can inject faults and see every token it issues;
- in process, through the handlers with the events AWS builds, against the session's moto server
  (`local_aws`) and a second emulator (`zoom`), where Zoom's timeouts are shortened so that a "timeout" fault
  costs a second, not production's eight.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.aws import LocalResources, stack_environment
from devstack.stack_process import START_TIMEOUT_S, StackProcess, StackStartError, child_environment, stack_process
from devstack.zoom_emulator import EmulatorConfig, EmulatorHandle, start_emulator
from tests.integration.connection.zoom_flow import Person, connect, new_person
from tests.resilience.harness import ApiUser, SecretRegistry, record_issued_secrets, sign_in
from tests.support.functions import load_function

# The environment as the run began: in-process fixtures patch os.environ (LDAP_URL, ZOOM_* ...) and the stack,
# started whenever a test first needs it, must not take those as contract section 4 overrides.
CALLER_ENVIRONMENT = dict(os.environ)
# Far above what the suite makes: the daily limit has its own tests elsewhere.
NO_DAILY_LIMIT = 1_000_000
# In process, a Zoom "timeout" costs this much (production: config.ZOOM_READ_TIMEOUT_S = 8 s).
TEST_READ_TIMEOUT_S = 2.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            # Whichever test comes first also waits for the stack to start.
            item.add_marker(pytest.mark.timeout(START_TIMEOUT_S + 120))


# ---------------------------------------------------------------- the stack, over HTTP


@pytest.fixture(scope="session")
def secrets() -> SecretRegistry:
    """Every Zoom token and code, session token and OAuth state handed out while the suite runs."""
    return SecretRegistry()


def _recording_emulator(secrets: SecretRegistry) -> Iterator[EmulatorHandle]:
    """An emulator without Zoom's daily limit whose every issued token and code `secrets` knows."""
    handle = start_emulator(EmulatorConfig(daily_meeting_limit=NO_DAILY_LIMIT), port=0)
    record_issued_secrets(handle, secrets)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def stack_zoom(secrets: SecretRegistry) -> Iterator[EmulatorHandle]:
    yield from _recording_emulator(secrets)


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, stack_zoom: EmulatorHandle, demo_directory: object
) -> Iterator[StackProcess]:
    """The stack `make run` starts, in a child process, with this process's emulator as its Zoom; it reuses the
    directory the session holds (demo_directory), which the session stops at its end if it started it."""
    env = child_environment(
        CALLER_ENVIRONMENT,
        ZOOM_OAUTH_BASE_URL=stack_zoom.oauth_base_url,
        ZOOM_API_BASE_URL=stack_zoom.api_base_url,
        ZOOM_CLIENT_ID=stack_zoom.config.client_id,
        ZOOM_CLIENT_SECRET=stack_zoom.config.client_secret,
        ZOOM_WEBHOOK_SECRET=stack_zoom.config.webhook_secret,
    )
    try:
        with stack_process(tmp_path_factory.mktemp("resilience-stack"), env=env) as running:
            yield running
    except StackStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def admin(stack: StackProcess, secrets: SecretRegistry) -> ApiUser:
    return sign_in(stack.api_url, stack.user("admin"), secrets)


@pytest.fixture(scope="session")
def bob(stack: StackProcess, secrets: SecretRegistry) -> ApiUser:
    return sign_in(stack.api_url, stack.user("user"), secrets)


@pytest.fixture
def zoom_on(admin: ApiUser, stack_zoom: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The switch on, no faults queued, an empty call log; faults cleared again afterwards."""
    assert admin.call("PUT", "/v1/admin/features/zoom", {"enabled": True}).json() == {"enabled": True}
    stack_zoom.clear_faults()
    stack_zoom.set_latency(0)
    stack_zoom.clear_calls()
    yield stack_zoom
    stack_zoom.clear_faults()
    stack_zoom.set_latency(0)


@pytest.fixture
def bob_connected(zoom_on: EmulatorHandle, bob: ApiUser, secrets: SecretRegistry) -> ApiUser:
    """Bob, connected to Zoom (again, if an earlier test disconnected him)."""
    if not bob.connected():
        bob.connect_zoom(secrets)
    zoom_on.clear_calls()
    return bob


# ---------------------------------------------------------------- in process, below the gateway


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    names = ("meetings", "calendar_stream", "zoom_oauth", "zoom_webhook", "account", "features", "token_keeper")
    return {name: load_function(name) for name in names}


@pytest.fixture(scope="session")
def inproc_emulator(secrets: SecretRegistry) -> Iterator[EmulatorHandle]:
    yield from _recording_emulator(secrets)


@pytest.fixture(scope="module")
def inproc(local_aws: LocalResources, inproc_emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """For a whole test module: the functions' environment pointed at the session's moto server and the
    in-process emulator, the switch on, Zoom's read timeout shortened. Set up once per module (a fresh boto3
    client costs tens of milliseconds), undone at its end."""
    from link_zoom import config
    from link_zoom.adapters import crypto, flag, zoom_meetings, zoom_oauth
    from link_zoom.observability import metrics
    from tests.conftest import reset_process_caches

    env = stack_environment(local_aws)
    env.update(
        {
            "ZOOM_CLIENT_ID": inproc_emulator.config.client_id,
            "ZOOM_OAUTH_BASE_URL": inproc_emulator.oauth_base_url,
            "ZOOM_API_BASE_URL": inproc_emulator.api_base_url,
            "POWERTOOLS_METRICS_NAMESPACE": "LinkZoomTest",
        }
    )
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setattr(metrics, "namespace", "LinkZoomTest")
        patch.setattr(config, "ZOOM_READ_TIMEOUT_S", TEST_READ_TIMEOUT_S)
        patch.setattr(zoom_oauth, "TIMEOUT", (config.ZOOM_CONNECT_TIMEOUT_S, TEST_READ_TIMEOUT_S))
        patch.setattr(zoom_meetings, "RATE_LIMIT_BACKOFF_S", 0.2)
        inproc_emulator.reset()
        reset_process_caches()
        crypto.forget_cached_keys()
        flag.set_zoom_enabled(True)
        yield inproc_emulator
        flag.set_zoom_enabled(False)
        reset_process_caches()
        crypto.forget_cached_keys()


@pytest.fixture
def zoom(inproc: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """The in-process emulator with no faults, no latency and an empty call log; the switch on."""
    from link_zoom.adapters import flag

    inproc.clear_faults()
    inproc.set_latency(0)
    inproc.clear_calls()
    if not flag.zoom_enabled():
        flag.set_zoom_enabled(True)
    yield inproc
    inproc.clear_faults()
    inproc.set_latency(0)


@pytest.fixture(scope="module")
def someone(inproc: EmulatorHandle, functions: dict[str, Any]) -> Person:
    """One user for a module's tests (connecting costs a consent flow)."""
    return new_person("res")


@pytest.fixture
def person(zoom: EmulatorHandle, functions: dict[str, Any], someone: Person) -> Person:
    """A user connected to Zoom (again, if an earlier test lost the connection), with no meetings at Zoom and
    an empty call log."""
    from link_zoom import composition

    connected = composition.connection().connection_status(someone.user_id).connected
    if not connected or not zoom.state.user_by_email(someone.email):
        connect(functions["zoom_oauth"], someone)
    for meeting in zoom.state.meetings():
        if meeting["host_email"] == someone.email.lower():
            zoom.state.remove_meeting(meeting["id"])
    zoom.clear_calls()
    return someone
