"""The two error shapes Zoom answers with: OAuth's `{"reason", "error"}` and the REST API's `{"code", "message"}`."""

from __future__ import annotations

from typing import Any


class OAuthError(Exception):
    """An answer of zoom.us/oauth/*: `{"reason": ..., "error": ...}`."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason

    def body(self) -> dict[str, Any]:
        return {"reason": self.reason, "error": self.error}


class ApiError(Exception):
    """An answer of api.zoom.us/v2: `{"code": ..., "message": ...}`, optionally with field errors."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid_field(field: str, detail: str) -> ApiError:
    """Zoom's validation failure (code 300) naming the offending field."""
    return ApiError(400, 300, "Invalid field.", errors=[{"field": field, "message": detail}])


def invalid_body() -> ApiError:
    return ApiError(400, 300, "Request Body should be a valid JSON object.")


def invalid_access_token() -> ApiError:
    return ApiError(401, 124, "Invalid access token.")


def meeting_not_found(meeting_id: str | int) -> ApiError:
    return ApiError(404, 3001, f"Meeting does not exist: {meeting_id}.")
