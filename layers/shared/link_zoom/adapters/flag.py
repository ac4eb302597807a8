"""The organisation-wide Zoom feature switch (SSM, cached, kept through SSM failures) and the app's secrets
(SSM SecureString through powertools, cached)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from link_zoom.adapters.aws import client
from link_zoom.config import FLAG_CACHE_SECONDS, FLAG_RETRY_SECONDS, FLAG_STALE_LIMIT_SECONDS, get_settings
from link_zoom.errors import FeatureSwitchUnavailable
from link_zoom.observability import count, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

_ssm_provider: SSMProvider | None = None
_provider_lock = threading.Lock()


def _provider() -> SSMProvider:
    global _ssm_provider
    if _ssm_provider is None:
        with _provider_lock:  # one provider, hence one cache of the flag, for all worker threads
            if _ssm_provider is None:
                from aws_lambda_powertools.utilities.parameters import SSMProvider

                _ssm_provider = SSMProvider(boto3_client=client("ssm"))
    return _ssm_provider


def warm() -> None:
    """Builds the SSM client and provider now, before work fans out to threads."""
    _provider()


@dataclass(frozen=True)
class _KnownSwitch:
    enabled: bool
    read_at: float  # monotonic
    next_read: float  # monotonic: no SSM read before this


_switch: _KnownSwitch | None = None
_switch_lock = threading.Lock()
_clock = time.monotonic


def zoom_enabled() -> bool:
    """The switch, read from SSM at most once per FLAG_CACHE_SECONDS per container. A throttled or failing read
    keeps the last value read for up to FLAG_STALE_LIMIT_SECONDS (asking SSM again every FLAG_RETRY_SECONDS);
    only with no value that recent is it FeatureSwitchUnavailable (503, or a retried stream record)."""
    known = _switch
    if known is not None and _clock() < known.next_read:
        return known.enabled
    with _switch_lock:  # one read for all worker threads
        return _read_switch()


def _read_switch() -> bool:
    global _switch
    now = _clock()
    known = _switch
    if known is not None and now < known.next_read:
        return known.enabled
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = client("ssm").get_parameter(Name=get_settings().feature_flag_parameter)["Parameter"]["Value"]
    except (BotoCoreError, ClientError) as exc:
        _switch = _stale_or_unavailable(known, now, exc)
        return _switch.enabled
    enabled = str(value).strip().lower() == "true"
    _switch = _KnownSwitch(enabled, now, now + FLAG_CACHE_SECONDS)
    return enabled


def _stale_or_unavailable(known: _KnownSwitch | None, now: float, error: Exception) -> _KnownSwitch:
    count("FeatureSwitchReadFailures")
    code = str(getattr(error, "response", {}).get("Error", {}).get("Code", "")) or type(error).__name__
    if known is None or now - known.read_at > FLAG_STALE_LIMIT_SECONDS:
        logger.error("the feature switch cannot be read", extra={"ssm_error": code})
        raise FeatureSwitchUnavailable() from error
    logger.warning(
        "the feature switch cannot be read; keeping its last value",
        extra={"ssm_error": code, "age_seconds": round(now - known.read_at)},
    )
    return _KnownSwitch(known.enabled, known.read_at, now + FLAG_RETRY_SECONDS)


def forget_switch() -> None:
    """Forgets the switch's last value (a cold container; tests)."""
    global _switch
    _switch = None


def set_zoom_enabled(enabled: bool) -> bool:
    global _switch
    ssm = client("ssm")
    ssm.put_parameter(
        Name=get_settings().feature_flag_parameter,
        Value="true" if enabled else "false",
        Type="String",
        Overwrite=True,
    )
    # This container sees the change at once; the others within FLAG_CACHE_SECONDS.
    now = _clock()
    _switch = _KnownSwitch(enabled, now, now + FLAG_CACHE_SECONDS)
    return enabled


def read_secret(parameter_name: str) -> str:
    """A SecureString parameter (the Zoom app's secrets), decrypted and cached for a few minutes."""
    return str(_provider().get(parameter_name, decrypt=True, max_age=300))


def configured_secret(value: str | None, parameter_name: str | None, variable: str) -> str:
    """A Zoom app secret: the environment variable when set (local stack), else its SecureString parameter."""
    if value:
        return value
    if not parameter_name:
        raise RuntimeError(f"Set {variable} or {variable}_PARAMETER.")
    return read_secret(parameter_name)
