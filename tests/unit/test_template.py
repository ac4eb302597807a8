"""What the foundation issue asks of template.yaml, checked on the template itself."""

from __future__ import annotations

from devstack.template import Resolver, load_template, resources_of_type

TEMPLATE = load_template()


def test_calendar_table_is_exactly_the_contracts() -> None:
    table = TEMPLATE["Resources"]["CalendarTable"]["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": "user_id", "KeyType": "HASH"},
        {"AttributeName": "event_id", "KeyType": "RANGE"},
    ]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_every_table_is_encrypted_with_our_key_and_recoverable() -> None:
    for name, spec in resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").items():
        props = spec["Properties"]
        assert props["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "StorageKey"}, name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name


def test_keys_rotate() -> None:
    for name, spec in resources_of_type(TEMPLATE, "AWS::KMS::Key").items():
        assert spec["Properties"]["EnableKeyRotation"] is True, name


def test_stream_mapping_retries_bisects_and_has_a_dead_letter_queue() -> None:
    event = TEMPLATE["Resources"]["CalendarStreamFunction"]["Properties"]["Events"]["CalendarStream"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["BisectBatchOnFunctionError"] is True
    assert 0 < event["MaximumRetryAttempts"] <= 10
    assert event["MaximumRecordAgeInSeconds"] > 0
    assert event["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["CalendarStreamDLQ", "Arn"]}


def test_api_facing_functions_time_out_below_api_gateway() -> None:
    default = TEMPLATE["Globals"]["Function"]["Timeout"]
    for name, spec in resources_of_type(TEMPLATE, "AWS::Serverless::Function").items():
        events = (spec["Properties"].get("Events") or {}).values()
        if any(e["Type"] == "Api" for e in events) or name == "AuthorizerFunction":
            assert spec["Properties"].get("Timeout", default) < 29, name


def test_authorizer_has_no_result_cache_so_revocation_is_immediate() -> None:
    auth = TEMPLATE["Resources"]["LinkApi"]["Properties"]["Auth"]
    assert auth["Authorizers"]["SessionAuthorizer"]["Identity"]["ReauthorizeEvery"] == 0


def test_no_secret_value_in_the_template() -> None:
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert "ZOOM_CLIENT_SECRET" not in env and "ZOOM_WEBHOOK_SECRET" not in env
    assert env["ZOOM_CLIENT_SECRET_PARAMETER"] == {"Ref": "ZoomClientSecretParameterName"}


def test_resolver_evaluates_intrinsics() -> None:
    resolver = Resolver(TEMPLATE, stack_name="s")
    resolver.refs["LinkApi"] = "abc"
    assert resolver.resolve({"Fn::Sub": "${AWS::StackName}-api"}) == "s-api"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "/link/zoom/enabled"]}]}) == "link"
    assert resolver.condition("UseVpc") is False
    assert resolver.resolve({"Fn::If": ["UseVpc", "a", "b"]}) == "b"
