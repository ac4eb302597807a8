"""How long a piece of work may still take: the caller's remaining Lambda time, minus a safety margin."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

# API Gateway gives up after 29 s: an API path must answer well before, whatever the function timeout says.
API_BUDGET_S = 25.0
# Room left for the answer (logging, metrics, the write of a result) after the last outside call.
SAFETY_MARGIN_S = 1.5


class RemainingTime(Protocol):
    """The one method of a Lambda context this module needs."""

    def get_remaining_time_in_millis(self) -> int: ...


class Deadline:
    """A point in (monotonic) time after which no new outside call should start."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at = clock() + max(0.0, seconds)

    @classmethod
    def from_context(cls, context: RemainingTime | None, *, cap_s: float | None = None) -> Deadline:
        """The Lambda's remaining time minus the margin, at most `cap_s` (API paths pass API_BUDGET_S)."""
        remaining = context.get_remaining_time_in_millis() / 1000.0 if context is not None else (cap_s or API_BUDGET_S)
        seconds = remaining - SAFETY_MARGIN_S
        if cap_s is not None:
            seconds = min(seconds, cap_s)
        return cls(seconds)

    @classmethod
    def for_api(cls, context: RemainingTime | None) -> Deadline:
        return cls.from_context(context, cap_s=API_BUDGET_S)

    def remaining(self) -> float:
        return max(0.0, self._at - self._clock())
