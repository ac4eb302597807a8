"""Domain errors. Adapters translate vendor errors into these; the API layer maps them to HTTP once."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error with a contract code; `status` is the HTTP status it maps to."""

    status = 500
    code = "internal_error"
    message = "Something went wrong on our side; try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"
    message = "The request is not valid."


class InvalidTimeRange(ServiceError):
    status = 400
    code = "invalid_time_range"
    message = "The end must be after the start, and both must be valid ISO 8601 times with an offset."


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"
    message = "Sign in again: the session is missing, expired or revoked."


class InvalidCredentials(ServiceError):
    status = 401
    code = "invalid_credentials"
    message = "The username or password is not correct."


class InvalidSignature(ServiceError):
    status = 401
    code = "invalid_signature"
    message = "The webhook signature is missing, wrong or stale."


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"
    message = "Only administrators can do this."


class FeatureDisabled(ServiceError):
    status = 403
    code = "feature_disabled"
    message = "The Zoom integration is switched off for your organisation."


class ZoomAuthorizationRequired(ServiceError):
    status = 403
    code = "zoom_authorization_required"
    message = "Connect your Zoom account to continue."

    def __init__(self, authorize_url: str, message: str | None = None) -> None:
        super().__init__(message, extra={"authorize_url": authorize_url})


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    message = "There is no such item."


class IdempotencyKeyReused(ServiceError):
    """An Idempotency-Key already used for a request with another body (contract section 2: 422)."""

    status = 422
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different request; use a new key for a new request."


class RequestInProgress(ServiceError):
    """A request with the same Idempotency-Key is still being handled (it has no answer to repeat yet)."""

    status = 409
    code = "request_in_progress"
    message = "A request with this Idempotency-Key is still being handled; try again shortly."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class TooManyAttempts(ServiceError):
    status = 429
    code = "too_many_attempts"
    message = "Too many failed sign-in attempts; try again later."

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after_seconds))})


class ZoomRateLimited(ServiceError):
    status = 429
    code = "zoom_rate_limited"
    message = "Zoom is limiting requests right now; try again later."

    def __init__(self, retry_after_seconds: int, *, daily_limit: bool = False) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after_seconds))})
        self.retry_after_seconds = max(1, retry_after_seconds)
        # The user's daily meeting create/update quota is used up until Retry-After (or 00:00 UTC): the one limit
        # worth remembering per user (per-second limits are per account, and last seconds).
        self.daily_limit = daily_limit


class ZoomTokenRejected(Exception):
    """Zoom answered 401 to a stored access token (expired, or the app was removed at Zoom)."""


class ZoomGrantRevoked(Exception):
    """Zoom answered `invalid_grant`: the code or refresh token is dead (rotated out, revoked, app removed)."""


class ZoomUnavailable(ServiceError):
    status = 502
    code = "zoom_unavailable"
    message = "Zoom did not answer correctly; try again shortly."


class ZoomOutcomeUnknown(ZoomUnavailable):
    """A create reached Zoom but its answer was lost (read timeout, broken connection, unreadable 2xx):
    Zoom may have made the meeting. It is never re-sent blindly; the next attempt looks for it first."""


class ZoomRejected(ZoomUnavailable):
    """Zoom refused the request for good (a 4xx other than 401, 404 and 429): retrying will not help."""

    message = "Zoom refused the meeting change; try again later or contact your administrator."

    def __init__(self, zoom_code: int | None = None, zoom_message: str = "") -> None:
        super().__init__()
        self.zoom_code = zoom_code
        self.zoom_message = zoom_message


class ZoomMeetingNotFound(Exception):
    """Zoom no longer has the meeting (404, code 3001): deleted at Zoom or never there."""


class DirectoryUnavailable(ServiceError):
    status = 503
    code = "directory_unavailable"
    message = "The directory cannot be reached right now; try again shortly."


class ServiceUnavailable(ServiceError):
    """A part of our own configuration or platform (the token key, the feature switch) cannot be used right
    now; nothing is deleted, and the same request works once it is fixed."""

    status = 503
    code = "service_unavailable"
    message = "The service cannot reach one of its parts right now; try again shortly."


class TokenKeyUnavailable(ServiceUnavailable):
    """KMS refused the token key (access denied, disabled, pending deletion, another key id configured,
    throttled or unreachable): the stored tokens are fine, the configuration or KMS is not."""

    message = "Your Zoom connection cannot be read right now; try again shortly."


class FeatureSwitchUnavailable(ServiceUnavailable):
    """The feature switch could not be read and no recent value is known."""
