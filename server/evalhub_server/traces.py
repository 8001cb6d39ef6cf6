"""Traces from applications: OpenTelemetry spans of LLM calls (GenAI semantic conventions) stored as the
samples of a ``trace`` run, one run per service (the resource's ``service.name``) and project.

A span becomes one sample, keyed ``<trace id>:<span id>``:

- ``prompt`` / ``output``: the text of the input and output messages, read from the current
  conventions first (``gen_ai.input.messages``, ``gen_ai.output.messages``,
  ``gen_ai.system_instructions``: span attributes, JSON text or structured, or the
  ``gen_ai.client.inference.operation.details`` event), then the older event forms (span events or
  log records ``gen_ai.{system,user,assistant,tool}.message`` and ``gen_ai.choice``; the 1.26 events
  ``gen_ai.content.prompt`` / ``gen_ai.content.completion``), then the deprecated attributes
  (``gen_ai.prompt`` / ``gen_ai.completion``, flattened ``gen_ai.prompt.<i>.content``);
- ``tokens_in`` / ``tokens_out``: ``gen_ai.usage.input_tokens`` / ``output_tokens`` (or the older
  ``prompt_tokens`` / ``completion_tokens``); ``latency_ms``: end minus start; ``index``: the start
  time in nanoseconds, so a run's samples read in the order the calls began;
- ``reference``: the span attribute ``evalhub.reference`` when the application knows the answer;
- ``extra``: the model (``gen_ai.request.model``, ``gen_ai.response.model``), provider, operation,
  span name, ids, parent, status, the structured messages, every other attribute, and ``flags``.

Nothing is dropped for being incomplete: a span lacking the GenAI attributes is kept with what it has
and its ``flags`` say what is missing (``not_genai``, ``no_model``, ``no_prompt``, ``no_completion``,
``no_usage``, ``no_times``, ``no_span_id``, ``span_missing`` for messages whose span has not come,
``invalid:<field>`` for a value that can't be stored). A span and the log records of its messages
arrive apart, in either order: each fills the sample of its key, and the flags are worked out again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from functools import partial
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from evalhub.protocol import Sample

from . import lifecycle
from . import tables as t
from .db import Database
from .ingest import sample_row, write_samples
from .otlp import LogRecord, Span
from .rows import load, new_id, now
from .runs import RunStore

DEFAULT_SERVICE = "unknown_service"
_INPUT_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                 "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}  # fmt: skip
_DETAILS = "gen_ai.client.inference.operation.details"
_CONTENT_ATTRS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                  "gen_ai.prompt", "gen_ai.completion")  # fmt: skip
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


# ---- reading the conventions --------------------------------------------------------------------


def _parsed(value: Any) -> Any:
    """A structured attribute, or one recorded as JSON text (spans MAY carry it as a string)."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def _messages(value: Any, role: str | None = None) -> list[dict[str, Any]]:
    """Messages in the conventions' shape (``role``, ``parts``) from any of the forms seen in the wild."""
    value = _parsed(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": role or "user", "parts": [{"type": "text", "content": value}]}]
    if isinstance(value, dict):
        value = [value]
    out: list[dict[str, Any]] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str):
            out.append({"role": role or "user", "parts": [{"type": "text", "content": item}]})
            continue
        if not isinstance(item, dict):
            continue
        if "message" in item and isinstance(item["message"], dict):  # gen_ai.choice's body
            message = dict(item["message"])
            if item.get("finish_reason") is not None:
                message.setdefault("finish_reason", item["finish_reason"])
            item = message
        if "parts" in item:
            out.append({**item, "role": item.get("role") or role})
        elif item.get("type") in ("text", "tool_call", "tool_call_response", "reasoning"):  # a bare part
            out.append({"role": role, "parts": [item]})
        else:
            content = _parsed(item.get("content"))
            parts = content if isinstance(content, list) else [] if content is None else [
                {"type": "text", "content": content if isinstance(content, str) else json.dumps(content)}
            ]  # fmt: skip
            for call in item.get("tool_calls") or []:
                if isinstance(call, dict):
                    fn = call.get("function") or {}
                    parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name"),
                                  "arguments": fn.get("arguments")})  # fmt: skip
            out.append({k: v for k, v in {**item, "role": item.get("role") or role, "parts": parts}.items()
                        if k not in ("content", "tool_calls")})  # fmt: skip
    return out


def _part_text(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return None
    kind = part.get("type", "text")
    if kind == "text":
        content = part.get("content", part.get("text"))
        return None if content is None else str(content)
    if kind == "tool_call":
        args = part.get("arguments")
        return f"[tool call {part.get('name')}({args if isinstance(args, str) else json.dumps(args)})]"
    if kind == "tool_call_response":
        response = part.get("response", part.get("result"))
        return response if isinstance(response, str) else json.dumps(response)
    return None  # reasoning, blobs, files: kept in extra, not in the text


def _message_text(message: dict[str, Any]) -> str:
    return "".join(t for t in (_part_text(p) for p in message.get("parts") or []) if t is not None)


def _render(messages: list[dict[str, Any]], system: list[Any] | None = None) -> str | None:
    """One message's text, or ``role: text`` lines for a conversation."""
    turns = [("system", str(_part_text(p) or "")) for p in system or []] + [
        (str(m.get("role") or "user"), _message_text(m)) for m in messages
    ]
    if not turns:
        return None
    if len(turns) == 1:
        return turns[0][1]
    return "\n".join(f"{role}: {text}" for role, text in turns)


def _indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """OpenLLMetry's flattened ``gen_ai.prompt.<i>.role`` / ``.content`` attributes."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if key.startswith(prefix + "."):
            index, _, name = key[len(prefix) + 1 :].partition(".")
            if index.isdigit() and name in ("role", "content"):
                found.setdefault(int(index), {})[name] = value
    return [found[i] for i in sorted(found)]


def _event_messages(name: str, attrs: dict[str, Any], body: Any, time_ns: int | None) -> list[dict[str, Any]]:
    """The messages one event (a span event or a log record) carries, each marked input or output."""
    side: str
    if name in _INPUT_EVENTS:
        side, messages = (
            "input",
            _messages(body if body is not None else _event_body(attrs), _INPUT_EVENTS[name]),
        )
    elif name == "gen_ai.choice":
        side, messages = "output", _messages(body if body is not None else _event_body(attrs), "assistant")
    elif name == "gen_ai.content.prompt":
        side, messages = "input", _messages(attrs.get("gen_ai.prompt"))
    elif name == "gen_ai.content.completion":
        side, messages = "output", _messages(attrs.get("gen_ai.completion"), "assistant")
    else:
        return []
    return [{"side": side, "time_ns": time_ns, **m} for m in messages]


def _event_body(attrs: dict[str, Any]) -> Any:
    for key in ("gen_ai.event.content", "content", "body"):
        if key in attrs:
            return _parsed(attrs[key])
    message = {
        k: attrs[k] for k in ("role", "content", "message", "tool_calls", "finish_reason") if k in attrs
    }
    return message or None


def _plain(value: Any) -> Any:
    """An attribute value JSON can hold (a NaN or ±inf double becomes its text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _count(value: Any) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if 0 <= n < 2**63 else None


def _key(trace_id: str | None, span_id: str | None, fallback: Any) -> str:
    if span_id:
        key = f"{trace_id}:{span_id}" if trace_id else span_id
        if len(key) <= 255 and key.isprintable():
            return key
        fallback = key
    digest = hashlib.sha256(json.dumps(fallback, sort_keys=True, default=str).encode()).hexdigest()
    return f"nospan:{digest[:32]}"


def span_part(span: Span) -> tuple[str, dict[str, Any]]:
    """The sample key of a span and what it says (``extra``-shaped, before merging and rendering)."""
    attrs = {k: _plain(v) for k, v in span.attributes.items()}
    part: dict[str, Any] = {
        "seen_span": True,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": _KINDS.get(span.kind, str(span.kind)),
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "status": {k: v for k, v in span.status.items() if v is not None} or None,
        "scope": span.scope or None,
        "genai": any(k.startswith("gen_ai.") for k in attrs)
        or any(e["name"].startswith("gen_ai.") for e in span.events),
        "model": attrs.get("gen_ai.request.model"),
        "response_model": attrs.get("gen_ai.response.model"),
        "provider": attrs.get("gen_ai.provider.name", attrs.get("gen_ai.system")),
        "operation": attrs.get("gen_ai.operation.name"),
        "finish_reasons": attrs.get("gen_ai.response.finish_reasons"),
        "tokens_in": _count(attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens"))),
        "tokens_out": _count(attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens"))),
        "reference": attrs.get("evalhub.reference"),
        "attributes": {
            k: v for k, v in attrs.items()
            if k not in _CONTENT_ATTRS and not k.startswith(("gen_ai.prompt.", "gen_ai.completion."))
        },
    }  # fmt: skip
    inputs = _messages(attrs.get("gen_ai.input.messages"))
    outputs = _messages(attrs.get("gen_ai.output.messages"), "assistant")
    system = _parsed(attrs.get("gen_ai.system_instructions"))
    events: list[dict[str, Any]] = []
    for event in span.events:
        ea = {k: _plain(v) for k, v in event["attributes"].items()}
        if event["name"] == _DETAILS:
            inputs = inputs or _messages(ea.get("gen_ai.input.messages"))
            outputs = outputs or _messages(ea.get("gen_ai.output.messages"), "assistant")
            system = system or _parsed(ea.get("gen_ai.system_instructions"))
        else:
            events.extend(_event_messages(event["name"], ea, None, event["time_ns"]))
    if not inputs and not events:
        inputs = _messages(attrs.get("gen_ai.prompt")) or _messages(_indexed(attrs, "gen_ai.prompt"))
    if not outputs and not any(m["side"] == "output" for m in events):
        outputs = _messages(attrs.get("gen_ai.completion"), "assistant") or _messages(
            _indexed(attrs, "gen_ai.completion"), "assistant"
        )
    part.update(input_messages=inputs or None, output_messages=outputs or None,
                system_instructions=system if isinstance(system, list) else [system] if system else None,
                event_messages=events)  # fmt: skip
    return _key(span.trace_id, span.span_id, part), part


def log_part(log: LogRecord) -> tuple[str, dict[str, Any]] | None:
    """The sample key and messages of a log record of a GenAI event, or None for any other record."""
    attrs = {k: _plain(v) for k, v in log.attributes.items()}
    name = log.event_name or attrs.get("event.name")
    if not isinstance(name, str):
        return None
    part: dict[str, Any] = {"trace_id": log.trace_id, "span_id": log.span_id, "event_messages": []}
    if name == _DETAILS:
        part.update(
            input_messages=_messages(attrs.get("gen_ai.input.messages")) or None,
            output_messages=_messages(attrs.get("gen_ai.output.messages"), "assistant") or None,
            system_instructions=_parsed(attrs.get("gen_ai.system_instructions")) or None,
        )
        for key, field in (("gen_ai.request.model", "model"), ("gen_ai.response.model", "response_model"),
                           ("gen_ai.operation.name", "operation")):  # fmt: skip
            if attrs.get(key) is not None:
                part[field] = attrs[key]
    else:
        messages = _event_messages(name, attrs, _plain(log.body), log.time_ns)
        if not messages:
            return None
        part["event_messages"] = messages
    return _key(log.trace_id, log.span_id, {"log": part, "time": log.time_ns}), part


def merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What is known of a sample after ``new`` arrives (a span's part, or a log record's)."""
    if not old:
        return dict(new)
    out = dict(old)
    for key, value in new.items():
        if key == "event_messages":
            seen = {json.dumps(m, sort_keys=True) for m in out.get(key) or []}
            out[key] = list(out.get(key) or []) + [
                m for m in value if json.dumps(m, sort_keys=True) not in seen
            ]
        elif key == "attributes":
            out[key] = {**(out.get(key) or {}), **value}
        elif value is not None:
            out[key] = value
    return out


def flags_of(extra: dict[str, Any], sample: dict[str, Any]) -> list[str]:
    """What the sample lacks. A span with no GenAI attribute at all (an application's own span around
    its calls) is ``not_genai`` alone: the GenAI fields it lacks go without saying."""
    flags = []
    if not extra.get("span_id"):
        flags.append("no_span_id")
    if not extra.get("seen_span"):
        flags.append("span_missing")
    else:
        if sample.get("latency_ms") is None:
            flags.append("no_times")
        messages = ("input_messages", "output_messages", "event_messages")
        if not extra.get("genai") and not any(extra.get(k) for k in messages):  # its log records may say
            return [*flags, "not_genai"]
        if not (extra.get("model") or extra.get("response_model")):
            flags.append("no_model")
        if sample.get("tokens_in") is None and sample.get("tokens_out") is None:
            flags.append("no_usage")
    if sample.get("prompt") is None:
        flags.append("no_prompt")
    if sample.get("output") is None:
        flags.append("no_completion")
    return flags


def sample_of(key: str, extra: dict[str, Any]) -> Sample:
    """The stored sample of what is known: texts rendered, latency worked out, flags set."""
    events = sorted(extra.get("event_messages") or [], key=lambda m: m.get("time_ns") or 0)
    inputs = extra.get("input_messages") or [m for m in events if m["side"] == "input"]
    outputs = extra.get("output_messages") or [m for m in events if m["side"] == "output"]
    start, end = extra.get("start_ns"), extra.get("end_ns")
    latency = (end - start) / 1e6 if start and end and end >= start else None
    system = extra.get("system_instructions")
    fields: dict[str, Any] = {
        "sample_key": key,
        "index": start or min((m.get("time_ns") or 0 for m in events), default=None) or None,
        "prompt": _render(inputs, system if isinstance(system, list) else None),
        "output": _message_text(outputs[0]) if outputs else None,
        "reference": None if extra.get("reference") is None else str(extra["reference"]),
        "latency_ms": latency,
        "tokens_in": extra.get("tokens_in"),
        "tokens_out": extra.get("tokens_out"),
    }
    invalid: list[str] = []
    extra = {k: v for k, v in extra.items() if v is not None and v != []}
    for attempt in range(3):
        body = {**fields, "extra": {**extra, "flags": flags_of(extra, fields) + invalid}}
        try:
            return Sample.model_validate(body)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]} - {"sample_key"}
            for name in sorted(bad):
                invalid.append(f"invalid:{name}")
                if name == "extra":  # keep the sample: drop what it can't hold (all of it, the second time)
                    kept = ("seen_span", "genai", "trace_id", "span_id", "start_ns", "end_ns") if attempt else (
                        k for k in extra if k not in ("attributes", "event_messages", "input_messages",
                                                      "output_messages", "system_instructions"))  # fmt: skip
                    extra = {k: extra[k] for k in kept if k in extra}
                else:
                    fields[name] = None
    raise AssertionError(f"sample {key}: no storable form")  # unreachable: the last form holds ids only


# ---- storing them -------------------------------------------------------------------------------


class TraceStore:
    """Spans and GenAI log records into the ``trace`` runs of a project, one per service."""

    def __init__(self, db: Database, runs: RunStore) -> None:
        self.db = db
        self.runs = runs

    def trace_run(self, pid: int, service: str) -> int:
        """The open ``trace`` run of ``service``; a new one when it has none (or it was finished)."""
        c = t.runs.c
        query = (
            sa.select(c.id)
            .where(c.project_id == pid, c.type == "trace", c.name == service, c.status == "running",
                   c.archived_at.is_(None))
            .order_by(c.id.desc())
            .limit(1)
        )  # fmt: skip
        with self.db.read() as conn:
            found = conn.execute(query).scalar()
        if found is not None:
            return int(found)

        def create(conn: sa.Connection) -> int:
            # The project's row, locked, serializes the creators of its trace runs across server
            # processes (MySQL FOR UPDATE; SQLite has one writer): a service gets one open run.
            conn.execute(sa.select(t.projects.c.id).where(t.projects.c.id == pid).with_for_update())
            again = conn.execute(query).scalar()
            if again is not None:
                return int(again)
            body = {"name": service, "type": "trace", "metadata": {"service": service, "source": "otlp"},
                    "description": f"LLM calls traced by the application '{service}' (OTLP)"}  # fmt: skip
            values = self.runs._resolve_run(conn, pid, body, "body")
            lifecycle.transition(
                values, "running", now=now(), lease_s=self.runs.lease_s
            )  # no lease: a trace run
            return new_id(conn.execute(t.runs.insert().values(**values)))

        return int(self.db.write(create))

    def ingest(self, pid: int, parts: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
        """Store ``(service, sample key, part)`` triples; the answer counts what was stored and flagged."""
        by_service: dict[str, dict[str, dict[str, Any]]] = {}
        for service, key, part in parts:
            group = by_service.setdefault(service, {})
            group[key] = merge(group.get(key), part)
        answer: dict[str, Any] = {"run_ids": [], "stored": 0, "flagged": 0, "flags": {}}
        for service, parts_of in by_service.items():
            for _ in range(3):  # the run may be finished between finding it and writing to it
                run_id = self.trace_run(pid, service)
                samples = self.db.write(partial(self._write, pid=pid, run_id=run_id, parts=parts_of))
                if samples is not None:
                    break
            else:
                continue
            answer["run_ids"].append(run_id)
            for s in samples:
                flags = (s.extra or {}).get("flags") or []
                answer["stored"] += 1
                answer["flagged"] += bool(flags)
                for flag in flags:
                    answer["flags"][flag] = answer["flags"].get(flag, 0) + 1
        return answer

    def _write(
        self, conn: sa.Connection, *, pid: int, run_id: int, parts: dict[str, dict[str, Any]]
    ) -> list[Sample] | None:
        run = self.runs.lock_run(conn, pid, run_id)
        if run["status"] != "running":
            return None
        s = t.samples.c
        stored = {
            r.sample_key: load(r.extra, {})
            for r in conn.execute(
                sa.select(s.sample_key, s.extra).where(s.run_id == run_id, s.sample_key.in_(list(parts)))
            )
        }
        samples = []
        for key, part in parts.items():
            old = stored.get(key)
            if old:
                old.pop("flags", None)
            samples.append(sample_of(key, merge(old, part)))
        write_samples(self.db, conn, run, {x.sample_key: sample_row(run_id, x) for x in samples})
        fresh = sum(key not in stored for key in parts)
        if fresh:  # the run's progress counts its samples, as a list of runs shows it
            self.runs.save_run(conn, run, {**run, "progress_done": int(run["progress_done"] or 0) + fresh})
        return samples


def service_of(resource: dict[str, Any]) -> str:
    name = resource.get("service.name")
    return str(name)[:255] if isinstance(name, str) and name.strip() else DEFAULT_SERVICE


__all__ = ["TraceStore", "log_part", "merge", "sample_of", "service_of", "span_part"]
