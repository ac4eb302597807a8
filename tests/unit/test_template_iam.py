"""template.yaml's IAM, read statically: what moto's enforcement cannot check (resources, conditions, key policies).

tests/integration/devstack/test_function_policies.py proves the actions at run time; this pins the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.iam import template_policy
from devstack.template import Resolver, load_template, resources_of_type
from link_zoom.adapters.crypto import PURPOSE

TEMPLATE = load_template()
RESOLVER = Resolver(TEMPLATE, parameters={})  # unprovisioned: GetAtt X.Arn stays "X.Arn", which names the resource

ITEM_RW = {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}
STREAM_READ = {"DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"}
SQS_CONSUME = {"ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes"}

# A function that calls Zoom for a user: the user's connection (read, its tokens refreshed, dropped with its
# preference row once Zoom revoked it), the app's client secret, the token key.
ZOOM_FOR_A_USER: dict[str, set[str]] = {
    "ZoomConnectionsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
    "PreferencesTable": {"dynamodb:DeleteItem"},
    "/link/zoom/client-secret": {"ssm:GetParameter"},
    "TokenKey": {"kms:Decrypt", "kms:GenerateDataKey"},
}
# ... and one that keeps events' meetings: their link rows, and the feature switch.
MEETINGS_FOR_A_USER: dict[str, set[str]] = ZOOM_FOR_A_USER | {
    "MeetingLinksTable": {f"dynamodb:{a}" for a in ITEM_RW | {"Query"}},
    "/link/zoom/enabled": {"ssm:GetParameter"},
}

# {function: {resource (logical id or parameter name): actions}}: exactly what each function uses.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "HealthFunction": {},
    "AuthorizerFunction": {"SessionsTable": {"dynamodb:GetItem"}, "StorageKey": {"kms:Decrypt"}},
    "SessionFunction": {
        "SessionsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "LoginAttemptsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "FeaturesFunction": {
        "ZoomConnectionsTable": {"dynamodb:GetItem"},
        "StorageKey": {"kms:Decrypt"},
        "/link/zoom/enabled": {"ssm:GetParameter", "ssm:PutParameter"},
    },
    "AccountFunction": {
        "PreferencesTable": {"dynamodb:Query", "dynamodb:DeleteItem"},
        "ZoomConnectionsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "/link/zoom/client-secret": {"ssm:GetParameter"},
        "TokenKey": {"kms:Decrypt", "kms:GenerateDataKey"},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "ZoomOAuthFunction": {
        "OAuthStatesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "ZoomConnectionsTable": {"dynamodb:PutItem", "dynamodb:DeleteItem"},
        "PreferencesTable": {"dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "/link/zoom/enabled": {"ssm:GetParameter"},
        "/link/zoom/client-secret": {"ssm:GetParameter"},
        "TokenKey": {"kms:GenerateDataKey"},
        "ConnectSweepQueue": {"sqs:SendMessage"},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "ZoomWebhookFunction": {
        "ZoomConnectionsTable": {"dynamodb:Query", "dynamodb:DeleteItem"},
        "PreferencesTable": {"dynamodb:DeleteItem"},
        "MeetingLinksTable": {"dynamodb:Query", "dynamodb:DeleteItem"},
        "CalendarTable": {"dynamodb:UpdateItem"},
        "/link/zoom/webhook-secret": {"ssm:GetParameter"},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "MeetingsFunction": {
        **MEETINGS_FOR_A_USER,
        "IdempotencyTable": {f"dynamodb:{a}" for a in ITEM_RW},
        "OAuthStatesTable": {"dynamodb:PutItem"},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "CalendarStreamFunction": {
        "CalendarTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"}
        | {f"dynamodb:{a}" for a in STREAM_READ},
        **MEETINGS_FOR_A_USER,
        "CalendarStreamDLQ": {"sqs:SendMessage"},
        "EventWorkQueue": {"sqs:SendMessage"},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "EventWorkFunction": {
        "CalendarTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"}
        | {"dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"},
        **MEETINGS_FOR_A_USER,
        "CalendarStreamDLQ": {f"sqs:{a}" for a in SQS_CONSUME},
        "EventWorkQueue": {f"sqs:{a}" for a in SQS_CONSUME | {"SendMessage"}},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "ConnectSweepFunction": {
        "CalendarTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"},
        **MEETINGS_FOR_A_USER,
        "ConnectSweepQueue": {f"sqs:{a}" for a in SQS_CONSUME},
        "EventWorkQueue": {"sqs:SendMessage"},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "TokenKeeperFunction": {
        "ZoomConnectionsTable": {"dynamodb:Scan"},
        "TokenRefreshQueue": {"sqs:SendMessage"},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "TokenRefreshFunction": {
        **ZOOM_FOR_A_USER,
        "TokenRefreshQueue": {f"sqs:{a}" for a in SQS_CONSUME},
        "StorageKey": {"kms:Decrypt", "kms:GenerateDataKey"},
    },
    "DlqReplayFunction": {
        "CalendarStreamDLQ": {f"sqs:{a}" for a in SQS_CONSUME},
        "CalendarTable": {f"dynamodb:{a}" for a in STREAM_READ},
        "CalendarStreamFunction": {"lambda:InvokeFunction"},
        "StorageKey": {"kms:Decrypt"},
    },
}


def resource_name(arn: str) -> str:
    """The logical id in an unprovisioned ARN ("CalendarTable.Arn/index/*" → CalendarTable), or the parameter."""
    if ":parameter/" in arn:
        return arn.split(":parameter", 1)[1]
    return arn.split(".", 1)[0]


def grants(logical: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for statement in template_policy(TEMPLATE, RESOLVER, logical)["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources, f"{logical}: a statement on every resource"
        for resource in resources:
            found.setdefault(resource_name(resource), set()).update(statement["Action"])
    return found


def statements_on(logical: str, key: str) -> list[dict[str, Any]]:
    return [
        s
        for s in template_policy(TEMPLATE, RESOLVER, logical)["Statement"]
        if any(resource_name(r) == key for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]))
    ]


FUNCTIONS = sorted(resources_of_type(TEMPLATE, "AWS::Serverless::Function"))


def test_every_function_has_an_expected_policy() -> None:
    assert sorted(EXPECTED) == FUNCTIONS


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_each_function_gets_exactly_what_it_uses(logical: str) -> None:
    assert grants(logical) == EXPECTED[logical]


def test_the_calendar_table_is_never_scanned_deleted_from_or_written_whole() -> None:
    for logical in FUNCTIONS:
        on_calendar = grants(logical).get("CalendarTable", set()) - {f"dynamodb:{a}" for a in STREAM_READ}
        assert on_calendar <= {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"}, logical
    assert grants("ZoomWebhookFunction")["CalendarTable"] == {"dynamodb:UpdateItem"}


@pytest.mark.parametrize("logical", [f for f in FUNCTIONS if "TokenKey" in EXPECTED[f]])
def test_token_key_use_is_tied_to_the_zoom_token_purpose(logical: str) -> None:
    for statement in statements_on(logical, "TokenKey"):
        assert statement["Condition"] == {"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE}}


@pytest.mark.parametrize("logical", [f for f in FUNCTIONS if "StorageKey" in EXPECTED[f]])
def test_storage_key_use_goes_through_the_tables_and_queues_only(logical: str) -> None:
    allowed = {"dynamodb.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com"}
    for statement in statements_on(logical, "StorageKey"):
        services = set(statement["Condition"]["StringEquals"]["kms:ViaService"])
        assert services and services <= allowed


def key_policy(logical: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = RESOLVER.resolve(TEMPLATE["Resources"][logical]["Properties"]["KeyPolicy"])[
        "Statement"
    ]
    return statements


def test_key_policies_are_conditioned() -> None:
    storage = {s["Sid"]: s for s in key_policy("StorageKey")}
    assert storage["ServicesOfThisAccount"]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert "lambda.amazonaws.com" not in storage["ServicesOfThisAccount"]["Principal"]["Service"]
    outside = storage["DenyUseOutsideTablesAndQueues"]
    assert outside["Effect"] == "Deny"
    assert set(outside["Condition"]["StringNotEquals"]["kms:ViaService"]) == {
        "dynamodb.us-east-1.amazonaws.com",
        "sqs.us-east-1.amazonaws.com",
    }
    token = {s["Sid"]: s for s in key_policy("TokenKey")}
    purpose = token["DenyUseWithoutZoomTokenPurpose"]
    assert purpose["Effect"] == "Deny"
    assert purpose["Condition"] == {"StringNotEquals": {"kms:EncryptionContext:purpose": PURPOSE}}


def test_the_sign_in_waf_is_optional_and_limits_post_session_per_address() -> None:
    acl = TEMPLATE["Resources"]["ApiWebAcl"]
    assert acl["Condition"] == TEMPLATE["Resources"]["ApiWebAclAssociation"]["Condition"] == "UseSignInWaf"
    assert TEMPLATE["Parameters"]["SignInWafLimit"]["Default"] == 0  # off unless a deployment asks for it
    assert Resolver(TEMPLATE, parameters={"SignInWafLimit": 0}).condition("UseSignInWaf") is False
    assert Resolver(TEMPLATE, parameters={"SignInWafLimit": 100}).condition("UseSignInWaf") is True
    (rule,) = acl["Properties"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert (rate["AggregateKeyType"], rate["Limit"]) == ("IP", {"Ref": "SignInWafLimit"})
    matches = {
        m["ByteMatchStatement"]["SearchString"] for m in rate["ScopeDownStatement"]["AndStatement"]["Statements"]
    }
    assert matches == {"/v1/session", "POST"}
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429


def test_no_role_gets_a_managed_policy_beyond_logs_and_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    """SAM adds AWSLambdaDynamoDBExecutionRole / AWSLambdaSQSQueueExecutionRole (on every stream or queue) to a
    function with an event source and Policies: those functions have their own roles instead."""
    import re

    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    source = (Path(__file__).parents[2] / "template.yaml").read_text()
    # The translator wants packaged code; the code's location does not change the roles.
    source = re.sub(r"(CodeUri|ContentUri): \S+", r"\1: s3://bucket/code.zip", source)

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    translated = transform(yaml_parse(source), {}, NoManagedPolicies())
    allowed = {"service-role/AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}
    roles = {n: r for n, r in translated["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert len(roles) == len(FUNCTIONS)
    for name, role in roles.items():
        # The session function may join the directory's VPC (its ENIs need the VPC access policy).
        mine = allowed | ({"service-role/AWSLambdaVPCAccessExecutionRole"} if name == "SessionFunctionRole" else set())
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = arn if isinstance(arn, str) else arn["Fn::Sub"]  # ours are !Sub with the partition
            assert text.split(":policy/", 1)[1] in mine, (name, arn)
