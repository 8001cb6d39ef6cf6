"""Secrets never travel in evalhub's data: a spec's or a model's params are stored (in the experiment's
spec, in each run's tags, in logs), so a key, token or password is named there as the environment
variable that holds it (``api_key_env: OPENAI_API_KEY``), read on the worker."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from evalhub.errors import EvalhubError

_SECRET = re.compile(
    r"(^|_)(api_?key|token|secret|password|passwd|authorization|access_key|credentials?)$", re.I
)


def secret_keys(params: Mapping[str, Any]) -> list[str]:
    """The keys of ``params`` that would store a secret (``*_env`` keys name a variable: those are fine)."""
    return [k for k in params if isinstance(k, str) and not k.endswith("_env") and _SECRET.search(k)]


def refusal(keys: list[str], where: str) -> str:
    """The message refusing ``keys`` in ``where``."""
    example = keys[0]
    return (
        f"{where}: {', '.join(repr(k) for k in keys)} would be stored in clear (in the experiment, its runs' "
        f"tags and logs); name the environment variable that holds it instead, e.g. "
        f"{example}_env: {example.upper()}"
    )


def from_env(params: Mapping[str, Any], name: str, default_env: str | None = None) -> str | None:
    """The secret ``name`` for an adapter: read from the variable ``params[name + '_env']`` names (or
    ``default_env``) on the worker; a named variable that is not set is a clear error."""
    variable = params.get(f"{name}_env")
    if variable:
        value = os.environ.get(str(variable))
        if value is None:
            raise EvalhubError(
                f"{name}_env names {variable}, which is not set on this worker ({os.uname().nodename})"
            )
        return value
    if name in params:  # registered before secrets were refused: still honoured, never stored anew
        return str(params[name])
    return os.environ.get(default_env) if default_env else None


__all__ = ["from_env", "refusal", "secret_keys"]
