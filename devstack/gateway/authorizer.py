"""The template's TOKEN authorizer as API Gateway runs it: the header check, the function's policy matched against
the method ARN, its context handed on as strings, and the result cache (ReauthorizeEvery)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from devstack.events import method_arn, token_authorizer_event
from devstack.functions import FunctionRegistry, Invocation
from devstack.gateway.responses import Refusal
from devstack.gateway.routes import TokenAuthorizer


def policy_allows(policy: dict[str, Any], arn: str) -> bool | None:
    """True: an Allow matches and no Deny; False: an explicit Deny; None: nothing allows it."""
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        actions = _as_list(statement.get("Action"))
        if not any(a in ("*", "execute-api:*", "execute-api:Invoke") for a in actions):
            continue
        if not any(_arn_matches(pattern, arn) for pattern in _as_list(statement.get("Resource"))):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        allowed = allowed or effect == "allow"
    return True if allowed else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _arn_matches(pattern: str, arn: str) -> bool:
    """IAM's wildcards over the whole ARN: `*` any run of characters, `?` one; a decoded path may hold a newline."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn, re.DOTALL) is not None


def stringify_context(context: dict[str, Any]) -> dict[str, str]:
    """API Gateway hands the integration the authorizer's context values as strings."""
    out = {}
    for key, value in context.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[key] = str(value)
        else:
            raise TypeError(f"context value {key} is not a string, number or boolean")
    return out


@dataclass
class _CachedPolicy:
    expires: float
    principal: str
    policy: dict[str, Any]
    context: dict[str, str]


class Authorizers:
    """Runs TOKEN authorizer functions and caches their answers per (authorizer, token) for their TTL."""

    def __init__(self, registry: FunctionRegistry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, str], _CachedPolicy] = {}
        self._lock = threading.Lock()

    def authorize(
        self, authorizer: TokenAuthorizer, method: str, path: str, headers: list[tuple[str, str]]
    ) -> dict[str, Any]:
        """The requestContext.authorizer of an allowed request; Refusal otherwise."""
        wanted = authorizer.header.lower()
        token = next((v for k, v in reversed(headers) if k.lower() == wanted), "")
        if not token or (authorizer.validation and not authorizer.validation.fullmatch(token)):
            raise Refusal("UNAUTHORIZED")
        arn = method_arn(method, path)
        began = time.monotonic()
        cached = self._cached(authorizer, token)
        if cached is None:
            invocation = self.registry.invoke(authorizer.function, token_authorizer_event(token, method, path))
            cached = self._policy_from(authorizer, token, invocation)
        allowed = policy_allows(cached.policy, arn)
        if allowed is False:
            raise Refusal("ACCESS_DENIED", "User is not authorized to access this resource with an explicit deny")
        if allowed is None:
            raise Refusal("ACCESS_DENIED")
        latency_ms = int((time.monotonic() - began) * 1000)
        return {**cached.context, "principalId": cached.principal, "integrationLatency": latency_ms}

    def _cached(self, authorizer: TokenAuthorizer, token: str) -> _CachedPolicy | None:
        if authorizer.ttl_s <= 0:
            return None
        with self._lock:
            entry = self._cache.get((authorizer.name, token))
            if entry is not None and entry.expires > time.monotonic():
                return entry
            return None

    def _policy_from(self, authorizer: TokenAuthorizer, token: str, invocation: Invocation) -> _CachedPolicy:
        payload = _answer_of(invocation)
        principal = payload.get("principalId")
        try:
            context = stringify_context(payload.get("context") or {})
        except (TypeError, AttributeError):
            raise Refusal("AUTHORIZER_CONFIGURATION_ERROR") from None
        if not isinstance(principal, str | int | float):
            raise Refusal("AUTHORIZER_CONFIGURATION_ERROR")
        entry = _CachedPolicy(time.monotonic() + authorizer.ttl_s, str(principal), payload["policyDocument"], context)
        if authorizer.ttl_s > 0:
            with self._lock:
                self._cache[(authorizer.name, token)] = entry
        return entry


def _answer_of(invocation: Invocation) -> dict[str, Any]:
    """The authorizer's answer, or the refusal API Gateway makes of its failure."""
    if invocation.error is not None:
        if invocation.error.get("errorMessage") == "Unauthorized":
            raise Refusal("UNAUTHORIZED")
        raise Refusal("AUTHORIZER_FAILURE")
    if invocation.timeout:
        raise Refusal("AUTHORIZER_FAILURE")
    payload = invocation.payload
    if not isinstance(payload, dict) or not isinstance(payload.get("policyDocument"), dict):
        raise Refusal("AUTHORIZER_CONFIGURATION_ERROR")
    return payload
