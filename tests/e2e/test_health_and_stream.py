"""Through the stack `make run` starts: the first route, the calendar stream reaching its handler in time,
and a scheduled function triggered by hand (`make keeper`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

from devstack.template import ROOT
from tests.e2e.conftest import E2EStack

DELIVERY = re.compile(
    r"CalendarStreamFunction <- \d+ record\(s\) from \S+, sequence numbers (\d+)\.\.(\d+), request (\S+):"
)


def test_health_answers_ok(stack: E2EStack) -> None:
    with urllib.request.urlopen(f"{stack.api_url}/v1/health", timeout=5) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert json.loads(answer.read()) == {"status": "ok"}


def _sequence_number_of(stack: E2EStack, user_id: str, event_id: str) -> str:
    """Our write's sequence number, read from the table's stream itself (independently of the stack)."""
    table = stack.aws("dynamodb").describe_table(TableName=stack.info["calendar_table"])["Table"]
    streams = stack.aws("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"]
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=table["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in answer["Records"]:
                keys = record["dynamodb"]["Keys"]
                if keys["user_id"]["S"] == user_id and keys["event_id"]["S"] == event_id:
                    return str(record["dynamodb"]["SequenceNumber"])
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
    raise AssertionError("our write is not on the stream")


def _delivery_of(stack: E2EStack, sequence: int) -> Any:
    log = stack.logs_dir / "stack.log"
    for match in DELIVERY.finditer(log.read_text() if log.exists() else ""):
        if int(match.group(1)) <= sequence <= int(match.group(2)):
            return match
    return None


def test_a_calendar_write_reaches_the_stream_handler_within_two_seconds(stack: E2EStack) -> None:
    user_id, event_id = str(uuid.uuid4()), f"e2e-{uuid.uuid4()}"
    item = {
        "user_id": {"S": user_id},
        "event_id": {"S": event_id},
        "subject": {"S": "stream probe"},  # no `zoom` toggle: the handler has nothing to do at Zoom
        "start": {"S": "2030-01-01T10:00:00+00:00"},
        "end": {"S": "2030-01-01T10:30:00+00:00"},
    }
    began = time.monotonic()
    stack.aws("dynamodb").put_item(TableName=stack.info["calendar_table"], Item=item)
    sequence = int(_sequence_number_of(stack, user_id, event_id))
    delivery = None
    while delivery is None and time.monotonic() - began < 5:
        delivery = _delivery_of(stack, sequence)
        time.sleep(0.02)
    latency = time.monotonic() - began

    assert delivery is not None, "the poller never handed our record to CalendarStreamFunction"
    print(f"calendar stream delivery: {latency:.2f} s")
    assert latency < 2.0
    # The invocation ran: Lambda's START line of that request id in the function's own log.
    function_log = (stack.logs_dir / "CalendarStreamFunction.log").read_text()
    assert f"START RequestId: {delivery.group(3)}" in function_log


def test_make_keeper_triggers_the_token_keeper_of_the_running_stack(stack: E2EStack) -> None:
    command = [sys.executable, "-m", "devstack.run", "invoke", "TokenKeeperFunction"]
    command += ["--state-dir", str(stack.state_dir)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert "no running stack" not in done.stderr  # it went to the running stack's Invoke API
    json.loads(done.stdout)
    assert "START RequestId:" in (stack.logs_dir / "TokenKeeperFunction.log").read_text()
