"""`python -m devstack.run`: contract section 4 variables replace the embedded parts they name.

The stack runs as its own process: moto's backends are per process, so an in-process stack of
template.yaml would overwrite the parameters that other tests' moto servers hold.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.aws import LocalResources, aws_client, function_environment
from devstack.run import template_parameters
from devstack.settings import OVERRIDABLE
from devstack.template import Resolver, load_template
from tests.integration.devstack.support import start_stack_process

pytestmark = pytest.mark.integration


def test_section_4_variables_replace_the_directory_the_emulator_and_the_credentials(tmp_path: Path) -> None:
    overrides = {
        "LDAP_URL": "ldaps://dc.corp.test:636",
        "LDAP_CA_FILE": "/etc/ssl/certs/corp-test-ca.pem",
        "ZOOM_OAUTH_BASE_URL": "https://zoom.example.test",
        "ZOOM_API_BASE_URL": "https://api.zoom.example.test/v2",
        "ZOOM_CLIENT_ID": "real-client-id",
        "ZOOM_CLIENT_SECRET": "real-client-secret",
        "FEATURE_FLAG_PARAMETER": "/test/zoom/enabled",
    }
    running = start_stack_process(tmp_path, env={**os.environ, **overrides}, timeout=60)
    try:
        info = running.info
        ssm = aws_client("ssm", info["aws_endpoint_url"])
        secret = ssm.get_parameter(Name="/link/zoom/client-secret", WithDecryption=True)["Parameter"]
        flag = ssm.get_parameter(Name="/test/zoom/enabled")["Parameter"]["Value"]
    finally:
        running.stop()

    # No demo directory and no emulator: the named ones are used instead.
    assert (info["ldap_url"], info["ldap_ca_file"]) == ("ldaps://dc.corp.test:636", "/etc/ssl/certs/corp-test-ca.pem")
    assert info["demo_users"] == []
    assert info["zoom_emulator_url"] is None
    assert (info["zoom_oauth_base_url"], info["zoom_api_base_url"]) == (
        "https://zoom.example.test",
        "https://api.zoom.example.test/v2",
    )
    # The flag parameter of the functions' environment is the one provisioned; the secret is an SSM
    # SecureString, as in AWS, and never in the functions' environment.
    assert (info["feature_flag_parameter"], flag) == ("/test/zoom/enabled", "false")
    assert (secret["Type"], secret["Value"]) == ("SecureString", "real-client-secret")
    assert set(info) >= {
        "api_url",
        "aws_endpoint_url",
        "region",
        "calendar_table",
        "zoom_oauth_base_url",
        "zoom_api_base_url",
        "ldap_url",
    }
    # Stopping removed what it wrote.
    assert info["pid"] == running.process.pid
    assert not (tmp_path / "stack.json").exists()


def test_every_section_4_setting_reaches_the_functions_through_its_template_parameter() -> None:
    template = load_template()
    settings = {name: f"value-of-{name}" for name in OVERRIDABLE}
    parameters = template_parameters(template, settings)
    resources = LocalResources(endpoint_url="http://127.0.0.1:1", resolver=Resolver(template, parameters=parameters))

    env = function_environment(resources, "MeetingsFunction")
    secrets = {"ZOOM_CLIENT_SECRET", "ZOOM_WEBHOOK_SECRET"}  # SSM SecureStrings, never plain environment
    for name in set(OVERRIDABLE) - secrets:
        assert env[name] == f"value-of-{name}", name
    assert not secrets & set(env)
