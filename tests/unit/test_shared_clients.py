"""Issue 14: on a fresh container, worker threads that use the stores at once share one client per service.

Counted, not timed: botocore's `Session.create_client` and its loader's `load_service_model` calls while 16
threads, released together, each use every store a stream worker uses (the calendar table, the meeting links
and connections models, KMS, the SSM flag). Before the fix each thread built its own clients.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.loaders import Loader
from botocore.session import Session

from tests.conftest import reset_process_caches
from tests.support.aws import REGION, mock_aws_with_tables

THREADS = 16
TABLES = {
    "CALENDAR_TABLE": "CalendarTable",
    "MEETING_LINKS_TABLE": "MeetingLinksTable",
    "CONNECTIONS_TABLE": "ZoomConnectionsTable",
}


@pytest.fixture
def fresh_container(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """mock_aws with the tables a stream worker reads, a KMS key and the flag; no client or binding cached."""
    with mock_aws_with_tables(monkeypatch, TABLES, {"FEATURE_FLAG_PARAMETER": "/link/zoom/enabled"}):
        key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
        monkeypatch.setenv("TOKEN_KEY_ID", key_id)
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/link/zoom/enabled", Value="true", Type="String")
        reset_process_caches()
        from link_zoom.adapters import crypto, flag

        crypto.forget_cached_keys()
        flag._ssm_provider = None
        yield


@pytest.fixture
def creations(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts clients built per service ("dynamodb") and service models loaded ("model:dynamodb")."""
    counted: Counter[str] = Counter()
    lock = threading.Lock()
    create_client, load_service_model = Session.create_client, Loader.load_service_model

    def counting_create_client(self: Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        with lock:
            counted[service_name] += 1
        return create_client(self, service_name, *args, **kwargs)

    def counting_load(self: Loader, service_name: str, type_name: str, *args: Any, **kwargs: Any) -> Any:
        if type_name == "service-2":
            with lock:
                counted[f"model:{service_name}"] += 1
        return load_service_model(self, service_name, type_name, *args, **kwargs)

    monkeypatch.setattr(Session, "create_client", counting_create_client)
    monkeypatch.setattr(Loader, "load_service_model", counting_load)
    return counted


def _worker_uses_every_store(number: int) -> None:
    from link_zoom.adapters import connections_store, crypto, flag
    from link_zoom.adapters.calendar_store import CalendarStore
    from link_zoom.adapters.meeting_links_store import MeetingLinksStore
    from link_zoom.config import get_settings

    settings = get_settings()
    user_id, event_id = f"user-{number}", f"event-{number}"
    assert CalendarStore(settings.calendar_table).get(user_id, event_id) is None
    assert MeetingLinksStore(settings.meeting_links_table).get(user_id, event_id) is None
    assert connections_store.get(user_id) is None
    assert crypto.unseal(user_id, crypto.seal(user_id, b"tokens")) == b"tokens"
    assert flag.zoom_enabled() is True


def _all_at_once(work: Callable[[int], None]) -> None:
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(number: int) -> None:
        start.wait()
        try:
            work(number)
        except BaseException as exc:  # reported below: a thread's assertion must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def test_threads_on_a_fresh_container_build_one_client_per_service(
    fresh_container: None, creations: Counter[str]
) -> None:
    _all_at_once(_worker_uses_every_store)

    # One DynamoDB client serves boto3 calls and every PynamoDB model alike; each model is parsed once.
    assert {service: creations[service] for service in ("dynamodb", "kms", "ssm")} == {
        "dynamodb": 1,
        "kms": 1,
        "ssm": 1,
    }
    assert creations["model:dynamodb"] == 1


def test_warming_before_the_fan_out_leaves_the_workers_nothing_to_build(
    fresh_container: None, creations: Counter[str]
) -> None:
    from link_zoom.adapters.warm import warm_for_fan_out

    warm_for_fan_out()
    built_before = sum(creations.values())
    _all_at_once(_worker_uses_every_store)

    assert built_before >= 3
    assert sum(creations.values()) == built_before


def test_a_model_bound_to_its_table_uses_the_shared_client(fresh_container: None) -> None:
    from link_zoom.adapters import connections_store
    from link_zoom.adapters.aws import client

    connections_store.warm()

    assert connections_store.ZoomConnection._get_connection().connection.client is client("dynamodb")
