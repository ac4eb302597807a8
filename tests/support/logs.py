"""Every log line of this process while a block runs: the service's JSON lines and every library's DEBUG lines,
for tests that prove no token, code or secret is ever logged."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def all_log_lines(into: io.StringIO) -> Iterator[None]:
    """Writes every log line meanwhile to `into`: the service's logger with its JSON formatter, and the root logger
    at DEBUG (botocore, urllib3, requests_oauthlib, ...); the levels and handlers are put back afterwards."""
    from link_zoom.observability import logger

    service = logging.StreamHandler(into)
    service.setFormatter(logger.registered_formatter)
    libraries = logging.StreamHandler(into)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(libraries)
    logger.addHandler(service)
    try:
        yield
    finally:
        logging.getLogger(logger.name).removeHandler(service)
        root.removeHandler(libraries)
        root.setLevel(level)
