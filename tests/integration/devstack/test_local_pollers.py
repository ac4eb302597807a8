"""The event source pollers on the fixture template: the table's stream, the work queue, the schedule, Invoke."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config

from devstack.aws import aws_client
from devstack.pollers import scheduled_event
from tests.integration.devstack.support import FixtureStack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def put(stack: FixtureStack, pk: str, sk: str, **attributes: str) -> None:
    item = {"pk": {"S": pk}, "sk": {"S": sk}} | {k: {"S": v} for k, v in attributes.items()}
    stack.resources.client("dynamodb").put_item(TableName=stack.resources.tables["Table"], Item=item)


def batches_of(stack: FixtureStack, pk: str) -> list[list[str]]:
    """The sort keys of each batch the stream function got that holds records of this partition."""
    module = stack.registry.module("StreamFunction")
    batches = module.BATCHES if module else []
    found = []
    for batch in list(batches):
        keys = [r["dynamodb"]["Keys"]["sk"]["S"] for r in batch if r["dynamodb"]["Keys"]["pk"]["S"] == pk]
        if keys:
            found.append(keys)
    return found


def records_of(stack: FixtureStack, pk: str) -> list[dict[str, Any]]:
    module = stack.registry.module("StreamFunction")
    return [
        r for batch in list(module.BATCHES if module else []) for r in batch if r["dynamodb"]["Keys"]["pk"]["S"] == pk
    ]


def stream_dlq_messages(stack: FixtureStack, pk_seqs: set[str], expected: int) -> list[dict[str, Any]]:
    """The on-failure messages whose batch starts with one of these sequence numbers."""
    sqs = stack.resources.client("sqs")
    url = stack.resources.queues["StreamDLQ"]
    found: list[dict[str, Any]] = []

    def collect() -> bool:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") or []:
            body = json.loads(message["Body"])
            if body["DDBStreamBatchInfo"]["startSequenceNumber"] in pk_seqs:
                found.append(body)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return len(found) >= expected

    wait_for(collect, timeout=15, interval=0.1)
    return found


# ---------------------------------------------------------------- the stream


def test_a_write_reaches_the_stream_function_within_two_seconds(fixture_stack: FixtureStack) -> None:
    pk = f"latency-{uuid.uuid4()}"
    began = time.monotonic()
    put(fixture_stack, pk, "only")
    wait_for(lambda: batches_of(fixture_stack, pk), timeout=5, interval=0.01)
    latency = time.monotonic() - began

    print(f"stream delivery latency: {latency:.3f} s")
    assert latency < 2.0
    record = records_of(fixture_stack, pk)[0]
    assert record["eventName"] == "INSERT"
    assert record["eventVersion"] == "1.1"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == fixture_stack.resources.resolver.attributes[("Table", "StreamArn")]
    ddb = record["dynamodb"]
    assert ddb["Keys"] == {"pk": {"S": pk}, "sk": {"S": "only"}}
    assert ddb["NewImage"] == {"pk": {"S": pk}, "sk": {"S": "only"}}
    assert "OldImage" not in ddb
    assert ddb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(ddb["ApproximateCreationDateTime"], int)
    assert {"SequenceNumber", "SizeBytes"} <= set(ddb)


def test_modify_and_remove_carry_old_and_new_images(fixture_stack: FixtureStack) -> None:
    pk = f"images-{uuid.uuid4()}"
    put(fixture_stack, pk, "a", v="1")
    put(fixture_stack, pk, "a", v="2")
    fixture_stack.resources.client("dynamodb").delete_item(
        TableName=fixture_stack.resources.tables["Table"], Key={"pk": {"S": pk}, "sk": {"S": "a"}}
    )
    wait_for(lambda: len(records_of(fixture_stack, pk)) >= 3)

    insert, modify, remove = records_of(fixture_stack, pk)
    assert [insert["eventName"], modify["eventName"], remove["eventName"]] == ["INSERT", "MODIFY", "REMOVE"]
    assert modify["dynamodb"]["OldImage"]["v"] == {"S": "1"}
    assert modify["dynamodb"]["NewImage"]["v"] == {"S": "2"}
    assert remove["dynamodb"]["OldImage"]["v"] == {"S": "2"}
    assert "NewImage" not in remove["dynamodb"]


def test_records_of_a_shard_arrive_in_order(fixture_stack: FixtureStack) -> None:
    pk = f"order-{uuid.uuid4()}"
    keys = [f"{i:02d}" for i in range(15)]  # more than one batch (BatchSize 10)
    for key in keys:
        put(fixture_stack, pk, key)
    wait_for(lambda: sum(len(b) for b in batches_of(fixture_stack, pk)) >= len(keys))

    delivered = [key for batch in batches_of(fixture_stack, pk) for key in batch]
    assert delivered == keys
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records_of(fixture_stack, pk)]
    assert sequence == sorted(sequence)
    assert max(len(b) for b in batches_of(fixture_stack, pk)) <= 10


def test_a_partial_batch_failure_is_retried_from_the_failed_record_only(fixture_stack: FixtureStack) -> None:
    pk = f"partial-{uuid.uuid4()}"
    put(fixture_stack, pk, "a")
    put(fixture_stack, pk, "b", mode="fail-once")
    put(fixture_stack, pk, "c")
    wait_for(lambda: len(batches_of(fixture_stack, pk)) >= 2)
    time.sleep(0.3)  # nothing more should come

    assert batches_of(fixture_stack, pk) == [["a", "b", "c"], ["b", "c"]]


def test_a_crashing_record_is_bisected_away_and_the_rest_succeed(fixture_stack: FixtureStack) -> None:
    pk = f"bisect-{uuid.uuid4()}"
    for key, mode in (("a", "ok"), ("b", "ok"), ("c", "crash"), ("d", "ok")):
        put(fixture_stack, pk, key, mode=mode)
    poison = wait_for(lambda: [r for r in records_of(fixture_stack, pk) if r["dynamodb"]["Keys"]["sk"]["S"] == "c"])
    seq = poison[0]["dynamodb"]["SequenceNumber"]
    [message] = stream_dlq_messages(fixture_stack, {seq}, expected=1)

    # Split on error ([a b c d] → [a b] ok, [c d] → [c] fails 1 + 2 retries, [d] ok); splits are not retries.
    assert batches_of(fixture_stack, pk) == [["a", "b", "c", "d"], ["a", "b"], ["c", "d"], ["c"], ["c"], ["c"], ["d"]]
    info = message["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seq, seq, 1)
    assert message["responseContext"]["functionError"] == "Unhandled"
    assert message["requestContext"]["approximateInvokeCount"] == 3


def test_after_the_last_retry_the_dlq_gets_awss_on_failure_message(fixture_stack: FixtureStack) -> None:
    pk = f"dlq-{uuid.uuid4()}"
    put(fixture_stack, pk, "a")
    put(fixture_stack, pk, "b", mode="fail")
    put(fixture_stack, pk, "c")
    failing = wait_for(lambda: [r for r in records_of(fixture_stack, pk) if r["dynamodb"]["Keys"]["sk"]["S"] == "b"])
    start = failing[0]["dynamodb"]["SequenceNumber"]
    [message] = stream_dlq_messages(fixture_stack, {start}, expected=1)

    # MaximumRetryAttempts 2: the first invocation, then two retries from the failed record, then the DLQ.
    assert batches_of(fixture_stack, pk) == [["a", "b", "c"], ["b", "c"], ["b", "c"]]
    end = records_of(fixture_stack, pk)[-1]["dynamodb"]["SequenceNumber"]
    stream_arn = fixture_stack.resources.resolver.attributes[("Table", "StreamArn")]
    function_arn = fixture_stack.registry.specs["StreamFunction"].arn
    assert set(message) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
    assert message["version"] == "1.0"
    assert message["timestamp"].endswith("Z")
    context = message["requestContext"]
    assert set(context) == {"requestId", "functionArn", "condition", "approximateInvokeCount"}
    assert (context["functionArn"], context["condition"], context["approximateInvokeCount"]) == (
        function_arn,
        "RetryAttemptsExhausted",
        3,
    )
    assert message["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    info = message["DDBStreamBatchInfo"]
    assert info["shardId"].startswith("shardId-")
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (start, end, 2)
    assert info["streamArn"] == stream_arn
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert info["approximateArrivalOfLastRecord"].endswith("Z")


# ---------------------------------------------------------------- the queue


def test_sqs_batch_item_failures_come_back_and_end_in_the_redrive_dlq(fixture_stack: FixtureStack) -> None:
    sqs = fixture_stack.resources.client("sqs")
    queue = fixture_stack.resources.queues["WorkQueue"]
    tag = str(uuid.uuid4())
    bodies = [f"ok-{tag}-1", "fail", f"ok-{tag}-2"]
    ids = {sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"]: body for body in bodies}
    failing_id = next(i for i, b in ids.items() if b == "fail")

    def seen(message_id: str) -> int:
        module = fixture_stack.registry.module("QueueFunction")
        return sum(1 for batch in list(module.BATCHES if module else []) for r in batch if r["messageId"] == message_id)

    def in_dlq() -> list[dict[str, Any]]:
        dlq = fixture_stack.resources.queues["WorkDLQ"]
        return [
            m
            for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages") or []
            if m["MessageId"] == failing_id
        ]

    # maxReceiveCount 2; visibility 20 s scaled by 0.05 → back after 1 s.
    wait_for(in_dlq, timeout=15, interval=0.2)

    assert seen(failing_id) == 2
    assert all(seen(i) == 1 for i, body in ids.items() if body != "fail")
    record = next(
        r
        for batch in fixture_stack.module_state("QueueFunction", "BATCHES")
        for r in batch
        if r["messageId"] == failing_id
    )
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == fixture_stack.resources.resolver.attributes[("WorkQueue", "Arn")]
    assert record["attributes"]["ApproximateReceiveCount"] in {"1", "2"}
    assert {"messageId", "receiptHandle", "body", "md5OfBody", "awsRegion", "messageAttributes"} <= set(record)
    assert (
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


# ---------------------------------------------------------------- schedule and the Invoke API


def test_a_scheduled_event_reaches_the_timer_through_the_invoke_api(fixture_stack: FixtureStack) -> None:
    event = scheduled_event(fixture_stack.registry, "TimerFunction", fixture_stack.resources.resolver)
    client = aws_client("lambda", fixture_stack.invoke_api.url)
    answer = client.invoke(FunctionName="TimerFunction", Payload=json.dumps(event).encode())

    payload = json.loads(answer["Payload"].read())
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert payload["got"]["detail-type"] == "Scheduled Event"
    assert payload["got"]["source"] == "aws.events"
    assert payload["got"]["resources"][0].startswith("arn:aws:events:us-east-1:123456789012:rule/")
    assert payload["function"] == fixture_stack.registry.specs["TimerFunction"].function_name


def test_the_invoke_api_reports_function_errors_timeouts_and_unknown_functions(fixture_stack: FixtureStack) -> None:
    client = aws_client("lambda", fixture_stack.invoke_api.url)
    arn = fixture_stack.registry.specs["TimerFunction"].arn

    answer = client.invoke(FunctionName=arn, Payload=b'{"sleep": 1.5}')  # Timeout: 1
    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Payload"].read())["errorType"] == "Sandbox.Timedout"

    strict = boto3.client(
        "lambda",
        endpoint_url=fixture_stack.invoke_api.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 0}),
    )
    with pytest.raises(strict.exceptions.ResourceNotFoundException):
        strict.invoke(FunctionName="NoSuchFunction", Payload=b"{}")
