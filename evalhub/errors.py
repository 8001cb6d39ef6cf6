"""The errors evalhub raises. Each message says what is wrong and, where it can, what to do."""

from __future__ import annotations


class EvalhubError(Exception):
    """Base of every error evalhub raises on purpose."""


class ConnectionFailed(EvalhubError):
    """The tracking server could not be reached (after retries)."""


class ServerError(EvalhubError):
    """The tracking server answered with an error.

    ``status`` is the HTTP status, ``code`` the server's error code (``invalid``, ``not_found``,
    ``conflict``, ``unauthorized``, ``too_large``, ``internal``), ``field`` the input at fault, if any.
    """

    def __init__(self, message: str, *, status: int = 0, code: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field


class InvalidInput(ServerError):
    """The server refused a request's content (400/422)."""


class Unauthorized(ServerError):
    """A token is missing or wrong (401)."""


class NotFound(ServerError):
    """No such object in this project (404)."""


class Conflict(ServerError):
    """A duplicate name or an illegal status change (409)."""


class PayloadTooLarge(ServerError):
    """A request body over the server's limit (413)."""


class InvalidValue(EvalhubError, ValueError):
    """A value the platform cannot store, refused before it is sent (NaN, infinity, wrong type)."""


class SpecError(EvalhubError):
    """A malformed experiment spec: names the line and the field that are wrong."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.line = line
        self.field = field
        self.reason = message


class AdapterError(EvalhubError):
    """A model adapter failed to load or broke its contract (wrong number of outputs, …)."""


class WeightsNotFound(AdapterError):
    """A checkpoint's weights URI does not resolve to files."""


class RepoConfigError(EvalhubError):
    """A model repo's ``ai_eval_config.yaml`` is malformed: names the file and the field that is wrong."""

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        where = [w for w in (path, f"field '{field}'" if field else None) if w]
        super().__init__(f"{': '.join(where)}: {message}" if where else message)
        self.path = path
        self.field = field
        self.reason = message


class IncompatibleServer(EvalhubError):
    """The tracking server speaks another version of the contract than this client (names both)."""


class ClusterError(EvalhubError):
    """The Ray cluster cannot take an experiment as asked: an address that does not answer, resources
    no node has, files or a ``runtime_env`` that cannot be shipped (the message names which)."""


class RunFailed(EvalhubError):
    """One or more runs of an experiment ended ``failed``."""


class MissingExtra(EvalhubError, ImportError):
    """A part of evalhub needs a package of an extra that is not installed: names the extra.

    ``extra`` is the extra (``notebook``), ``module`` the missing top-level module (``polars``).
    """

    def __init__(self, message: str, *, extra: str, module: str) -> None:
        super().__init__(message, name=module)
        self.extra = extra
        self.module = module


__all__ = [
    "AdapterError",
    "ClusterError",
    "Conflict",
    "ConnectionFailed",
    "EvalhubError",
    "IncompatibleServer",
    "InvalidInput",
    "InvalidValue",
    "MissingExtra",
    "NotFound",
    "PayloadTooLarge",
    "RepoConfigError",
    "RunFailed",
    "ServerError",
    "SpecError",
    "Unauthorized",
    "WeightsNotFound",
]
