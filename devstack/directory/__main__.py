"""`python -m devstack.directory ensure|stop [--state-dir DIR]`.

`ensure` prints the DirectoryInfo as JSON, passwords included: the demo users are meant to be shown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import DEFAULT_STATE_DIR, DirectoryError, start_or_reuse, stop_directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.directory", description=__doc__)
    parser.add_argument("command", choices=["ensure", "stop"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    parser.add_argument("--no-install", action="store_true", help="fail instead of apt-get installing Samba")
    args = parser.parse_args(argv)
    try:
        if args.command == "ensure":
            began = time.monotonic()
            info, started = start_or_reuse(args.state_dir, install=not args.no_install)
            print(json.dumps(info.to_dict(), indent=2))
            verb = "started" if started else "reused"
            print(f"demo directory {verb} in {time.monotonic() - began:.1f} s", file=sys.stderr)
        else:
            stopped = stop_directory(args.state_dir)
            print("stopped" if stopped else "not running", file=sys.stderr)
    except DirectoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
