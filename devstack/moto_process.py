"""The stack's local AWS in a process of its own (`devstack.aws.start_moto_process` starts it):

    python -m devstack.moto_process HOST PORT

One moto server holds every table, key, queue and parameter of template.yaml, as before; only its process is new.
It prints its endpoint URL on one line once it serves, and ends when its stdin closes (the stack ended, however
it ended) or on SIGTERM; Ctrl-C is the stack's to handle. Besides moto it runs what must run beside moto's
backends: the fidelity patches (`devstack.aws.prepare_moto`), the admin-key route (`devstack.aws.local_aws_app`)
and the shard-iterator janitor.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

# AWS shard iterators expire after 15 minutes; moto keeps every one it hands out (one per poll).
SHARD_ITERATORS_KEPT = 1000
JANITOR_INTERVAL_S = 60.0


def forget_old_shard_iterators() -> None:
    """Forget all but the newest shard iterators moto handed out (the pollers only ever use the newest)."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    # moto's threads add iterators meanwhile: a sweep that trips over one just waits for the next.
    with contextlib.suppress(RuntimeError):
        for account in list(dynamodbstreams_backends.keys()):
            for region in list(dynamodbstreams_backends[account].keys()):
                iterators = dynamodbstreams_backends[account][region].shard_iterators
                for arn in list(iterators)[:-SHARD_ITERATORS_KEPT]:
                    iterators.pop(arn, None)


def _janitor(stopping: threading.Event) -> None:
    while not stopping.wait(JANITOR_INTERVAL_S):
        forget_old_shard_iterators()


def main(argv: list[str]) -> int:
    from devstack.aws import prepare_moto, serve_local_aws

    host, port = argv[0], int(argv[1])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    # Ctrl-C reaches the whole process group: the stack stops first (its last AWS calls need this process),
    # then ends this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_moto()
    server = serve_local_aws(host, port)
    threading.Thread(target=_janitor, args=(stopping,), name="shard-iterator-janitor", daemon=True).start()

    def until_stdin_closes() -> None:
        for _ in sys.stdin:
            pass
        stopping.set()

    threading.Thread(target=until_stdin_closes, name="parent-watch", daemon=True).start()
    print(server.endpoint_url, flush=True)
    while not stopping.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
