"""Least privilege, proven: each function runs under its own template policy on the moto server (IAM enforced).

The functions run through the local function runner (devstack.functions), which acts as the invoked function:
every AWS request it makes is signed with that function's IAM user, built from template.yaml's statements.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devstack.aws import LocalResources
from devstack.functions import FunctionRegistry, discover_functions
from devstack.iam import (
    POLICY_NAME,
    acting_as,
    create_function_principals,
    function_credentials,
    local_policy,
    set_enforcement,
    template_policy,
)
from devstack.template import TEMPLATE_PATH

pytestmark = pytest.mark.integration


@pytest.fixture
def enforced(local_aws: LocalResources, stack_env: dict[str, str]) -> Iterator[LocalResources]:
    """The session's moto server with one IAM user per function and IAM checks on, for this test only."""
    from tests.conftest import reset_process_caches

    keys = create_function_principals(local_aws)
    local_aws.client("ssm").put_parameter(
        Name=local_aws.resolver.parameters["FeatureFlagParameterName"], Value="true", Type="String", Overwrite=True
    )
    with function_credentials(keys):
        reset_process_caches()  # clients made before this signed with the process's keys
        set_enforcement(local_aws.endpoint_url, True)
        try:
            yield local_aws
        finally:
            set_enforcement(local_aws.endpoint_url, False)
            reset_process_caches()


@pytest.fixture
def registry(local_aws: LocalResources) -> FunctionRegistry:
    return FunctionRegistry(discover_functions(local_aws.resolver.template, TEMPLATE_PATH.parent, local_aws.resolver))


def insert_record(user_id: str, event_id: str) -> dict[str, Any]:
    image = {
        "user_id": {"S": user_id},
        "event_id": {"S": event_id},
        "subject": {"S": "Least privilege review"},
        "start": {"S": "2099-06-01T10:00:00+02:00"},
        "end": {"S": "2099-06-01T11:00:00+02:00"},
        "zoom": {"BOOL": True},
    }
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"user_id": image["user_id"], "event_id": image["event_id"]},
            "NewImage": image,
            "SequenceNumber": "1",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def put_event(resources: LocalResources) -> tuple[str, str]:
    user_id, event_id = str(uuid.uuid4()), f"evt-{uuid.uuid4().hex[:8]}"
    resources.client("dynamodb").put_item(
        TableName=resources.tables["CalendarTable"],
        Item=insert_record(user_id, event_id)["dynamodb"]["NewImage"],
    )
    return user_id, event_id


def zoom_status(resources: LocalResources, user_id: str, event_id: str) -> str | None:
    item = resources.client("dynamodb").get_item(
        TableName=resources.tables["CalendarTable"],
        Key={"user_id": {"S": user_id}, "event_id": {"S": event_id}},
        ConsistentRead=True,
    )["Item"]
    return item.get("zoom_status", {}).get("S")


def without_action(resources: LocalResources, logical: str, action: str) -> dict[str, Any]:
    """The function's template policy with `action` taken out of every statement."""
    template = copy.deepcopy(resources.resolver.template)
    policy = template_policy(template, resources.resolver, logical)
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != action]
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"]]
    return local_policy(policy)


def test_stream_function_writes_back_under_its_own_policy(enforced: LocalResources, registry: FunctionRegistry) -> None:
    # Given an event with the Zoom toggle of a user who has not connected Zoom
    user_id, event_id = put_event(enforced)

    # When the stream function handles its INSERT under its template policy
    answer = registry.invoke("CalendarStreamFunction", {"Records": [insert_record(user_id, event_id)]})

    # Then it read the flag, looked for a connection and wrote the status back: all allowed
    assert answer.ok, answer.error
    assert answer.payload == {"batchItemFailures": []}
    assert zoom_status(enforced, user_id, event_id) == "authorization_required"


def test_removing_update_item_breaks_the_stream_functions_write_back(
    enforced: LocalResources, registry: FunctionRegistry
) -> None:
    # Given the stream function's policy without dynamodb:UpdateItem
    iam = enforced.client("iam")
    reduced = without_action(enforced, "CalendarStreamFunction", "dynamodb:UpdateItem")
    iam.put_user_policy(UserName="CalendarStreamFunction", PolicyName=POLICY_NAME, PolicyDocument=json.dumps(reduced))
    user_id, event_id = put_event(enforced)
    record = insert_record(user_id, event_id)
    try:
        # When it handles the event
        answer = registry.invoke("CalendarStreamFunction", {"Records": [record]})
    finally:
        create_function_principals(enforced)  # the template's policies again

    # Then the write-back is refused: the record fails (to be retried, then dead-lettered), the item is unchanged
    assert answer.ok, answer.error
    assert answer.payload == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert zoom_status(enforced, user_id, event_id) is None


def test_the_public_webhook_cannot_scan_the_calendar_table(enforced: LocalResources) -> None:
    from link_zoom.adapters.aws import client

    with acting_as("ZoomWebhookFunction"), pytest.raises(ClientError) as refused:
        client("dynamodb").scan(TableName=enforced.tables["CalendarTable"])
    assert_denied(refused.value, "ZoomWebhookFunction", "dynamodb:Scan")


def test_a_function_without_statements_can_reach_nothing(enforced: LocalResources) -> None:
    from link_zoom.adapters.aws import client

    with acting_as("HealthFunction"), pytest.raises(ClientError) as refused:
        client("ssm").get_parameter(Name=enforced.resolver.parameters["FeatureFlagParameterName"])
    assert_denied(refused.value, "HealthFunction", "ssm:GetParameter")


def test_the_stacks_admin_key_still_works_while_functions_are_checked(enforced: LocalResources) -> None:
    assert enforced.client("dynamodb").describe_table(TableName=enforced.tables["CalendarTable"])["Table"]


def assert_denied(error: ClientError, user: str, action: str) -> None:
    # moto answers a JSON-protocol service's AccessDenied in IAM's XML, so botocore reports only the status
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert f"user/{user} is not authorized to perform: {action}" in error.response["Error"]["Message"]
