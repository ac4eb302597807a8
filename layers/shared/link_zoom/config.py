"""The service's configuration: read from the environment once, when a handler first needs it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

# Below API Gateway's 29 s integration timeout, with room for a retry.
ZOOM_CONNECT_TIMEOUT_S = 3.05
ZOOM_READ_TIMEOUT_S = 8.0
# A create is never re-sent after it may have reached Zoom (it could make a second meeting), so it waits longer.
ZOOM_CREATE_READ_TIMEOUT_S = 20.0
LDAP_CONNECT_TIMEOUT_S = 3.0
LDAP_RECEIVE_TIMEOUT_S = 5.0
DYNAMODB_CONNECT_TIMEOUT_S = 2.0
DYNAMODB_READ_TIMEOUT_S = 5.0
# The feature switch is read from SSM at most once a minute per warm container: 1,000 containers make at most
# 16.7 GetParameter/s, well inside SSM's default 40/s (docs/deploy.md). A failed read keeps the last value for
# up to 15 minutes, asking again every 5 s, instead of failing requests and stream records.
FLAG_CACHE_SECONDS = 60
FLAG_STALE_LIMIT_SECONDS = 900
FLAG_RETRY_SECONDS = 5


@dataclass(frozen=True)
class Settings:
    region: str
    calendar_table: str
    sessions_table: str
    login_attempts_table: str
    connections_table: str
    oauth_states_table: str
    meeting_links_table: str
    preferences_table: str
    idempotency_table: str
    token_key_id: str
    sweep_queue_url: str
    feature_flag_parameter: str
    zoom_client_id: str
    zoom_client_secret: str | None
    zoom_client_secret_parameter: str | None
    zoom_webhook_secret: str | None
    zoom_webhook_secret_parameter: str | None
    zoom_oauth_base_url: str
    zoom_api_base_url: str
    zoom_redirect_url: str | None
    ldap_url: str
    ldap_base_dn: str
    ldap_admin_group_dn: str
    ldap_ca_file: str | None
    aws_endpoint_url: str | None
    session_ttl_seconds: int = 12 * 3600
    # Events of one stream batch worked on at once (1: one after another, the benchmark's baseline).
    stream_workers: int = 16
    # Only the DLQ replay function has these (template.yaml gives them to it alone).
    calendar_stream_dlq_url: str = ""
    calendar_stream_function: str = ""
    # The per-event work queue (the calendar's self-healing: failed records, rate-limited events, sweeps).
    event_work_queue_url: str = ""
    # The keeper's refresh queue (TokenKeeperFunction queues, TokenRefreshFunction refreshes).
    refresh_queue_url: str = ""

    @classmethod
    def from_environ(cls, env: dict[str, str] | os._Environ[str] = os.environ) -> Settings:
        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            calendar_table=env.get("CALENDAR_TABLE", ""),
            sessions_table=env.get("SESSIONS_TABLE", ""),
            login_attempts_table=env.get("LOGIN_ATTEMPTS_TABLE", ""),
            connections_table=env.get("CONNECTIONS_TABLE", ""),
            oauth_states_table=env.get("OAUTH_STATES_TABLE", ""),
            meeting_links_table=env.get("MEETING_LINKS_TABLE", ""),
            preferences_table=env.get("PREFERENCES_TABLE", ""),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", ""),
            token_key_id=env.get("TOKEN_KEY_ID", ""),
            sweep_queue_url=env.get("SWEEP_QUEUE_URL", ""),
            feature_flag_parameter=opt("FEATURE_FLAG_PARAMETER") or "/link/zoom/enabled",
            zoom_client_id=env.get("ZOOM_CLIENT_ID", ""),
            zoom_client_secret=opt("ZOOM_CLIENT_SECRET"),
            zoom_client_secret_parameter=opt("ZOOM_CLIENT_SECRET_PARAMETER"),
            zoom_webhook_secret=opt("ZOOM_WEBHOOK_SECRET"),
            zoom_webhook_secret_parameter=opt("ZOOM_WEBHOOK_SECRET_PARAMETER"),
            zoom_oauth_base_url=(opt("ZOOM_OAUTH_BASE_URL") or "https://zoom.us").rstrip("/"),
            zoom_api_base_url=(opt("ZOOM_API_BASE_URL") or "https://api.zoom.us/v2").rstrip("/"),
            zoom_redirect_url=opt("ZOOM_REDIRECT_URL"),
            ldap_url=env.get("LDAP_URL", ""),
            ldap_base_dn=env.get("LDAP_BASE_DN", ""),
            ldap_admin_group_dn=env.get("LDAP_ADMIN_GROUP_DN", ""),
            ldap_ca_file=opt("LDAP_CA_FILE"),
            aws_endpoint_url=opt("AWS_ENDPOINT_URL"),
            calendar_stream_dlq_url=env.get("CALENDAR_STREAM_DLQ_URL", ""),
            calendar_stream_function=env.get("CALENDAR_STREAM_FUNCTION", ""),
            stream_workers=_whole_number(opt("STREAM_WORKERS"), default=16, least=1),
            event_work_queue_url=env.get("EVENT_WORK_QUEUE_URL", ""),
            refresh_queue_url=env.get("REFRESH_QUEUE_URL", ""),
        )


def _whole_number(value: str | None, *, default: int, least: int) -> int:
    try:
        return max(least, int(value)) if value is not None else default
    except ValueError:
        return default


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environ()
