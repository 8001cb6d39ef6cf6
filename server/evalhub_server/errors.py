"""Errors the store raises; the app turns each into the uniform JSON error body."""

from __future__ import annotations


class ApiError(Exception):
    """An error with an HTTP status, a contract code and, where known, the input at fault."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(ApiError):
    status = 422
    code = "invalid"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """A valid token asking for what it may not do (a label as another person)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class StaleAttempt(Conflict):
    """Events or a status change from an attempt that is not the run's current one."""

    code = "stale_attempt"


class TooLarge(ApiError):
    status = 413
    code = "too_large"
