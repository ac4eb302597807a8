"""Answers kept per Idempotency-Key: powertools idempotency on the Idempotency table (the meetings' OncePort)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from link_zoom.adapters.aws import client
from link_zoom.deadline import SAFETY_MARGIN_S, Deadline
from link_zoom.domain.meetings import StillRunning
from link_zoom.errors import IdempotencyKeyReused


@dataclass(frozen=True)
class _Remaining:
    """What powertools asks of a Lambda context: an in-progress record expires when the request's time is up."""

    deadline: Deadline

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline.remaining() + SAFETY_MARGIN_S) * 1000)


@dataclass(frozen=True)
class _Once:
    run: Callable[..., dict[str, Any]]
    config: Any


class IdempotencyStore:
    def __init__(self, table_name: str, expires_after_s: int) -> None:
        self._table_name = table_name
        self._expires_after_s = expires_after_s

    def run(
        self,
        scope: dict[str, str],
        request: dict[str, Any],
        compute: Callable[[], dict[str, Any]],
        deadline: Deadline,
    ) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        once = _idempotent(self._table_name, self._expires_after_s, client("dynamodb"))
        once.config.register_lambda_context(_Remaining(deadline))
        try:
            return once.run(compute=compute, idempotency_data={"scope": scope, "request": request})
        except IdempotencyAlreadyInProgressError as exc:
            raise StillRunning() from exc
        except IdempotencyValidationError as exc:
            raise IdempotencyKeyReused() from exc


@cache
def _idempotent(table_name: str, expires_after_s: int, dynamodb: Any) -> _Once:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    # The record's key is the scope (user, Idempotency-Key); the request is kept as a hash and must match.
    config = IdempotencyConfig(
        event_key_jmespath="scope", payload_validation_jmespath="request", expires_after_seconds=expires_after_s
    )
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb)

    # Only `idempotency_data` is the record's key and payload; `compute` is the work behind it.
    @idempotent_function(data_keyword_argument="idempotency_data", persistence_store=persistence, config=config)
    def run_once(*, compute: Callable[[], dict[str, Any]], idempotency_data: dict[str, str]) -> dict[str, Any]:
        return compute()

    return _Once(run_once, config)
