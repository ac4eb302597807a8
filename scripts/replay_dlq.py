"""Replays the calendar stream's dead-letter queue on the running local stack (`make replay-dlq`).

    python scripts/replay_dlq.py [--state-dir .local]

Invokes DlqReplayFunction through the running stack's Lambda Invoke API (as an operator would invoke it in
AWS after the CalendarStreamDLQ alarm) and prints its summary as JSON. Exit status: 0 when the queue was
emptied, 2 when messages remain (records that failed again, expired or unreadable ones), 1 on an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "shared")]

from devstack.run import invoke_function  # noqa: E402 - after the path set-up, for a plain `python scripts/...`


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=str(ROOT / ".local"), help="the running stack's state dir")
    args = parser.parse_args(argv)
    payload, failed = invoke_function("DlqReplayFunction", {}, Path(args.state_dir).resolve())
    print(json.dumps(payload, indent=2))
    if failed:
        return 1
    remaining = sum(int(payload.get(name, 0)) for name in ("kept", "unreadable", "expired"))
    return 2 if remaining else 0


if __name__ == "__main__":
    raise SystemExit(main())
