"""The local stack's parts (gateway, Invoke API, pollers) on a moto server, driven by a fixture template.

The fixture template (fixtures/template.yaml) has trivial functions whose behaviour the request or the
item chooses; they run in this process, so tests read what they received from their modules.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.aws import provision, start_moto_server
from devstack.gateway import Gateway, serve_api, serve_invoke_api
from devstack.pollers import RetryPolicy, build_pollers
from tests.integration.devstack.support import FIXTURE_TEMPLATE, INTEGRATION_TIMEOUT_S, FixtureStack, build_registry


@pytest.fixture(scope="session")
def fixture_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixtureStack]:
    logs_dir = tmp_path_factory.mktemp("devstack-logs")
    moto = start_moto_server()
    resources = provision(moto.endpoint_url, template_path=FIXTURE_TEMPLATE)
    registry = build_registry(resources, logs_dir)
    gateway = Gateway(
        registry, resources.resolver, integration_timeout_s=INTEGRATION_TIMEOUT_S, access_log=logs_dir / "access.log"
    )
    api = serve_api(gateway, port=0)
    invoke_api = serve_invoke_api(registry, port=0)
    pollers = build_pollers(
        registry,
        resources.resolver,
        moto.endpoint_url,
        retry=RetryPolicy(first_delay_s=0.05, max_delay_s=0.2),
        visibility_scale=0.05,
    )
    pollers.start()
    yield FixtureStack(moto, resources, registry, gateway, api, invoke_api, pollers, logs_dir)
    pollers.stop()
    api.stop()
    invoke_api.stop()
    gateway.close()
    assert registry.logs is not None
    registry.logs.close()
    moto.stop()
