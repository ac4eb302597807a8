"""The organisation-wide Zoom feature switch and the app's secrets: SSM through powertools, with short caches."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from link_zoom.adapters.aws import client
from link_zoom.config import FLAG_CACHE_SECONDS, get_settings

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


def zoom_enabled() -> bool:
    value = _provider().get(get_settings().feature_flag_parameter, max_age=FLAG_CACHE_SECONDS)
    return str(value).strip().lower() == "true"


def set_zoom_enabled(enabled: bool) -> bool:
    ssm = client("ssm")
    ssm.put_parameter(
        Name=get_settings().feature_flag_parameter,
        Value="true" if enabled else "false",
        Type="String",
        Overwrite=True,
    )
    _provider().clear_cache()
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
