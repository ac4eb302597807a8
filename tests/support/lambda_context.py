"""The one fake Lambda context: the attributes powertools and the handlers read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class FakeLambdaContext:
    function_name: str = "local-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 20_000  # fixed, so that deadlines derived from it are predictable

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
