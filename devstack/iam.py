"""Every function runs locally under its own template policy: moto's IAM enforcement, one IAM user per function.

template.yaml gives each function plain policy statements. `create_function_principals` makes an IAM user per
function on the moto server with those statements as its inline policy and an access key; `FunctionCredentials`
signs each AWS request with the keys of the function the calling thread (or task) serves, so functions that
share this process still act as themselves; `set_enforcement` switches moto's IAM checks on (server mode's
`/moto-api/reset-auth`, the same switch as the INITIAL_NO_AUTH_ACTION_COUNT variable).

What moto 5 checks (moto/core/authorization.py, moto/iam/access_control.py), and so what this proves:
- the signature and the access key (an unknown key is InvalidClientTokenId);
- the action (`dynamodb:UpdateItem`, `kms:Decrypt`, `ssm:GetParameter`, `sqs:SendMessage`, ...) against the
  user's policies, explicit Deny first;
- the resource only for SQS (the queue's ARN). DynamoDB, KMS, SSM and Lambda requests are checked against "*":
  a statement naming a table or key ARN would never match, so locally such statements apply to every resource
  of their actions (the template keeps the ARNs; `tests/unit/test_template_iam.py` checks them statically);
- no condition keys: moto evaluates an identity policy's Condition against an empty request context (every
  conditioned statement would deny), so conditions are dropped locally, and key policies (resource policies)
  are not evaluated at all. `kms:ViaService` and `kms:EncryptionContext:purpose` are checked statically only.
"""

from __future__ import annotations

import contextvars
import json
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from botocore.credentials import CredentialProvider, Credentials, ReadOnlyCredentials

from devstack.aws import ADMIN_KEY_PATH
from devstack.template import resources_of_type

FUNCTION_TYPE = "AWS::Serverless::Function"
ADMIN_USER = "devstack-admin"
# The stack's own tools and the tests sign with these; moto issues random key ids, so the admin's key is renamed.
ADMIN_KEYS = ("local", "local")
POLICY_NAME = "template-policy"

# IAM authorizes SQS's batch calls with the single action; moto checks them by their own name.
_SQS_BATCH_ACTIONS = {
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}

# Which template function the running code serves; set by the local function runner (devstack.functions).
current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_function", default=None)


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str


def template_policy(template: dict[str, Any], resolver: Any, logical: str) -> dict[str, Any]:
    """The function's policy as the template states it, intrinsics resolved: its Policies (plain statements only)
    or, for a function with a Role of the template, that role's inline policies."""
    props = template["Resources"][logical].get("Properties") or {}
    role = props.get("Role")
    if role is not None:
        return _role_policy(template, resolver, logical, role)
    statements: list[dict[str, Any]] = []
    for entry in props.get("Policies") or []:
        if not isinstance(entry, dict) or set(entry) != {"Statement"}:
            raise ValueError(f"{logical}: give Policies as plain statements, not {entry!r}")
        statements.extend(resolver.resolve(entry["Statement"]))
    return {"Version": "2012-10-17", "Statement": statements}


def _role_policy(template: dict[str, Any], resolver: Any, logical: str, role: Any) -> dict[str, Any]:
    role_logical = (role.get("Fn::GetAtt") or [None])[0] if isinstance(role, dict) else None
    if role_logical not in template["Resources"]:
        raise ValueError(f"{logical}: only a Role of this template (!GetAtt <Role>.Arn) can run locally")
    policies = (template["Resources"][role_logical].get("Properties") or {}).get("Policies") or []
    statements = [st for p in policies for st in resolver.resolve(p["PolicyDocument"]["Statement"])]
    return {"Version": "2012-10-17", "Statement": statements}


def local_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """What moto can evaluate of a policy: resources only for SQS, no conditions (see the module's notes)."""
    statements = []
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        actions = actions + [_SQS_BATCH_ACTIONS[a] for a in actions if a in _SQS_BATCH_ACTIONS]
        resource = statement["Resource"] if all(a.startswith("sqs:") for a in actions) else "*"
        statements.append({"Effect": statement["Effect"], "Action": actions, "Resource": resource})
    return {"Version": "2012-10-17", "Statement": statements}


def create_function_principals(found: Any) -> dict[str, AccessKey]:
    """One IAM user per template function with its policy and an access key, plus the stack's admin (idempotent)."""
    iam = found.client("iam")
    _ensure_admin(iam)
    keys: dict[str, AccessKey] = {}
    template = found.resolver.template
    for logical in resources_of_type(template, FUNCTION_TYPE):
        policy = local_policy(template_policy(template, found.resolver, logical))
        _ensure_user(iam, logical)
        if policy["Statement"]:
            iam.put_user_policy(UserName=logical, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
        else:
            # No statements: no AWS call is allowed (the health function).
            _delete_policy(iam, logical)
        for old in iam.list_access_keys(UserName=logical)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=logical, AccessKeyId=old["AccessKeyId"])
        made = iam.create_access_key(UserName=logical)["AccessKey"]
        keys[logical] = AccessKey(made["AccessKeyId"], made["SecretAccessKey"])
    return keys


def _ensure_user(iam: Any, name: str) -> None:
    try:
        iam.get_user(UserName=name)
    except iam.exceptions.NoSuchEntityException:
        iam.create_user(UserName=name)


def _delete_policy(iam: Any, name: str) -> None:
    with suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_user_policy(UserName=name, PolicyName=POLICY_NAME)


def _ensure_admin(iam: Any) -> None:
    """The admin user whose key is `local`/`local`: the stack's provisioning, pollers, tests and people."""
    _ensure_user(iam, ADMIN_USER)
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="admin", PolicyDocument=json.dumps(everything))
    if iam.list_access_keys(UserName=ADMIN_USER)["AccessKeyMetadata"]:
        return
    made = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    # moto picks random key ids; the local AWS gives this one the well-known id (devstack.aws.local_aws_app).
    request = urllib.request.Request(
        f"{iam.meta.endpoint_url}{ADMIN_KEY_PATH}",
        data=json.dumps({"access_key_id": made["AccessKeyId"]}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # nosec B310  # the local AWS's URL
        answer.read()


def adopt_admin_key(access_key_id: str) -> bool:
    """Inside the local AWS's process: the admin's key `access_key_id` becomes the well-known `local`/`local`."""
    from moto.iam.models import iam_backends

    found = False
    for backend in iam_backends.values():
        for partition in backend.values():
            user = partition.users.get(ADMIN_USER)
            for key in user.access_keys if user else []:
                if key.access_key_id == access_key_id:
                    key.access_key_id, key.secret_access_key = ADMIN_KEYS
                    found = True
    return found


def set_enforcement(endpoint_url: str, enabled: bool) -> None:
    """moto's IAM checks on (every request after this one) or off."""
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth",
        data=b"0" if enabled else b"inf",
        headers={"Content-Type": "text/plain"},  # a form body would be parsed away before moto reads it
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:  # nosec B310  # the local moto server's URL
        answer.read()


class FunctionCredentials(Credentials):
    """Credentials that are, at each signing, those of the function the running code serves (else the admin's)."""

    def __init__(self, keys: Mapping[str, AccessKey]) -> None:
        super().__init__(*ADMIN_KEYS)
        self._keys = keys
        self.method = "devstack-function"

    def _now(self) -> AccessKey:
        logical = current_function.get()
        return self._keys.get(logical, AccessKey(*ADMIN_KEYS)) if logical else AccessKey(*ADMIN_KEYS)

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        keys = self._now()
        return ReadOnlyCredentials(keys.access_key_id, keys.secret_access_key, None)


class _FunctionCredentialProvider(CredentialProvider):
    METHOD = "devstack-function"
    CANONICAL_NAME = "DevstackFunction"

    def __init__(self, credentials: FunctionCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


@contextmanager
def function_credentials(keys: Mapping[str, AccessKey]) -> Iterator[None]:
    """While open, every botocore session made in this process signs as the current function.

    boto3's, pynamodb's and powertools' clients each make their own session; they all resolve credentials
    through botocore's resolver chain, so the per-function provider goes first in that chain.
    """
    import boto3
    import botocore.credentials

    original: Callable[..., Any] = botocore.credentials.create_credential_resolver
    credentials = FunctionCredentials(keys)

    def resolver_with_functions(*args: Any, **kwargs: Any) -> Any:
        resolver = original(*args, **kwargs)
        resolver.insert_before("env", _FunctionCredentialProvider(credentials))
        return resolver

    botocore.credentials.create_credential_resolver = resolver_with_functions
    boto3.DEFAULT_SESSION = None  # a session made earlier has resolved its credentials already
    try:
        yield
    finally:
        botocore.credentials.create_credential_resolver = original
        boto3.DEFAULT_SESSION = None


@contextmanager
def acting_as(logical: str | None) -> Iterator[None]:
    """Run the enclosed code as the template function `logical` (the local runner does this per invocation)."""
    token = current_function.set(logical)
    try:
        yield
    finally:
        current_function.reset(token)
