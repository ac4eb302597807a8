"""The Zoom connection through the real pieces: the moto server (template.yaml's tables, key, queue) and the
Zoom emulator. Handlers are invoked with the events API Gateway would build.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.aws import LocalResources, put_secure_parameter
from devstack.zoom_emulator import EmulatorHandle, start_emulator
from tests.integration.connection.zoom_flow import KmsCounter
from tests.support.functions import load_function
from tests.support.logs import all_log_lines


@pytest.fixture(scope="session")
def oauth_function() -> Any:
    return load_function("zoom_oauth")


@pytest.fixture(scope="session")
def webhook_function() -> Any:
    return load_function("zoom_webhook")


@pytest.fixture(scope="session")
def keeper_function() -> Any:
    return load_function("token_keeper")


@pytest.fixture(scope="session")
def refresh_function() -> Any:
    return load_function("token_refresh")


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    handle = start_emulator(port=0)
    yield handle
    handle.stop()


@pytest.fixture
def zoom(
    stack_env: dict[str, str],
    emulator: EmulatorHandle,
    local_aws: LocalResources,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[EmulatorHandle]:
    """A fresh emulator state, the functions pointed at it, the feature switched on, a cold key cache."""
    from link_zoom.adapters import crypto, flag
    from link_zoom.observability import metrics
    from tests.conftest import point_functions_at

    # moto's backends are per process: another in-process stack may have written its own app secrets.
    names = local_aws.resolver.parameters
    put_secure_parameter(local_aws, names["ZoomClientSecretParameterName"], emulator.config.client_secret)
    put_secure_parameter(local_aws, names["ZoomWebhookSecretParameterName"], emulator.config.webhook_secret)

    # Metrics() read its namespace when first imported, maybe before stack_env set it (Lambda sets it first).
    monkeypatch.setattr(metrics, "namespace", stack_env["POWERTOOLS_METRICS_NAMESPACE"])
    point_functions_at(emulator, monkeypatch)
    flag.set_zoom_enabled(True)
    yield emulator
    flag.set_zoom_enabled(False)
    crypto.forget_cached_keys()


@pytest.fixture
def kms_calls(zoom: EmulatorHandle) -> Iterator[KmsCounter]:
    """KMS requests made through the service's cached client while the test runs."""
    from link_zoom.adapters.aws import client

    counter = KmsCounter()
    kms = client("kms")
    kms.meta.events.register("before-call.kms.*", counter)
    yield counter
    kms.meta.events.unregister("before-call.kms.*", counter)


@pytest.fixture
def all_logs(zoom: EmulatorHandle) -> Iterator[io.StringIO]:
    """Everything logged while the test runs: the service's JSON lines and every library's DEBUG lines."""
    stream = io.StringIO()
    with all_log_lines(stream):
        yield stream
