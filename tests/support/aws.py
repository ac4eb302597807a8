"""The one in-process AWS for unit tests: moto's mock_aws holding template.yaml's tables as the template defines
them (keys, indexes, stream), with the functions' variables naming them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import boto3
import pytest
from moto import mock_aws

from devstack.aws import table_request
from devstack.template import Resolver, load_template

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@contextlib.contextmanager
def mock_aws_with_tables(
    monkeypatch: pytest.MonkeyPatch, tables: Mapping[str, str], env: Mapping[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """mock_aws with `tables` ({environment variable: logical id}) created as `unit-<logical id>`; fake credentials,
    the region, `env` and the table variables set; no endpoint variable left that would send boto3 elsewhere.
    Process caches are reset before and after, as a fresh container would have them."""
    from tests.conftest import reset_process_caches

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    variables = {**FAKE_CREDENTIALS, **(env or {}), **{v: f"unit-{logical}" for v, logical in tables.items()}}
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    template = load_template()
    resolver = Resolver(template, parameters={}, region=REGION)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        for variable, logical in tables.items():
            props = resolver.resolve(template["Resources"][logical]["Properties"])
            # The unit AWS holds none of the template's keys: tables without its SSE settings.
            ddb.create_table(**table_request(variables[variable], props, encrypted=False))
        reset_process_caches()
        try:
            yield variables
        finally:
            reset_process_caches()
