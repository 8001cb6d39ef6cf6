"""The field types of the contract: what can be stored, said once.

- integers are 64-bit (every id, step, count, offset): anything outside int64 is a 422 naming the field;
- strings must be valid Unicode (a lone surrogate cannot be stored in UTF-8): every string type has a
  length constraint, which makes pydantic-core refuse them with ``string_unicode``;
- a long text is refused above the server's per-field limit (``max_text_bytes``, below the database's
  packet size), which the server sets per request through :data:`TEXT_LIMIT`;
- free JSON objects are checked the same way, recursively (and NaN/±inf are refused inside them: they
  are configuration, not measurements).
"""

from __future__ import annotations

import contextvars
import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NAME_MAX = 255
DEFAULT_MAX_TEXT_BYTES = 2 * 1024 * 1024
TEXT_CEILING = 32 * 1024 * 1024  # the static bound; the server's own limit is at most this
JSON_MAX_DEPTH = 64

# The per-field text limit of the request being validated (the server sets it per request).
TEXT_LIMIT: contextvars.ContextVar[int] = contextvars.ContextVar(
    "evalhub_text_limit", default=DEFAULT_MAX_TEXT_BYTES
)


def _text_size(value: str) -> str:
    limit = TEXT_LIMIT.get()
    if len(value) * 4 > limit and len(value.encode("utf-8")) > limit:
        raise ValueError(
            f"text of {len(value.encode('utf-8'))} bytes is over the server's limit of {limit} bytes per field"
        )
    return value


def _json_value(value: Any, path: str, depth: int) -> None:
    if depth > JSON_MAX_DEPTH:
        raise ValueError(f"nested deeper than {JSON_MAX_DEPTH} levels at {path or 'the top'}")
    kind = type(value)
    if kind is str:
        value.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate
    elif kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"integer {value} at {path or 'the top'} is outside the 64-bit range")
    elif kind is float:
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {value!r} at {path or 'the top'} is not allowed here")
    elif kind is dict:
        for k, v in value.items():
            if type(k) is str:
                k.encode("utf-8")
            _json_value(v, f"{path}.{k}" if path else str(k), depth + 1)
    elif kind is list:
        for i, v in enumerate(value):
            _json_value(v, f"{path}[{i}]", depth + 1)


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    try:
        _json_value(value, "", 0)
    except UnicodeEncodeError:
        raise ValueError("a string in the object is not valid Unicode (a lone surrogate)") from None
    size = len(json.dumps(value, separators=(",", ":")))
    limit = TEXT_LIMIT.get()
    if size > limit:
        raise ValueError(
            f"object of {size} bytes (as JSON) is over the server's limit of {limit} bytes per field"
        )
    return value


Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
Id = Annotated[int, Field(ge=1, le=INT64_MAX)]
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
Short = Annotated[str, Field(max_length=64)]
Text = Annotated[
    str,
    Field(max_length=TEXT_CEILING, json_schema_extra={"x-evalhub-limit": "max_text_bytes"}),
    AfterValidator(_text_size),
]
NonEmptyText = Annotated[
    str,
    Field(min_length=1, max_length=TEXT_CEILING, json_schema_extra={"x-evalhub-limit": "max_text_bytes"}),
    AfterValidator(_text_size),
]
JsonObject = Annotated[
    dict[str, Any],
    Field(json_schema_extra={"x-evalhub-limit": "max_text_bytes"}),
    AfterValidator(_json_object),
]

__all__ = [
    "DEFAULT_MAX_TEXT_BYTES",
    "INT64_MAX",
    "INT64_MIN",
    "NAME_MAX",
    "TEXT_LIMIT",
    "Count",
    "Id",
    "Int64",
    "JsonObject",
    "Name",
    "NonEmptyText",
    "Short",
    "Text",
]
