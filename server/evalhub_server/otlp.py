"""OTLP/HTTP bodies read into plain records: spans (``/v1/traces``) and log records (``/v1/logs``).

Both encodings of OTLP/HTTP are read with no dependency: ``application/x-protobuf`` (what
``opentelemetry-exporter-otlp-proto-http`` sends by default) by a small reader of the protobuf wire
format over the stable OTLP 1.x messages (unknown fields are skipped, as protobuf does), and
``application/json`` (OTLP/JSON: lowerCamelCase or proto field names, ids in hex, 64-bit integers as
strings or numbers). A gzip ``Content-Encoding`` is undone first.

A body that can't be read is a :class:`BadOtlp` naming what is wrong; a record that is read but
incomplete (no span id, no times) comes back with what it has: what to make of it is the caller's.

>>> spans = read_spans(body, "application/x-protobuf")
>>> spans[0].attributes["gen_ai.request.model"]
'tiny-gpt'
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, TooLarge

PROTOBUF = "application/x-protobuf"
JSON_TYPE = "application/json"


class BadOtlp(ApiError):
    """A body that is not OTLP (400, as OTLP/HTTP asks: the exporter does not retry it)."""

    status = 400
    code = "invalid_otlp"


class Unsupported(ApiError):
    status = 415
    code = "unsupported_media_type"


@dataclass
class Span:
    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int | None
    end_ns: int | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    status: dict[str, Any]
    resource: dict[str, Any]
    scope: dict[str, Any] = field(default_factory=dict)


@dataclass
class LogRecord:
    trace_id: str | None
    span_id: str | None
    time_ns: int | None
    event_name: str | None
    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: dict[str, Any] = field(default_factory=dict)


# ---- the request: its media type and encoding --------------------------------------------------


def body_of(
    raw: bytes, content_type: str | None, content_encoding: str | None, limit: int
) -> tuple[bytes, str]:
    """The decoded body and its kind (``protobuf`` or ``json``); 415 for another media type, 413 for a
    gzip body that inflates past ``limit`` bytes (the server's request limit holds for what it reads)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        kind = "protobuf"
    elif media == JSON_TYPE:
        kind = "json"
    else:
        raise Unsupported(
            f"Content-Type '{media or '(none)'}' is not OTLP/HTTP: send {PROTOBUF} or {JSON_TYPE}",
            field="header.content-type",
        )
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        inflate = zlib.decompressobj(wbits=31)
        try:
            raw = inflate.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise BadOtlp(f"the body is not valid gzip ({exc})", field="header.content-encoding") from None
        if len(raw) > limit:
            raise TooLarge(
                f"the gzip body inflates past the server's limit of {limit} bytes (--max-request-bytes)"
            )
    elif encoding not in ("identity", ""):
        raise Unsupported(
            f"Content-Encoding '{encoding}' is not supported: send gzip or none",
            field="header.content-encoding",
        )
    return raw, kind


def read_spans(raw: bytes, kind: str) -> list[Span]:
    """Every span of an ``ExportTraceServiceRequest``."""
    if kind == "protobuf":
        return _protobuf(_pb_spans, raw, "ExportTraceServiceRequest")
    return list(_json_spans(_json_top(raw, "resourceSpans", "ExportTraceServiceRequest")))


def read_logs(raw: bytes, kind: str) -> list[LogRecord]:
    """Every log record of an ``ExportLogsServiceRequest``."""
    if kind == "protobuf":
        return _protobuf(_pb_logs, raw, "ExportLogsServiceRequest")
    return list(_json_logs(_json_top(raw, "resourceLogs", "ExportLogsServiceRequest")))


# ---- protobuf wire format ---------------------------------------------------------------------


def _protobuf(reader: Callable[[bytes], Iterator[Any]], raw: bytes, message: str) -> list[Any]:
    try:
        return list(reader(raw))
    except BadOtlp as exc:
        raise BadOtlp(f"the body is not a protobuf OTLP {message}: {exc.message}") from None


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise BadOtlp("it ends inside a varint (truncated?)")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise BadOtlp("a varint is longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, Any]]:
    """(field number, value) of a message: an int for varints, bytes for the other wire types."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if i + size > n:
                raise BadOtlp("it ends inside a fixed-size field (truncated?)")
            value, i = buf[i : i + size], i + size
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > n:
                raise BadOtlp(f"it ends inside field {number} (truncated?)")
            value, i = buf[i : i + size], i + size
        else:
            raise BadOtlp(f"wire type {wire} (field {number}) at byte {i} is none that OTLP uses")
        if number == 0:
            raise BadOtlp("a field is numbered 0")
        yield number, value


def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise BadOtlp("a string field holds a number")
    return value.decode("utf-8", errors="replace")


def _sub(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise BadOtlp("a message field holds a number")
    return value


def _fixed64(value: Any) -> int:
    if not isinstance(value, bytes) or len(value) != 8:
        raise BadOtlp("a timestamp is not a fixed64")
    return int.from_bytes(value, "little")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _pb_any(buf: bytes) -> Any:
    out: Any = None
    for number, value in _fields(buf):
        if number == 1:
            out = _text(value)
        elif number == 2:
            out = bool(value)
        elif number == 3:
            out = _signed(int(value))
        elif number == 4:
            out = struct.unpack("<d", value)[0] if isinstance(value, bytes) and len(value) == 8 else None
        elif number == 5:
            out = [_pb_any(_sub(v)) for n, v in _fields(_sub(value)) if n == 1]
        elif number == 6:
            out = _pb_attrs(_sub(value), 1)
        elif number == 7:
            out = base64.b64encode(_sub(value)).decode()
    return out


def _pb_attrs(buf: bytes, field_number: int) -> dict[str, Any]:
    """The KeyValue list at ``field_number`` of a message, as a dict."""
    out: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number == field_number:
            key, item = "", None
            for n, v in _fields(_sub(value)):
                if n == 1:
                    key = _text(v)
                elif n == 2:
                    item = _pb_any(_sub(v))
            out[key] = item
    return out


def _pb_scope(buf: bytes) -> dict[str, Any]:
    scope: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number == 1:
            scope["name"] = _text(value)
        elif number == 2:
            scope["version"] = _text(value)
    return scope


def _hex(value: Any) -> str | None:
    raw = _sub(value)
    return raw.hex() if raw and any(raw) else None


def _pb_resource_parts(buf: bytes, part: int) -> Iterator[tuple[dict[str, Any], dict[str, Any], bytes]]:
    """(resource attributes, scope, record bytes) of each record of a ResourceSpans/ResourceLogs."""
    resource: dict[str, Any] = {}
    scopes: list[bytes] = []
    for number, value in _fields(buf):
        if number == 1:
            resource = _pb_attrs(_sub(value), 1)
        elif number == 2:
            scopes.append(_sub(value))
    for scoped in scopes:
        scope: dict[str, Any] = {}
        records: list[bytes] = []
        for number, value in _fields(scoped):
            if number == 1:
                scope = _pb_scope(_sub(value))
            elif number == part:
                records.append(_sub(value))
        for record in records:
            yield resource, scope, record


def _pb_spans(raw: bytes) -> Iterator[Span]:
    for number, value in _fields(raw):
        if number != 1:
            continue
        for resource, scope, buf in _pb_resource_parts(_sub(value), 2):
            span = Span(None, None, None, "", 0, None, None, {}, [], {}, resource, scope)
            for n, v in _fields(buf):
                if n == 1:
                    span.trace_id = _hex(v)
                elif n == 2:
                    span.span_id = _hex(v)
                elif n == 4:
                    span.parent_span_id = _hex(v)
                elif n == 5:
                    span.name = _text(v)
                elif n == 6:
                    span.kind = int(v)
                elif n == 7:
                    span.start_ns = _fixed64(v)
                elif n == 8:
                    span.end_ns = _fixed64(v)
                elif n == 11:
                    event: dict[str, Any] = {"name": "", "time_ns": None, "attributes": {}}
                    for en, ev in _fields(_sub(v)):
                        if en == 1:
                            event["time_ns"] = _fixed64(ev)
                        elif en == 2:
                            event["name"] = _text(ev)
                    event["attributes"] = _pb_attrs(_sub(v), 3)
                    span.events.append(event)
                elif n == 15:
                    for sn, sv in _fields(_sub(v)):
                        if sn == 2:
                            span.status["message"] = _text(sv)
                        elif sn == 3:
                            span.status["code"] = int(sv)
            span.attributes = _pb_attrs(buf, 9)
            yield span


def _pb_logs(raw: bytes) -> Iterator[LogRecord]:
    for number, value in _fields(raw):
        if number != 1:
            continue
        for resource, scope, buf in _pb_resource_parts(_sub(value), 2):
            log = LogRecord(None, None, None, None, None, {}, resource, scope)
            observed = None
            for n, v in _fields(buf):
                if n == 1:
                    log.time_ns = _fixed64(v) or None
                elif n == 11:
                    observed = _fixed64(v) or None
                elif n == 5:
                    log.body = _pb_any(_sub(v))
                elif n == 9:
                    log.trace_id = _hex(v)
                elif n == 10:
                    log.span_id = _hex(v)
                elif n == 12:
                    log.event_name = _text(v) or None
            log.time_ns = log.time_ns or observed
            log.attributes = _pb_attrs(buf, 6)
            yield log


# ---- OTLP/JSON ----------------------------------------------------------------------------------


def _json_top(raw: bytes, key: str, message: str) -> list[Any]:
    try:
        top = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadOtlp(f"the body is not JSON ({exc})") from None
    if not isinstance(top, dict):
        raise BadOtlp(f"the body is JSON but not an OTLP {message}: expected an object with '{key}'")
    snake = _snake(key)
    if key not in top and snake not in top:
        if top:
            raise BadOtlp(
                f"the body is JSON but not an OTLP {message}: expected '{key}', got "
                f"{', '.join(repr(k) for k in list(top)[:5])}",
                field=f"body.{key}",
            )
        return []
    items = top.get(key, top.get(snake))
    if not isinstance(items, list):
        raise BadOtlp(f"'{key}' of an OTLP {message} must be a list", field=f"body.{key}")
    return items


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if not isinstance(obj, dict):
        return default
    value = obj.get(key, obj.get(_snake(key), default))
    return default if value is None else value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_any(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value or "string_value" in value:
        return str(_get(value, "stringValue", ""))
    if "boolValue" in value or "bool_value" in value:
        return bool(_get(value, "boolValue"))
    if "intValue" in value or "int_value" in value:
        return _int(_get(value, "intValue"))
    if "doubleValue" in value or "double_value" in value:
        got = _get(value, "doubleValue")
        try:
            return float(got)
        except (TypeError, ValueError):
            return None
    if "arrayValue" in value or "array_value" in value:
        return [_json_any(v) for v in _list(_get(_get(value, "arrayValue"), "values"))]
    if "kvlistValue" in value or "kvlist_value" in value:
        return _json_attrs(_get(_get(value, "kvlistValue"), "values"))
    if "bytesValue" in value or "bytes_value" in value:
        return str(_get(value, "bytesValue", ""))
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _json_attrs(items: Any) -> dict[str, Any]:
    return {
        str(_get(kv, "key", "")): _json_any(_get(kv, "value")) for kv in _list(items) if isinstance(kv, dict)
    }


def _json_id(value: Any) -> str | None:
    if not isinstance(value, str) or not value or not value.strip("0"):
        return None
    lowered = value.lower()  # OTLP/JSON ids are hex; another form (base64) is kept as it came
    return lowered if all(c in "0123456789abcdef" for c in lowered) else value


_KINDS = {"SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4,
          "SPAN_KIND_CONSUMER": 5}  # fmt: skip
_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _enum(value: Any, names: dict[str, int]) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return _int(value) or 0


def _json_parts(items: list[Any], part: str) -> Iterator[tuple[dict[str, Any], dict[str, Any], Any]]:
    scoped_key, record_key = ("scopeSpans", "spans") if part == "spans" else ("scopeLogs", "logRecords")
    for item in items:
        resource = _json_attrs(_get(_get(item, "resource"), "attributes"))
        for scoped in _list(_get(item, scoped_key)):
            raw_scope = _get(scoped, "scope", {})
            scope = {
                k: raw_scope[k] for k in ("name", "version") if isinstance(raw_scope, dict) and k in raw_scope
            }
            for record in _list(_get(scoped, record_key)):
                yield resource, scope, record


def _json_spans(items: list[Any]) -> Iterator[Span]:
    for resource, scope, s in _json_parts(items, "spans"):
        status = _get(s, "status", {})
        yield Span(
            trace_id=_json_id(_get(s, "traceId")),
            span_id=_json_id(_get(s, "spanId")),
            parent_span_id=_json_id(_get(s, "parentSpanId")),
            name=str(_get(s, "name", "")),
            kind=_enum(_get(s, "kind"), _KINDS),
            start_ns=_int(_get(s, "startTimeUnixNano")),
            end_ns=_int(_get(s, "endTimeUnixNano")),
            attributes=_json_attrs(_get(s, "attributes")),
            events=[
                {
                    "name": str(_get(e, "name", "")),
                    "time_ns": _int(_get(e, "timeUnixNano")),
                    "attributes": _json_attrs(_get(e, "attributes")),
                }
                for e in _list(_get(s, "events"))
            ],
            status={"code": _enum(_get(status, "code"), _CODES), "message": _get(status, "message")},
            resource=resource,
            scope=scope,
        )


def _json_logs(items: list[Any]) -> Iterator[LogRecord]:
    for resource, scope, r in _json_parts(items, "logs"):
        yield LogRecord(
            trace_id=_json_id(_get(r, "traceId")),
            span_id=_json_id(_get(r, "spanId")),
            time_ns=_int(_get(r, "timeUnixNano")) or _int(_get(r, "observedTimeUnixNano")),
            event_name=_get(r, "eventName") or None,
            body=_json_any(_get(r, "body")),
            attributes=_json_attrs(_get(r, "attributes")),
            resource=resource,
            scope=scope,
        )


# ---- the answer -------------------------------------------------------------------------------


def answer_protobuf(rejected: int, message: str) -> bytes:
    """An ``Export{Trace,Logs}ServiceResponse``: its ``partial_success`` when there is anything to say."""
    if not rejected and not message:
        return b""
    inner = b""
    if rejected:
        inner += b"\x08" + _encode_varint(rejected)
    if message:
        text = message.encode()
        inner += b"\x12" + _encode_varint(len(text)) + text
    return b"\x0a" + _encode_varint(len(inner)) + inner


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


__all__ = [
    "BadOtlp",
    "LogRecord",
    "Span",
    "Unsupported",
    "answer_protobuf",
    "body_of",
    "read_logs",
    "read_spans",
]
