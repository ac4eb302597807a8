"""The feature switch: cached per container, and kept through SSM failures for a bounded time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from link_zoom.adapters import flag
from link_zoom.errors import FeatureSwitchUnavailable
from tests.conftest import reset_process_caches

PARAMETER = "/unit/zoom/enabled"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("FEATURE_FLAG_PARAMETER", PARAMETER)
        reset_process_caches()
        client = boto3.client("ssm", region_name="us-east-1")
        client.put_parameter(Name=PARAMETER, Value="true", Type="String")
        yield client
        reset_process_caches()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(flag, "_clock", clock)
    return clock


@pytest.fixture
def ssm_reads(ssm: Any) -> Iterator[dict[str, Any]]:
    """Counts the service's GetParameter calls; `fail` set to an error code makes them fail."""
    from botocore.exceptions import ClientError

    from link_zoom.adapters.aws import client

    state: dict[str, Any] = {"calls": 0, "fail": None}

    def before(**_: Any) -> None:
        state["calls"] += 1
        if state["fail"]:
            raise ClientError({"Error": {"Code": state["fail"], "Message": "x"}}, "GetParameter")

    client("ssm").meta.events.register("before-call.ssm.GetParameter", before)
    yield state
    client("ssm").meta.events.unregister("before-call.ssm.GetParameter", before)


def test_the_switch_is_read_once_per_cache_period(ssm_reads: dict[str, Any], clock: Clock) -> None:
    assert [flag.zoom_enabled() for _ in range(50)] == [True] * 50
    assert ssm_reads["calls"] == 1
    clock.now += flag.FLAG_CACHE_SECONDS
    flag.zoom_enabled()
    assert ssm_reads["calls"] == 2


def test_a_throttled_read_keeps_the_last_value_for_a_bounded_time(ssm_reads: dict[str, Any], clock: Clock) -> None:
    assert flag.zoom_enabled() is True
    ssm_reads["fail"] = "ThrottlingException"
    clock.now += flag.FLAG_CACHE_SECONDS
    assert flag.zoom_enabled() is True
    assert [flag.zoom_enabled() for _ in range(10)] == [True] * 10
    assert ssm_reads["calls"] == 2, "a failing SSM is not asked on every request"
    clock.now += flag.FLAG_STALE_LIMIT_SECONDS
    with pytest.raises(FeatureSwitchUnavailable) as raised:
        flag.zoom_enabled()
    assert (raised.value.status, raised.value.code) == (503, "service_unavailable")
    ssm_reads["fail"] = None
    clock.now += flag.FLAG_RETRY_SECONDS
    assert flag.zoom_enabled() is True


def test_a_cold_container_with_ssm_failing_is_unavailable_not_a_500(ssm_reads: dict[str, Any], clock: Clock) -> None:
    ssm_reads["fail"] = "InternalServerError"
    with pytest.raises(FeatureSwitchUnavailable):
        flag.zoom_enabled()


def test_the_container_that_writes_the_switch_sees_it_at_once(ssm_reads: dict[str, Any], clock: Clock) -> None:
    assert flag.zoom_enabled() is True
    flag.set_zoom_enabled(False)
    assert flag.zoom_enabled() is False
    assert ssm_reads["calls"] == 1


def test_the_cache_fits_ssms_default_throughput_at_1000_containers() -> None:
    assert 1000 / flag.FLAG_CACHE_SECONDS + 2 * 1000 / 300 < 40
