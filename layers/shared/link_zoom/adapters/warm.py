"""Everything that work fanned out to threads shares, built once per container before it fans out.

Each piece is also built lazily under a lock on first use, so nothing breaks without this; but a fresh
container's first batch would then have its worker threads queue behind that lock while one of them parses
botocore's service models, so the fan-outs (stream batch, post-connect sweep, keeper) call this first,
through `composition.warm_for_fan_out()`.
"""

from __future__ import annotations


def warm_for_fan_out() -> None:
    """The AWS clients, the bound PynamoDB models, the SSM flag provider and the HTTP session to Zoom."""
    from link_zoom.adapters import aws, connections_store, flag, zoom_meetings, zoom_oauth

    aws.warm_clients("dynamodb", "kms", "ssm")
    connections_store.warm()
    flag.warm()
    zoom_meetings.warm()
    zoom_oauth.warm()
