"""AWS failing under the service: DynamoDB throttling and conditional-check failures, KMS and SSM errors, SQS.

The functions reach the moto server through a failing endpoint (`AwsFaultProxy`): it forwards every request
untouched except the operations a test names, which get the AWS error instead, once or for a while. The
service's own clients and PynamoDB models are pointed at it the way Lambda points them at AWS (the
environment), so botocore's retries and the service's error handling are what is tested.

What must hold: a transient fault is absorbed; a lasting one is a clear answer in the contract's shape (no
stack trace, no internal name); a stream record is reported as a batch item failure and, delivered again,
makes exactly one meeting; nothing is lost and no meeting is made twice.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.aws import LocalResources
from devstack.zoom_emulator import EmulatorHandle
from tests.integration.connection.zoom_flow import Person, new_person
from tests.integration.meetings.stream_tap import CalendarTable
from tests.resilience.harness import (
    Answer,
    AwsFaultProxy,
    SecretRegistry,
    callback,
    connected,
    consent_query,
    deliver_records,
    invoke_api,
    table_is,
)

DDB = "DynamoDB_20120810."
KMS = "TrentService."
SSM = "AmazonSSM."
SQS = "AmazonSQS."
THROTTLED = "ProvisionedThroughputExceededException"
FUTURE = {"subject": "AWS drill", "start": "2099-07-01T10:00:00Z", "end": "2099-07-01T10:45:00Z"}
EVENT_BODY = {"topic": "AWS drill", "start": FUTURE["start"], "end": FUTURE["end"]}
LASTING = 50  # more than every retry of one request
# What an answer must never show: vendor error names, library and table names, Python's traces.
INTERNAL = re.compile(
    r"Traceback|botocore|pynamodb|Exception|Throughput|TrentService|DynamoDB|\.py\b|"
    r"link-zoom-local|arn:aws",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def proxy(inproc: EmulatorHandle, local_aws: LocalResources) -> Iterator[AwsFaultProxy]:
    """The failing endpoint, in front of the session's moto server, for this module's functions."""
    from botocore.retries import standard

    from link_zoom.adapters import crypto
    from tests.conftest import reset_process_caches

    failing = AwsFaultProxy(local_aws.endpoint_url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", failing.url)
        # botocore's retries as configured (how many), without their seconds-long throttling back-offs.
        patch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
        reset_process_caches()
        crypto.forget_cached_keys()
        yield failing
        reset_process_caches()
        crypto.forget_cached_keys()
    failing.stop()


@pytest.fixture
def aws(proxy: AwsFaultProxy, zoom: EmulatorHandle) -> Iterator[AwsFaultProxy]:
    proxy.clear()
    yield proxy
    proxy.clear()


@pytest.fixture
def calendar(local_aws: LocalResources, zoom: EmulatorHandle) -> CalendarTable:
    return CalendarTable(local_aws)  # the Link server writes to moto directly, not through the failing endpoint


def clear_error(answer: Answer, secrets: SecretRegistry) -> None:
    """A failure the caller can act on: the contract's error shape, a sentence, nothing internal."""
    assert answer.status in (500, 502, 503), answer
    body = answer.json()
    assert set(body) == {"error"} and re.fullmatch(r"[a-z][a-z0-9_]*", body["error"]["code"]), answer
    assert body["error"]["message"].endswith("."), answer
    assert not INTERNAL.search(answer.text) and not secrets.find(answer.text), answer


def meetings_of(zoom: EmulatorHandle, person: Person) -> list[str]:
    return [str(m["id"]) for m in zoom.state.meetings() if m["host_email"] == person.email.lower()]


def deliver(
    functions: dict[str, Any],
    calendar: CalendarTable,
    user_id: str,
    records: list[dict[str, Any]] | None = None,
    replayed: bool = False,
) -> tuple[list[str], list[dict[str, Any]]]:
    """As `deliver_records`, with the answer read as the failed records' sequence numbers."""
    answer, records = deliver_records(functions, calendar, user_id, records, replayed)
    return [f["itemIdentifier"] for f in answer["batchItemFailures"]], records


def a_clear_error_and_a_retried_record(
    aws: AwsFaultProxy,
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    person: Person,
    calendar: CalendarTable,
    secrets: SecretRegistry,
) -> None:
    """Under the lasting fault: compose-link is a clear error, and an event's stream record is reported failed with
    nothing made at Zoom. Once the fault clears, the record delivered again makes the one meeting the item names."""
    answer = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {})
    clear_error(answer, secrets)
    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(person.user_id, event_id, **FUTURE, zoom=True)
    failed, records = deliver(functions, calendar, person.user_id)
    assert failed == [records[0]["dynamodb"]["SequenceNumber"]]
    assert meetings_of(zoom, person) == []
    aws.clear()
    assert deliver(functions, calendar, person.user_id, records)[0] == []
    assert meetings_of(zoom, person) == [calendar.item(person.user_id, event_id)["zoom_meeting_id"]]


def link_put(*, with_meeting: bool) -> Callable[[dict[str, Any]], bool]:
    """A fault condition: a put to the meeting links table, the claim (no meeting yet) or the completed link
    that records the meeting Zoom made."""
    return lambda body: table_is("MeetingLinks")(body) and ("meeting_id" in (body.get("Item") or {})) == with_meeting


# ---------------------------------------------------------------- DynamoDB throttling


def test_a_short_throttle_is_absorbed_by_the_retries(
    aws: AwsFaultProxy, zoom: EmulatorHandle, functions: dict[str, Any], person: Person
) -> None:
    aws.fail(DDB + "GetItem", THROTTLED, times=1, when=table_is("ZoomConnections"))
    answer = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {})
    assert answer.status == 201, answer
    assert aws.injected() == [DDB + "GetItem"]
    assert meetings_of(zoom, person) == [answer.json()["meeting_id"]]


@pytest.mark.parametrize(
    ("method", "path", "target", "table"),
    [
        ("POST", "/v1/compose-link", "GetItem", "ZoomConnections"),
        ("PUT", "/v1/events/{event}/zoom", "PutItem", "MeetingLinks"),  # the claim
        ("DELETE", "/v1/events/{event}/zoom", "GetItem", "MeetingLinks"),
        ("GET", "/v1/account/preferences", "Query", "Preferences"),
        ("GET", "/v1/features", "GetItem", "ZoomConnections"),
        ("DELETE", "/v1/account/preferences/Zoom/oauth", "GetItem", "ZoomConnections"),
        ("GET", "/v1/zoom/authorize", "PutItem", "OAuthStates"),
    ],
)
def test_lasting_throttling_is_a_clear_error_and_makes_nothing(
    method: str,
    path: str,
    target: str,
    table: str,
    aws: AwsFaultProxy,
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    person: Person,
    secrets: SecretRegistry,
) -> None:
    aws.fail(DDB + target, THROTTLED, times=LASTING, when=table_is(table))
    body = EVENT_BODY if method == "PUT" else ({} if method == "POST" else None)
    answer = invoke_api(functions, method, path.format(event=f"evt-{uuid.uuid4()}"), person.authorizer, body)
    clear_error(answer, secrets)
    assert aws.injected(), "the fault was hit"
    assert meetings_of(zoom, person) == []
    aws.clear()
    assert invoke_api(functions, "GET", "/v1/features", person.authorizer).status == 200


def test_a_throttled_link_write_after_zoom_made_the_meeting_leaves_no_second_meeting(
    aws: AwsFaultProxy, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, secrets: SecretRegistry
) -> None:
    """Zoom made the meeting, then recording it fails: that meeting is deleted again, the claim released, and
    the client's retry makes the one meeting the event keeps."""
    path = f"/v1/events/evt-{uuid.uuid4()}/zoom"
    aws.fail(DDB + "PutItem", THROTTLED, times=LASTING, when=link_put(with_meeting=True))
    answer = invoke_api(functions, "PUT", path, person.authorizer, EVENT_BODY)
    clear_error(answer, secrets)
    assert [c["method"] for c in zoom.calls if c["path"].startswith("/v2/meetings")] == ["DELETE"]
    assert meetings_of(zoom, person) == []
    aws.clear()
    again = invoke_api(functions, "PUT", path, person.authorizer, EVENT_BODY)
    assert again.status == 200, again
    assert meetings_of(zoom, person) == [again.json()["meeting_id"]]


@pytest.mark.parametrize(
    ("target", "when", "replayed"),
    [
        ("GetItem", table_is("Calendar"), True),  # reading the item (a replayed record's; a streamed one has it)
        ("PutItem", link_put(with_meeting=False), False),  # the claim, before Zoom is called
        ("PutItem", link_put(with_meeting=True), False),  # recording the meeting Zoom made
        ("UpdateItem", table_is("Calendar"), False),  # the write-back
        ("GetItem", table_is("ZoomConnections"), False),  # the user's tokens
    ],
    ids=["item-read", "claim", "link", "write-back", "connection"],
)
def test_a_stream_record_hit_by_lasting_throttling_is_retried_and_makes_one_meeting(
    target: str,
    when: Callable[[dict[str, Any]], bool],
    replayed: bool,
    aws: AwsFaultProxy,
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    person: Person,
    calendar: CalendarTable,
) -> None:
    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(person.user_id, event_id, **FUTURE, zoom=True)
    aws.fail(DDB + target, THROTTLED, times=LASTING, when=when)
    failed, records = deliver(functions, calendar, person.user_id, replayed=replayed)
    assert aws.injected(), "the fault met the request it names"
    assert failed == [records[0]["dynamodb"]["SequenceNumber"]], "reported for a retry, not dropped"
    assert len(meetings_of(zoom, person)) <= 1
    aws.clear()
    failed, _ = deliver(functions, calendar, person.user_id, records, replayed)  # delivered again
    assert failed == []
    item = calendar.item(person.user_id, event_id)
    assert item["zoom_status"] == "scheduled"
    assert meetings_of(zoom, person) == [item["zoom_meeting_id"]], "exactly one meeting, the item's"


# ---------------------------------------------------------------- conditional-check failures


def test_a_spurious_conditional_failure_on_the_claim_neither_duplicates_nor_hangs(
    aws: AwsFaultProxy, zoom: EmulatorHandle, functions: dict[str, Any], person: Person
) -> None:
    aws.fail(DDB + "PutItem", "ConditionalCheckFailedException", times=2, when=table_is("MeetingLinks"))
    answer = invoke_api(functions, "PUT", f"/v1/events/evt-{uuid.uuid4()}/zoom", person.authorizer, EVENT_BODY)
    assert answer.status == 200, answer
    assert aws.injected() == [DDB + "PutItem"] * 2
    assert meetings_of(zoom, person) == [answer.json()["meeting_id"]]


def test_a_newer_link_server_write_wins_over_the_write_back(
    zoom: EmulatorHandle, functions: dict[str, Any], person: Person, calendar: CalendarTable
) -> None:
    """The Link server changes the event between the service's read and its write-back: the write-back's
    condition fails, the newer write stays, and the newer write's own record brings the meeting in step."""
    from link_zoom.adapters import calendar_store

    event_id = f"evt-{uuid.uuid4()}"
    calendar.put(person.user_id, event_id, **FUTURE, zoom=True)
    original = calendar_store.CalendarStore.write_back

    def link_server_writes_first(store: Any, item: Any, fields: Any) -> bool:
        calendar.update(person.user_id, event_id, end="2099-07-01T11:30:00Z")
        return original(store, item, fields)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calendar_store.CalendarStore, "write_back", link_server_writes_first)
        failed, _ = deliver(functions, calendar, person.user_id)
    assert failed == []
    stored = calendar.item(person.user_id, event_id)
    assert stored["end"] == "2099-07-01T11:30:00Z" and "zoom_status" not in stored  # the newer write stands
    failed, _ = deliver(functions, calendar, person.user_id)  # the newer write's record
    assert failed == []
    item = calendar.item(person.user_id, event_id)
    assert item["zoom_status"] == "scheduled"
    meeting = next(m for m in zoom.state.meetings() if str(m["id"]) == item["zoom_meeting_id"])
    assert meeting["duration"] == 90 and meetings_of(zoom, person) == [item["zoom_meeting_id"]]


# ---------------------------------------------------------------- KMS


def test_a_short_kms_outage_is_absorbed(
    aws: AwsFaultProxy, zoom: EmulatorHandle, functions: dict[str, Any], person: Person
) -> None:
    from link_zoom.adapters import crypto

    crypto.forget_cached_keys()  # a cold container: the data key must be decrypted
    aws.fail(KMS + "Decrypt", "KMSInternalException", status=500, times=1)
    answer = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {})
    assert answer.status == 201, answer
    assert aws.injected() == [KMS + "Decrypt"]


@pytest.mark.parametrize(
    ("code", "status"), [("KMSInternalException", 500), ("ThrottlingException", 400), ("DisabledException", 400)]
)
def test_kms_failing_to_decrypt_is_a_clear_error_and_a_retried_record(
    code: str,
    status: int,
    aws: AwsFaultProxy,
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    person: Person,
    calendar: CalendarTable,
    secrets: SecretRegistry,
) -> None:
    from link_zoom.adapters import crypto

    crypto.forget_cached_keys()
    aws.fail(KMS + "Decrypt", code, status=status, times=LASTING)
    a_clear_error_and_a_retried_record(aws, zoom, functions, person, calendar, secrets)


def test_a_data_key_that_no_longer_decrypts_means_connect_again(
    aws: AwsFaultProxy, zoom: EmulatorHandle, functions: dict[str, Any], person: Person, secrets: SecretRegistry
) -> None:
    from link_zoom.adapters import crypto

    crypto.forget_cached_keys()
    aws.fail(KMS + "Decrypt", "InvalidCiphertextException", times=LASTING)
    answer = invoke_api(functions, "POST", "/v1/compose-link", person.authorizer, {})
    assert (answer.status, answer.code) == (403, "zoom_authorization_required"), answer
    assert not secrets.find(answer.text)
    aws.clear()
    assert invoke_api(functions, "GET", "/v1/features", person.authorizer).json()["zoom"]["connected"] is False


def test_kms_failing_while_the_callback_stores_the_connection_is_a_page_and_revokes(
    aws: AwsFaultProxy, zoom: EmulatorHandle, functions: dict[str, Any]
) -> None:
    someone = new_person("kms")
    query = consent_query(functions, someone)
    aws.fail(KMS + "GenerateDataKey", "KMSInternalException", status=500, times=LASTING)
    page = callback(functions, query)
    assert page.status in (502, 503) and page.headers["content-type"].startswith("text/html"), page
    assert ("/oauth/revoke", 200) in [(c["path"], c["status"]) for c in zoom.calls]


# ---------------------------------------------------------------- SSM and SQS


def test_the_switch_unreadable_is_a_clear_error_and_a_retried_record(
    aws: AwsFaultProxy,
    zoom: EmulatorHandle,
    functions: dict[str, Any],
    person: Person,
    calendar: CalendarTable,
    secrets: SecretRegistry,
) -> None:
    from link_zoom.adapters import flag

    flag.forget_switch()  # a cold container: no last value to fall back on
    aws.fail(SSM + "GetParameter", "InternalServerError", status=500, times=LASTING)
    a_clear_error_and_a_retried_record(aws, zoom, functions, person, calendar, secrets)


def test_a_sweep_that_cannot_be_queued_does_not_undo_the_connection(
    aws: AwsFaultProxy, zoom: EmulatorHandle, functions: dict[str, Any]
) -> None:
    someone = new_person("sqs")
    query = consent_query(functions, someone)
    aws.fail(SQS + "SendMessage", "InternalError", status=500, times=LASTING)
    page = callback(functions, query)
    assert page.status == 200, page
    assert aws.injected() and connected(functions, someone)
