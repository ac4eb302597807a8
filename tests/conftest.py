"""Fixtures shared by every test layer: the moto server provisioned from template.yaml, the stack environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# powertools Metrics reads its namespace when link_zoom.observability is first imported, before any fixture runs.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LinkZoomTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "link-zoom")

import pytest

from devstack.aws import (
    LocalResources,
    atomic_moto_dynamodb,
    provision,
    put_secure_parameter,
    stack_environment,
    start_moto_server,
)
from devstack.settings import LOCAL_ZOOM

if TYPE_CHECKING:
    from devstack.directory import DirectoryInfo
    from devstack.zoom_emulator import EmulatorHandle

# In-process mock_aws too: its conditional writes must be atomic, as DynamoDB's are.
atomic_moto_dynamodb()

# The local Zoom app (the emulator's default); tests that start an emulator use it.
ZOOM_CLIENT_ID = LOCAL_ZOOM.client_id
ZOOM_CLIENT_SECRET = LOCAL_ZOOM.client_secret
ZOOM_WEBHOOK_SECRET = LOCAL_ZOOM.webhook_secret


def reset_process_caches() -> None:
    """Forget clients, settings and bindings cached for a warm Lambda, as a fresh container would."""
    from link_zoom import composition
    from link_zoom.adapters import aws, dynamo, flag
    from link_zoom.config import get_settings

    composition.reset()
    get_settings.cache_clear()
    aws.forget_clients()
    dynamo.forget_bindings()
    flag._ssm_provider = None
    flag.forget_switch()


def point_functions_at(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process functions' Zoom is `emulator`, reset; caches forgotten as in a fresh container."""
    from link_zoom.adapters import crypto

    emulator.reset()
    monkeypatch.setenv("ZOOM_OAUTH_BASE_URL", emulator.oauth_base_url)
    monkeypatch.setenv("ZOOM_API_BASE_URL", emulator.api_base_url)
    monkeypatch.setenv("ZOOM_CLIENT_ID", emulator.config.client_id)
    reset_process_caches()
    crypto.forget_cached_keys()


def put_zoom_secrets(resources: LocalResources) -> None:
    names = resources.resolver.parameters
    put_secure_parameter(resources, names["ZoomClientSecretParameterName"], ZOOM_CLIENT_SECRET)
    put_secure_parameter(resources, names["ZoomWebhookSecretParameterName"], ZOOM_WEBHOOK_SECRET)


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalResources]:
    """One moto server (server mode) holding everything template.yaml declares."""
    server = start_moto_server()
    resources = provision(server.endpoint_url)
    put_zoom_secrets(resources)
    yield resources
    server.stop()


@pytest.fixture
def stack_env(local_aws: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The functions' environment (as template.yaml gives it) pointed at the moto server."""
    env = stack_environment(local_aws)
    env["ZOOM_CLIENT_ID"] = ZOOM_CLIENT_ID
    env["POWERTOOLS_METRICS_NAMESPACE"] = "LinkZoomTest"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # moto's backends are per process: another in-process stack in the same run may have rewritten these.
    put_zoom_secrets(local_aws)
    reset_process_caches()
    yield dict(os.environ)
    reset_process_caches()


@pytest.fixture(scope="session")
def demo_directory() -> Iterator[DirectoryInfo]:
    """The machine's one Samba AD DC for the whole session: reused when running, else started here and then
    stopped at the end of the session (once nobody else, a `make run` or another test session, holds it).
    DEMO_DIRECTORY_STATE_DIR names another state dir than .local/samba (a directory of its own)."""
    from devstack.directory import DEFAULT_STATE_DIR, hold_directory

    with hold_directory(Path(os.environ.get("DEMO_DIRECTORY_STATE_DIR") or DEFAULT_STATE_DIR)) as lease:
        yield lease.info
