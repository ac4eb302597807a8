"""The local AWS: one moto server holding every table, key, queue and parameter that template.yaml declares."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from devstack.template import TEMPLATE_PATH, Resolver, load_template, resources_of_type

REGION = "us-east-1"
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@dataclass
class MotoServer:
    """The local AWS: in a thread of this process (tests) or in a process of its own (the stack)."""

    endpoint_url: str
    _server: Any = None
    _thread: threading.Thread | None = None
    _process: subprocess.Popen[str] | None = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # shutdown() leaves the listening socket open
            if self._thread is not None:
                self._thread.join(5)
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)


_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
_dynamodb_write_lock = threading.Lock()


def atomic_moto_dynamodb() -> None:
    """Makes moto's DynamoDB writes atomic, as DynamoDB's are. moto checks a write's condition and applies it
    without a lock: two threads' conditional writes (a claim, a login attempt counter) can then both pass.
    Clients that really run concurrently (issue 14) hit that; serialising the writes restores DynamoDB's
    guarantee. Idempotent; affects this process's moto (in-process mock_aws and the threaded server)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _DYNAMODB_WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_atomic", False):
            continue
        setattr(DynamoDBBackend, name, _serialised(method))


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def write(*args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            return method(*args, **kwargs)

    write._atomic = True  # type: ignore[attr-defined]
    return write


def fast_moto_dispatch() -> None:
    """moto's server finds the backend for every request by listing its own package folder (one `isdir` per
    service, ~150) under a lock; the answer for a host never changes, so remember it."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    find = DomainDispatcherApplication.get_backend_for_host
    if getattr(find, "_remembered", False):
        return
    known: dict[str | None, Any] = {}

    @functools.wraps(find)
    def remembered(self: Any, host: str | None) -> Any:
        if host not in known:
            known[host] = find(self, host)
        return known[host]

    remembered._remembered = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = remembered  # type: ignore[method-assign]


# A route of the local AWS that moto has no API for: the stack's admin IAM user gets its well-known key.
ADMIN_KEY_PATH = "/_devstack/iam/admin-key"


def prepare_moto() -> None:
    """What this process's moto needs before it serves: DynamoDB's atomic writes, a fast request dispatch, KMS's
    errors as AWS gives them (devstack/kms_fidelity.py), and quiet logs (it logs every request otherwise)."""
    atomic_moto_dynamodb()
    fast_moto_dispatch()
    from devstack.kms_fidelity import match_aws

    match_aws()
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)


def local_aws_app() -> Any:
    """moto's WSGI application (every service, dispatched by request) with the devstack's own route."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == ADMIN_KEY_PATH and environ.get("REQUEST_METHOD") == "POST":
            from devstack.iam import adopt_admin_key

            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            found = adopt_admin_key(str(body.get("access_key_id", "")))
            start_response("204 No Content" if found else "404 Not Found", [("Content-Length", "0")])
            return [b""]
        return moto_app(environ, start_response)

    return app


def serve_local_aws(host: str, port: int) -> MotoServer:
    """moto in server mode, in a thread of this process (after `prepare_moto`)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    server = make_server(host, port, local_aws_app(), threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="local-aws", daemon=True)
    thread.start()
    return MotoServer(endpoint_url=f"http://{host}:{server.server_port}", _server=server, _thread=thread)


def start_moto_server(host: str = "127.0.0.1", port: int = 0) -> MotoServer:
    """moto in server mode, in a thread of this process (the tests' local AWS)."""
    prepare_moto()
    return serve_local_aws(host, port)


def start_moto_process(host: str = "127.0.0.1", port: int = 0, ready_timeout_s: float = 60.0) -> MotoServer:
    """moto in server mode in a process of its own (`python -m devstack.moto_process`), the stack's local AWS.

    In the stack's process it shared one GIL with the gateway, the pollers, the emulator and the function
    processes' pipes, and a stream batch's DynamoDB requests queued behind them; as DynamoDB runs on machines
    of its own, the local one gets a process (a core) of its own. It ends with the stack however the stack ends:
    it exits when its stdin closes."""
    process = subprocess.Popen(  # this interpreter, a module of this repository
        [sys.executable, "-m", "devstack.moto_process", host, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = threading.Event()
    found: list[str] = []

    def read_endpoint() -> None:
        assert process.stdout is not None
        found.append(process.stdout.readline().strip())
        ready.set()

    threading.Thread(target=read_endpoint, name="local-aws-start", daemon=True).start()
    if not ready.wait(ready_timeout_s) or not found or not found[0].startswith("http://"):
        process.kill()
        raise RuntimeError(f"the local AWS (moto) did not start: {found[0] if found else 'no answer'}")
    return MotoServer(endpoint_url=found[0], _process=process)


@dataclass
class LocalResources:
    """Physical names of what template.yaml declares, as created in the moto server."""

    endpoint_url: str
    resolver: Resolver
    template_path: Path = TEMPLATE_PATH  # CodeUri and ContentUri paths are relative to its folder
    tables: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint_url)


def aws_client(service: str, endpoint_url: str, keys: tuple[str, str] | None = None) -> Any:
    """A client of the local AWS with the stack's admin key (`local`), or with `keys` (a function's, devstack.iam)."""
    access_key_id, secret_access_key = keys or ("local", "local")
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
    )


def provision(
    endpoint_url: str, parameters: dict[str, Any] | None = None, template_path: Path = TEMPLATE_PATH
) -> LocalResources:
    """Create every supported resource of template.yaml (or another template) in the moto server (idempotent)."""
    template = load_template(template_path)
    resolver = Resolver(template, parameters=dict(parameters or {}), region=REGION)
    found = LocalResources(endpoint_url=endpoint_url, resolver=resolver, template_path=template_path)
    _create_keys(found, template)
    _create_queues(found, template)
    _create_tables(found, template)
    _create_parameters(found, template)
    _register_functions(found, template)
    return found


def _physical_name(resolver: Resolver, logical: str) -> str:
    return f"{resolver.stack_name}-{logical}"


def _create_keys(found: LocalResources, template: dict[str, Any]) -> None:
    kms = found.client("kms")
    resolver = found.resolver
    for logical, spec in resources_of_type(template, "AWS::KMS::Key").items():
        props = spec.get("Properties") or {}
        description = f"{_physical_name(resolver, logical)}: {props.get('Description', '')}"
        existing = [
            k["KeyId"]
            for k in kms.list_keys()["Keys"]
            if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("Description") == description
        ]
        key_id = existing[0] if existing else kms.create_key(Description=description)["KeyMetadata"]["KeyId"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key_id)
        arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
        found.keys[logical] = key_id
        resolver.refs[logical] = key_id
        resolver.attributes[(logical, "Arn")] = arn
        resolver.attributes[(logical, "KeyId")] = key_id
    for logical, spec in resources_of_type(template, "AWS::KMS::Alias").items():
        props = resolver.resolve(spec["Properties"])
        aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
        if props["AliasName"] not in aliases:
            kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        resolver.refs[logical] = props["AliasName"]


def _create_queues(found: LocalResources, template: dict[str, Any]) -> None:
    sqs = found.client("sqs")
    resolver = found.resolver
    pending = dict(resources_of_type(template, "AWS::SQS::Queue"))
    # Dead-letter queues first: a redrive policy names its target's ARN.
    while pending:
        for logical, spec in list(pending.items()):
            props = spec.get("Properties") or {}
            target = (props.get("RedrivePolicy") or {}).get("deadLetterTargetArn")
            if isinstance(target, dict) and target.get("Fn::GetAtt", [None])[0] in pending:
                continue
            props = resolver.resolve(props)
            name = _physical_name(resolver, logical)
            attributes = {
                k: (json.dumps(v) if isinstance(v, dict) else str(v))
                for k, v in props.items()
                if k in {"VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds"}
            }
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            found.queues[logical] = url
            resolver.refs[logical] = url
            resolver.attributes[(logical, "Arn")] = arn
            resolver.attributes[(logical, "QueueName")] = name
            resolver.attributes[(logical, "QueueUrl")] = url
            del pending[logical]


def table_request(name: str, props: dict[str, Any], *, encrypted: bool = True) -> dict[str, Any]:
    """CreateTable's arguments for a resolved AWS::DynamoDB::Table's Properties (TTL is a call of its own).

    `encrypted=False` leaves out the SSE settings, for an AWS that holds none of the template's keys (unit tests).
    """
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    if encrypted and props.get("SSESpecification"):
        sse = props["SSESpecification"]
        request["SSESpecification"] = {
            "Enabled": bool(sse.get("SSEEnabled")),
            "SSEType": sse.get("SSEType", "KMS"),
            **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if sse.get("KMSMasterKeyId") else {}),
        }
    return request


def _create_tables(found: LocalResources, template: dict[str, Any]) -> None:
    ddb = found.client("dynamodb")
    resolver = found.resolver
    existing = set(ddb.list_tables()["TableNames"])
    for logical, spec in resources_of_type(template, "AWS::DynamoDB::Table").items():
        props = resolver.resolve(spec["Properties"])
        name = props.get("TableName") or _physical_name(resolver, logical)
        if name not in existing:
            ddb.create_table(**table_request(name, props))
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )
        description = ddb.describe_table(TableName=name)["Table"]
        found.tables[logical] = name
        resolver.refs[logical] = name
        resolver.attributes[(logical, "Arn")] = description["TableArn"]
        if description.get("LatestStreamArn"):
            resolver.attributes[(logical, "StreamArn")] = description["LatestStreamArn"]


def _create_parameters(found: LocalResources, template: dict[str, Any]) -> None:
    ssm = found.client("ssm")
    resolver = found.resolver
    for logical, spec in resources_of_type(template, "AWS::SSM::Parameter").items():
        props = resolver.resolve(spec["Properties"])
        name = props["Name"]
        try:
            ssm.get_parameter(Name=name)
        except ssm.exceptions.ParameterNotFound:
            ssm.put_parameter(Name=name, Value=str(props["Value"]), Type=props.get("Type", "String"))
        found.parameters[logical] = name
        resolver.refs[logical] = name


def _register_functions(found: LocalResources, template: dict[str, Any]) -> None:
    resolver = found.resolver
    for logical in resources_of_type(template, "AWS::Serverless::Function"):
        name = _physical_name(resolver, logical)
        resolver.refs[logical] = name
        resolver.attributes[(logical, "Arn")] = (
            f"arn:aws:lambda:{resolver.region}:{resolver.account_id}:function:{name}"
        )
    for logical in resources_of_type(template, "AWS::Serverless::Api"):
        resolver.refs[logical] = "local"


def put_secure_parameter(found: LocalResources, name: str, value: str) -> None:
    """Out-of-band secrets (the Zoom app's) as SecureString, the way the deploy guide creates them."""
    found.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def function_environment(found: LocalResources, logical: str) -> dict[str, str]:
    """A function's environment as Lambda would give it: Globals merged with its own, resolved."""
    template = found.resolver.template
    global_vars = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get(
        "Variables"
    ) or {}
    spec = template["Resources"][logical]
    own = ((spec.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
    merged = {**global_vars, **own}
    env = {k: "" if v is None else str(found.resolver.resolve(v)) for k, v in merged.items()}
    env.update(LOCAL_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = found.endpoint_url
    env["AWS_LAMBDA_FUNCTION_NAME"] = _physical_name(found.resolver, logical)
    return env


def stack_environment(found: LocalResources) -> dict[str, str]:
    """The union of every function's environment (they run in one process locally); conflicts are errors."""
    union: dict[str, str] = {}
    for logical in resources_of_type(found.resolver.template, "AWS::Serverless::Function"):
        for key, value in function_environment(found, logical).items():
            if key in {"AWS_LAMBDA_FUNCTION_NAME"}:
                continue
            if key in union and union[key] != value:
                raise ValueError(f"functions disagree on {key}; give it one value in template.yaml")
            union[key] = value
    return union


def apply_environment(env: dict[str, str]) -> None:
    """Put a stack environment into os.environ, leaving contract section 4 overrides the caller set."""
    os.environ.update(env)
