"""events/*.json: one sample per function of template.yaml, shaped as the function's event source sends it.

A sample's file name starts with its function's CodeUri folder (`meetings_put_event_meeting.json` →
functions/meetings/), so `sam local invoke <Function> -e events/<file>` pairs are obvious.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devstack.functions import FunctionSpec, discover_functions
from devstack.template import ROOT, Resolver, load_template

EVENTS = sorted((ROOT / "events").glob("*.json"))
TEMPLATE = load_template()
SPECS = discover_functions(TEMPLATE, ROOT, Resolver(TEMPLATE))
AUTHORIZERS = {"AuthorizerFunction"}  # named by the API's Auth block, not by an event of its own


def function_of(sample: Path) -> FunctionSpec:
    matches = [s for s in SPECS.values() if sample.stem.startswith(s.code_dir.name + "_")]
    assert matches, f"{sample.name} names no function of template.yaml"
    return max(matches, key=lambda s: len(s.code_dir.name))


def load(sample: Path) -> Any:
    return json.loads(sample.read_text())


@pytest.mark.parametrize("sample", EVENTS, ids=[p.name for p in EVENTS])
def test_a_sample_names_a_function_and_has_its_event_sources_shape(sample: Path) -> None:
    spec = function_of(sample)
    event = load(sample)
    kinds = {e["Type"] for e in spec.events.values()}

    if spec.logical_id in AUTHORIZERS:
        assert event["type"] == "TOKEN"
        assert event["authorizationToken"].startswith("Bearer ")
        assert event["methodArn"].startswith("arn:aws:execute-api:")
    elif "Api" in kinds:
        routes = {(p["Method"].upper(), p["Path"]) for p in spec.events_of_type("Api").values()}
        assert (event["httpMethod"], event["resource"]) in routes
        assert event["requestContext"]["resourcePath"] == event["resource"]
        assert {"headers", "multiValueHeaders", "pathParameters", "body", "isBase64Encoded"} <= set(event)
    elif "DynamoDB" in kinds:
        assert [r["eventSource"] for r in event["Records"]] == ["aws:dynamodb"] * len(event["Records"])
        assert {r["eventName"] for r in event["Records"]} == {"INSERT", "MODIFY", "REMOVE"}
    elif "SQS" in kinds:
        assert {r["eventSource"] for r in event["Records"]} == {"aws:sqs"}
    elif "Schedule" in kinds:
        assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    else:
        assert isinstance(event, dict)  # invoked directly (DlqReplay): whatever the operator sends


def test_every_function_has_a_sample() -> None:
    covered = {function_of(sample).logical_id for sample in EVENTS}

    assert covered == set(SPECS)


def test_every_route_has_a_sample() -> None:
    sampled = {(e["httpMethod"], e["resource"]) for e in map(load, EVENTS) if "httpMethod" in e}
    routes = {(p["Method"].upper(), p["Path"]) for spec in SPECS.values() for p in spec.events_of_type("Api").values()}

    assert routes <= sampled
