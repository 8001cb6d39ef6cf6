"""Traces from applications: spans exported by the real ``opentelemetry-sdk`` with the real
``opentelemetry-exporter-otlp-proto-http`` (protobuf, gzip or not) to a real tracking server, stored as
the samples of ``trace`` runs and scored with the existing scorers.

Most tests send recorded spans: the application sets the GenAI attributes itself (as an instrumentation
library would) around a stand-in call, which keeps them fast. The ``slow`` test calls the tiny model
through evalhub's own OpenAI-compatible server (``evalhub.serve_openai``) and records what it answered.
"""

from __future__ import annotations

import gzip
import json
import math
import time
import uuid
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

import evalhub
from evalhub.scorers import Function, Regex


class App:
    """A small application instrumented with the OpenTelemetry SDK, exporting to evalhub over OTLP/HTTP."""

    def __init__(self, url: str, service: str, headers: dict[str, str], *, gzip: bool = False) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        exporter = OTLPSpanExporter(
            endpoint=f"{url}/api/otlp/v1/traces",
            headers=headers,
            compression=Compression.Gzip if gzip else Compression.NoCompression,
        )
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
        self.tracer = self.provider.get_tracer("qa-app", "0.1")

    def ask(
        self, question: str, answer: str, *, reference: str | None = None, model: str = "tiny-gpt"
    ) -> None:
        """One LLM call as an instrumentation library records it (current semconv, content on the span)."""
        with self.tracer.start_as_current_span("answer_question"):  # the app's own span around the call
            with self.tracer.start_as_current_span(f"chat {model}") as span:
                span.set_attribute("gen_ai.operation.name", "chat")
                span.set_attribute("gen_ai.provider.name", "openai")
                span.set_attribute("gen_ai.request.model", model)
                span.set_attribute("gen_ai.request.max_tokens", 16)
                span.set_attribute("gen_ai.input.messages", json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": question}]}]
                ))  # fmt: skip
                time.sleep(0.01)  # the call
                span.set_attribute("gen_ai.output.messages", json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
                ))  # fmt: skip
                span.set_attribute("gen_ai.response.model", model)
                span.set_attribute("gen_ai.usage.input_tokens", len(question.split()))
                span.set_attribute("gen_ai.usage.output_tokens", len(answer.split()))
                if reference is not None:
                    span.set_attribute("evalhub.reference", reference)

    def close(self) -> None:
        self.provider.shutdown()  # flushes what the batch processor holds


def _headers(hub: Any) -> dict[str, str]:
    return {"x-evalhub-project": hub.client.project}


def _trace_runs(hub: Any) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = hub.client.get("/runs", params={"type": "trace"})["items"]
    return runs


def _samples(hub: Any, run_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = hub.client.get(f"/runs/{run_id}/samples", params={"limit": 1000})["items"]
    return items


def test_llm_calls_exported_by_the_sdk_are_samples_of_a_trace_run_and_scorers_apply(
    hub: Any, server_url: str
) -> None:
    app = App(server_url, "qa-bot", _headers(hub))
    questions = [("What is 2+3?", "The answer is 5", "5"), ("What is 4+4?", "The answer is 9", "8"),
                 ("Capital of France?", "Paris.", "Paris")]  # fmt: skip
    for question, answer, ref in questions:
        app.ask(question, answer, reference=ref)
    app.close()

    (run,) = _trace_runs(hub)
    assert (run["name"], run["type"], run["status"]) == ("qa-bot", "trace", "running")
    assert run["lease_expires_at"] is None  # no worker holds it: the reaper leaves it running
    frame = hub.samples(run["id"])
    assert frame.height == 6  # three calls, each inside the app's own span
    samples = _samples(hub, run["id"])
    calls = [s for s in samples if s["extra"].get("genai")]
    assert [c["prompt"] for c in calls] == [q for q, _, _ in questions]  # by start time
    assert [c["output"] for c in calls] == [a for _, a, _ in questions]
    assert [c["reference"] for c in calls] == [r for _, _, r in questions]
    for call, (question, answer, _) in zip(calls, questions, strict=True):
        extra = call["extra"]
        assert (call["tokens_in"], call["tokens_out"]) == (len(question.split()), len(answer.split()))
        assert extra["model"] == "tiny-gpt" and extra["provider"] == "openai" and extra["operation"] == "chat"
        assert call["latency_ms"] == pytest.approx((extra["end_ns"] - extra["start_ns"]) / 1e6)
        assert call["latency_ms"] >= 10
        assert extra["flags"] == []
        assert extra["attributes"]["gen_ai.request.max_tokens"] == 16
        assert call["sample_key"] == f"{extra['trace_id']}:{extra['span_id']}"
    wrappers = [s for s in samples if not s["extra"].get("genai")]
    assert {w["extra"]["name"] for w in wrappers} == {"answer_question"}
    assert all(w["extra"]["flags"] == ["not_genai"] for w in wrappers)
    assert {c["extra"]["parent_span_id"] for c in calls} == {w["extra"]["span_id"] for w in wrappers}

    # the existing scorers apply to the trace run, while it keeps taking spans
    scored = hub.score(run["id"], Regex(r"(\d+|Paris)", name="ans"))
    assert scored.height == 1
    assert hub.metrics(run["id"])["ans.exact_match"] == pytest.approx(
        2 / 3
    )  # 5 and Paris right, 9 for 8 wrong
    hub.score(run["id"], Function(lambda s: {"short": len(s["output"]) < 10} if s["output"] else None,
                                  name="brevity"))  # fmt: skip
    by_key = {s["sample_key"]: s for s in _samples(hub, run["id"])}
    for call in calls:
        scores = by_key[call["sample_key"]]["scores"]
        assert scores["ans.exact_match"] == (0.0 if call["reference"] == "8" else 1.0)
        assert scores["brevity.short"] == float(len(call["output"]) < 10)
    assert all(
        "ans.exact_match" not in by_key[w["sample_key"]]["scores"] for w in wrappers
    )  # no output: null

    # a later call of the same service lands in the same run
    more = App(server_url, "qa-bot", _headers(hub))
    more.ask("What is 1+1?", "2", reference="2")
    more.close()
    assert [r["id"] for r in _trace_runs(hub)] == [run["id"]]
    assert len(_samples(hub, run["id"])) == 8
    assert hub.run(run["id"])["progress"]["done"] == 8  # the run's progress counts its samples


def test_each_service_has_its_run_and_a_finished_run_gives_way_to_a_new_one(
    hub: Any, server_url: str
) -> None:
    for service in ("support-bot", "search-bot"):
        app = App(server_url, service, _headers(hub), gzip=True)  # the exporter's gzip
        app.ask(f"hello from {service}", "hi")
        app.close()
    runs = {r["name"]: r for r in _trace_runs(hub)}
    assert set(runs) == {"support-bot", "search-bot"}
    assert all(len(_samples(hub, r["id"])) == 2 for r in runs.values())
    hub.client.post(f"/runs/{runs['support-bot']['id']}/status", {"status": "completed"})
    app = App(server_url, "support-bot", _headers(hub))
    app.ask("again?", "yes")
    app.close()
    support = [r for r in _trace_runs(hub) if r["name"] == "support-bot"]
    assert [r["status"] for r in support] == ["completed", "running"]
    assert hub.trace_runs("support-bot")["status"].to_list() == ["completed", "running"]
    assert sorted(hub.trace_runs()["name"].to_list()) == ["search-bot", "support-bot", "support-bot"]
    assert len(_samples(hub, support[0]["id"])) == 2 and len(_samples(hub, support[1]["id"])) == 2


def test_message_events_sent_as_log_records_fill_the_sample_of_their_span(hub: Any, server_url: str) -> None:
    """The event form of the conventions: content as log records (``gen_ai.user.message``,
    ``gen_ai.choice``, and the current ``gen_ai.client.inference.operation.details``) linked to the span
    by its context; the log records of one call are exported before its span, those of another after."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.trace import set_span_in_context

    resource = Resource.create({"service.name": "events-bot"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"{server_url}/api/otlp/v1/traces", headers=_headers(hub))
        )
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{server_url}/api/otlp/v1/logs", headers=_headers(hub))
        )
    )
    tracer, logger = tracer_provider.get_tracer("events"), logger_provider.get_logger("events")
    with tracer.start_as_current_span("chat tiny-gpt") as span:  # older events: one record per message
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "tiny-gpt")
        span.set_attribute("gen_ai.usage.input_tokens", 3)
        span.set_attribute("gen_ai.usage.output_tokens", 2)
        logger.emit(LogRecord(event_name="gen_ai.system.message", body={"content": "Be brief."},
                              attributes={"gen_ai.provider.name": "openai"}))  # fmt: skip
        logger.emit(LogRecord(event_name="gen_ai.user.message", body={"content": "Name a colour"}))
        logger.emit(LogRecord(event_name="gen_ai.choice", body={"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "Blue"}}))  # fmt: skip
        logger.emit(LogRecord(body="a plain log line, no GenAI event"))
        first = format(span.get_span_context().span_id, "016x")
    with tracer.start_as_current_span("chat tiny-gpt") as span:  # the current event, after its span
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "tiny-gpt")
        second = format(span.get_span_context().span_id, "016x")
    logger.emit(LogRecord(context=set_span_in_context(span), event_name="gen_ai.client.inference.operation.details",
                          attributes={  # structured, as events must carry it
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "Name a fruit"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Pear"}]}],
    }))  # fmt: skip
    tracer_provider.shutdown()
    logger_provider.shutdown()

    (run,) = _trace_runs(hub)
    by_span = {s["extra"]["span_id"]: s for s in _samples(hub, run["id"])}
    assert set(by_span) == {first, second}
    one = by_span[first]
    assert one["prompt"] == "system: Be brief.\nuser: Name a colour"
    assert one["output"] == "Blue"
    assert (one["tokens_in"], one["tokens_out"]) == (3, 2)
    assert one["extra"]["flags"] == []
    two = by_span[second]
    assert (two["prompt"], two["output"]) == ("Name a fruit", "Pear")
    assert two["extra"]["flags"] == ["no_usage"]


def test_older_conventions_span_events_and_flattened_attributes_are_read(hub: Any, server_url: str) -> None:
    app = App(server_url, "legacy-bot", _headers(hub))
    with app.tracer.start_as_current_span("completion") as span:  # semconv 1.26: content events
        span.set_attribute("gen_ai.system", "openai")
        span.set_attribute("gen_ai.request.model", "old-model")
        span.set_attribute("gen_ai.usage.prompt_tokens", 7)
        span.set_attribute("gen_ai.usage.completion_tokens", 1)
        span.add_event(
            "gen_ai.content.prompt", {"gen_ai.prompt": json.dumps([{"role": "user", "content": "Say A"}])}
        )
        span.add_event("gen_ai.content.completion", {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "A"}])})  # fmt: skip
    with app.tracer.start_as_current_span("openai.chat") as span:  # OpenLLMetry's flattened attributes
        span.set_attribute("gen_ai.request.model", "old-model")
        span.set_attribute("gen_ai.prompt.0.role", "user")
        span.set_attribute("gen_ai.prompt.0.content", "Say B")
        span.set_attribute("gen_ai.completion.0.role", "assistant")
        span.set_attribute("gen_ai.completion.0.content", "B")
    app.close()
    (run,) = _trace_runs(hub)
    samples = _samples(hub, run["id"])
    assert [(s["prompt"], s["output"]) for s in samples] == [("Say A", "A"), ("Say B", "B")]
    assert samples[0]["extra"]["provider"] == "openai" and (
        samples[0]["tokens_in"],
        samples[0]["tokens_out"],
    ) == (7, 1)
    assert samples[1]["extra"]["flags"] == ["no_usage"]
    assert "gen_ai.prompt.0.content" not in samples[1]["extra"]["attributes"]  # content is in prompt, once


def _otlp_json(spans: list[dict[str, Any]], service: str = "json-app") -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "hand"}, "spans": spans}],
    }]}  # fmt: skip


def _attr(key: str, **value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def test_bad_bodies_are_refused_clearly_and_incomplete_spans_kept_flagged(hub: Any, server_url: str) -> None:
    url = f"{server_url}/api/otlp/v1/traces"
    h = _headers(hub)
    pb = {**h, "content-type": "application/x-protobuf"}
    js = {**h, "content-type": "application/json"}

    def refused(status: int, code: str, words: str, **kw: Any) -> None:
        answer = httpx.post(url, **kw)
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["code"] == code and words in error["message"], error

    refused(
        400,
        "invalid_otlp",
        "not a protobuf OTLP ExportTraceServiceRequest",
        content=b"\x0a\xff\xff",
        headers=pb,
    )
    refused(400, "invalid_otlp", "wire type 7", content=b"\x0f\x00", headers=pb)
    refused(400, "invalid_otlp", "not JSON", content=b"{nope", headers=js)
    refused(
        400, "invalid_otlp", "expected 'resourceSpans', got 'spans'", content=b'{"spans": []}', headers=js
    )
    refused(400, "invalid_otlp", "must be a list", content=b'{"resourceSpans": 3}', headers=js)
    refused(400, "invalid_otlp", "not valid gzip", content=b"xx", headers={**pb, "content-encoding": "gzip"})
    bomb = gzip.compress(b" " * (33 * 2**20))  # 32 KiB that inflate past the server's 32 MiB
    refused(
        413,
        "too_large",
        "inflates past the server's limit",
        content=bomb,
        headers={**js, "content-encoding": "gzip"},
    )
    refused(415, "unsupported_media_type", "send application/x-protobuf or application/json", content=b"x",
            headers={**h, "content-type": "text/plain"})  # fmt: skip
    refused(415, "unsupported_media_type", "Content-Encoding 'br'", content=b"{}",
            headers={**js, "content-encoding": "br"})  # fmt: skip
    assert _trace_runs(hub) == []  # nothing refused was stored

    # OTLP/JSON, gzip: spans with what they have, each kept and flagged
    trace = "5b8efff798038103d269b633813fc60c"
    spans = [
        {"traceId": trace, "spanId": "eee19b7ec3c1b174", "name": "chat", "startTimeUnixNano": "1700000000000000000",
         "endTimeUnixNano": "1700000000250000000", "kind": 3,
         "attributes": [_attr("gen_ai.operation.name", stringValue="chat"),
                        _attr("gen_ai.output.messages", stringValue='[{"role":"assistant","parts":[{"type":"text","content":"ok"}]}]'),
                        _attr("gen_ai.request.temperature", doubleValue="NaN")]},
        {"traceId": trace, "name": "no ids, no times", "attributes": [_attr("gen_ai.request.model", stringValue="m")]},
        {"traceId": trace, "spanId": "aaaaaaaaaaaaaaaa", "name": "db query", "startTimeUnixNano": 1700000000000000001,
         "endTimeUnixNano": 1700000000000000002},
        {"traceId": trace, "spanId": "bbbbbbbbbbbbbbbb", "name": "surrogate", "startTimeUnixNano": 1700000000000000003,
         "endTimeUnixNano": 1700000000000000004,
         "attributes": [_attr("gen_ai.request.model", stringValue="m"), _attr("gen_ai.prompt", stringValue="bad \ud800 text")]},
    ]  # fmt: skip
    body = gzip.compress(json.dumps(_otlp_json(spans)).encode())
    answer = httpx.post(url, content=body, headers={**js, "content-encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["stored"], got["flagged"]) == (4, 4)
    assert "4 of 4 kept flagged" in got["partialSuccess"]["errorMessage"]
    assert got["partialSuccess"]["rejectedSpans"] == 0
    (run,) = _trace_runs(hub)
    assert got["run_ids"] == [run["id"]]
    by_name = {s["extra"]["name"]: s for s in _samples(hub, run["id"])}
    chat = by_name["chat"]
    assert chat["output"] == "ok" and chat["latency_ms"] == pytest.approx(250.0)
    assert chat["extra"]["flags"] == ["no_model", "no_usage", "no_prompt"]
    assert chat["extra"]["kind"] == "client"
    assert chat["extra"]["attributes"]["gen_ai.request.temperature"] == "nan"  # a NaN is kept as text
    bare = by_name["no ids, no times"]
    assert bare["sample_key"].startswith("nospan:")
    assert bare["extra"]["flags"] == ["no_span_id", "no_times", "no_usage", "no_prompt", "no_completion"]
    assert by_name["db query"]["extra"]["flags"] == ["not_genai"]
    odd = by_name["surrogate"]
    assert odd["prompt"] is None and "invalid:prompt" in odd["extra"]["flags"]
    # the same spans again (an exporter's retry) change nothing
    assert httpx.post(url, content=body, headers={**js, "content-encoding": "gzip"}).json()["stored"] == 4
    assert len(_samples(hub, run["id"])) == 4
    empty = httpx.post(url, content=b"", headers=pb)  # an empty export request is valid OTLP
    assert empty.status_code == 200 and empty.content == b""


def test_the_protobuf_reader_reads_what_opentelemetry_proto_reads() -> None:
    """The server's own wire reader against the official ``opentelemetry-proto`` messages, on spans the
    SDK encoded: every value type of an attribute, events, status, parent, resource."""
    from evalhub_server import otlp
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Status, StatusCode

    finished: list[Any] = []

    class Keep(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            finished.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": "wire", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("wire", "1.2")
    with tracer.start_as_current_span("outer"):
        with tracer.start_as_current_span("inner") as span:
            span.set_attributes({"s": "héllo", "i": -42, "big": 2**62, "f": 0.25, "inf": math.inf, "b": True,
                                 "ss": ["a", "b"], "ii": [1, -2], "ff": [1.5], "bb": [True, False]})  # fmt: skip
            span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "x", "n": 1})
            span.set_status(Status(StatusCode.ERROR, "boom"))
    raw = encode_spans(finished).SerializeToString()
    ours = {s.name: s for s in otlp.read_spans(raw, "protobuf")}
    theirs = ExportTraceServiceRequest.FromString(raw)
    (rs,) = theirs.resource_spans
    for ref in rs.scope_spans[0].spans:
        got = ours[ref.name]
        assert got.trace_id == ref.trace_id.hex() and got.span_id == ref.span_id.hex()
        assert got.parent_span_id == (ref.parent_span_id.hex() or None)
        assert (got.start_ns, got.end_ns, got.kind) == (
            ref.start_time_unix_nano,
            ref.end_time_unix_nano,
            ref.kind,
        )
        assert got.scope == {"name": "wire", "version": "1.2"}
        assert got.resource["service.name"] == "wire" and got.resource["n"] == 3
    inner = ours["inner"]
    assert inner.attributes == {"s": "héllo", "i": -42, "big": 2**62, "f": 0.25, "inf": math.inf, "b": True,
                                "ss": ["a", "b"], "ii": [1, -2], "ff": [1.5], "bb": [True, False]}  # fmt: skip
    assert inner.events[0]["name"] == "gen_ai.content.prompt"
    assert inner.events[0]["attributes"] == {"gen_ai.prompt": "x", "n": 1}
    assert inner.status == {"code": 2, "message": "boom"}
    for cut in (1, len(raw) // 2, len(raw) - 1):  # a truncated body is an error, never a crash
        with pytest.raises(otlp.BadOtlp, match="not a protobuf OTLP"):
            otlp.read_spans(raw[:cut], "protobuf")


def test_traces_keep_to_the_project_of_the_token(server_for: Any) -> None:
    admin = "admin-secret"
    server = server_for(auth="token", admin_token=admin)
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"})
    tokens = {}
    for name in ("alpha", "beta"):
        assert http.post("/api/projects", json={"name": name}).status_code == 201
        tokens[name] = http.post(f"/api/projects/{name}/tokens", json={"name": "app"}).json()["token"]
    app = App(server.url, "alpha-app", {"Authorization": f"Bearer {tokens['alpha']}"})
    app.ask("q", "a")
    app.close()
    body = json.dumps(_otlp_json([])).encode()
    none = httpx.post(
        f"{server.url}/api/otlp/v1/traces", content=body, headers={"content-type": "application/json"}
    )
    assert none.status_code == 401
    alpha = evalhub.connect(server.url, token=tokens["alpha"])
    beta = evalhub.connect(server.url, token=tokens["beta"])
    try:
        (run,) = _trace_runs(alpha)
        assert _trace_runs(beta) == []
        assert httpx.get(f"{server.url}/api/runs/{run['id']}/samples",
                         headers={"Authorization": f"Bearer {tokens['beta']}"}).status_code == 404  # fmt: skip
    finally:
        alpha.close()
        beta.close()


@pytest.mark.slow
def test_an_app_calling_the_tiny_model_through_evalhubs_openai_server_is_traced_and_scored(
    hub: Any, server_url: str
) -> None:
    """The real thing end to end: the tiny model served by ``evalhub.serve_openai``, an application that
    calls ``/v1/chat/completions`` with httpx and records each call as a GenAI span (what the model got,
    what it answered, its usage), exported by the SDK to evalhub; then scored."""
    from _tinymodel import tiny_path

    from evalhub.adapters import CheckpointRef, load_adapter
    from evalhub.serve_openai import start

    adapter = load_adapter(CheckpointRef("tiny-gpt", "step", str(tiny_path()), "hf"))
    app = App(server_url, "tiny-app", _headers(hub))
    answers = []
    try:
        with start(adapter, "tiny-gpt") as model:
            for question in ("12+7=", "3+4=", "20+5="):
                with app.tracer.start_as_current_span("chat tiny-gpt") as span:
                    messages = [{"role": "user", "content": question}]
                    span.set_attribute("gen_ai.operation.name", "chat")
                    span.set_attribute("gen_ai.request.model", "tiny-gpt")
                    span.set_attribute("gen_ai.input.messages", json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": question}]}]
                    ))  # fmt: skip
                    reply = httpx.post(f"{model.url}/chat/completions", json={
                        "model": "tiny-gpt", "messages": messages, "max_tokens": 8, "temperature": 0,
                    }, timeout=60).json()  # fmt: skip
                    text = reply["choices"][0]["message"]["content"]
                    answers.append(text)
                    span.set_attribute("gen_ai.output.messages", json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": text}],
                          "finish_reason": reply["choices"][0]["finish_reason"]}]
                    ))  # fmt: skip
                    span.set_attribute("gen_ai.response.model", reply["model"])
                    span.set_attribute("gen_ai.usage.input_tokens", reply["usage"]["prompt_tokens"])
                    span.set_attribute("gen_ai.usage.output_tokens", reply["usage"]["completion_tokens"])
                    span.set_attribute("evalhub.reference", str(eval(question[:-1])))
    finally:
        app.close()
        adapter.close()
    (run,) = _trace_runs(hub)
    samples = _samples(hub, run["id"])
    assert [s["output"] for s in samples] == answers
    assert all(s["latency_ms"] > 0 and s["extra"]["response_model"] == "tiny-gpt" for s in samples)
    assert all(s["tokens_in"] > 0 and s["extra"]["flags"] == [] for s in samples)
    scored = hub.score(run["id"], Function(lambda s: {"nonempty": bool(s["output"].strip())}, name="form"))
    assert scored.height == 1
    scores = [s["scores"] for s in _samples(hub, run["id"])]
    assert [sc["form.nonempty"] for sc in scores] == [float(bool(a.strip())) for a in answers]


def test_spans_and_their_log_records_merge_on_each_backend(any_server: Any) -> None:
    """On SQLite and MariaDB: the log record of a call's answer before its span, the span, a retry of
    both, and several exports at once for a service that has no run yet (one run, every sample once)."""
    from concurrent.futures import ThreadPoolExecutor

    project = f"p{uuid.uuid4().hex[:8]}"
    js = {"content-type": "application/json", "x-evalhub-project": project}
    trace = uuid.uuid4().hex
    choice = {"resourceLogs": [{"resource": {"attributes": [_attr("service.name", stringValue="merge-app")]},
              "scopeLogs": [{"logRecords": [{"traceId": trace, "spanId": "1" * 16, "eventName": "gen_ai.choice",
                                             "body": {"kvlistValue": {"values": [_attr("message", kvlistValue={"values": [
                                                 _attr("content", stringValue="forty-two")]})]}}}]}]}]}  # fmt: skip
    span = {"traceId": trace, "spanId": "1" * 16, "name": "chat", "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000500000000",
            "attributes": [_attr("gen_ai.request.model", stringValue="m"), _attr("gen_ai.usage.input_tokens", intValue="4"),
                           _attr("gen_ai.input.messages", stringValue='[{"role":"user","content":"the answer?"}]')]}  # fmt: skip
    url = any_server.url
    with httpx.Client(base_url=url, headers=js) as http:
        first = http.post("/api/otlp/v1/logs", content=json.dumps(choice)).json()
        assert first["flags"] == {"span_missing": 1, "no_prompt": 1}
        (run_id,) = first["run_ids"]
        for _ in range(2):  # the span, then a retry of both
            assert (
                http.post("/api/otlp/v1/traces", content=json.dumps(_otlp_json([span], "merge-app"))).json()[
                    "flagged"
                ]
                == 0
            )
        assert http.post("/api/otlp/v1/logs", content=json.dumps(choice)).json()["flagged"] == 0
        (sample,) = http.get(f"/api/runs/{run_id}/samples").json()["items"]
        assert (sample["prompt"], sample["output"], sample["tokens_in"]) == ("the answer?", "forty-two", 4)
        assert sample["latency_ms"] == pytest.approx(500.0) and sample["extra"]["flags"] == []

        def export(i: int) -> list[int]:
            body = _otlp_json([{**span, "traceId": trace, "spanId": f"{i + 2:016x}"}], "busy-app")
            answer = httpx.post(f"{url}/api/otlp/v1/traces", content=json.dumps(body), headers=js, timeout=60)
            assert answer.status_code == 200, answer.text
            return list(answer.json()["run_ids"])

        with ThreadPoolExecutor(8) as pool:
            runs = {r for ids in pool.map(export, range(16)) for r in ids}
        assert len(runs) == 1
        assert http.get(f"/api/runs/{runs.pop()}/samples").json()["total"] == 16


def test_online_evaluation_scores_a_sampled_share_of_the_calls_as_they_come(
    hub: Any, server_url: str
) -> None:
    from evalhub.errors import InvalidValue
    from evalhub.services.traces import picked

    app = App(server_url, "live-bot", _headers(hub))

    def ask(numbers: range) -> None:
        for i in numbers:  # every third answer is wrong
            app.ask(f"What is {i}+1?", f"The answer is {i + 1 if i % 3 else i}", reference=str(i + 1))
        app.provider.force_flush()

    ask(range(20))
    with pytest.raises(InvalidValue, match="share must be in"):
        hub.evaluate_traces("live-bot", Regex(r"answer is (\d+)", name="live"), share=0)
    with pytest.raises(InvalidValue, match="no open trace run"):
        hub.evaluate_traces("no-such-bot", Regex(r"(\d+)", name="live"))
    online = hub.evaluate_traces("live-bot", Regex(r"answer is (\d+)", name="live"), share=0.5, seed=7)
    run_id = online.run_id

    def calls() -> list[dict[str, Any]]:
        return [s for s in _samples(hub, run_id) if s["extra"].get("genai")]

    chosen = {c["sample_key"] for c in calls() if picked(c["sample_key"], 0.5, 7)}
    assert 0 < len(chosen) < 20
    assert online.step() == len(chosen)
    assert online.step() == 0  # nothing new: nothing scored twice
    online.start(every=0.1)  # from here on, a thread steps by itself
    ask(range(20, 30))
    every_call = calls()
    chosen = {c["sample_key"] for c in every_call if picked(c["sample_key"], 0.5, 7)}
    deadline = time.monotonic() + 30
    while online.scored < len(chosen) and time.monotonic() < deadline:
        time.sleep(0.1)
    done = online.stop()
    app.close()
    assert online.scored == len(chosen) and online.error is None
    assert done["status"] == "completed"
    scored = {
        s["sample_key"]: s["scores"] for s in _samples(hub, run_id) if "live.exact_match" in s["scores"]
    }
    assert set(scored) == chosen  # the share, and only calls (the app's own spans are not)
    right = [float(int(c["reference"]) % 3 != 1) for c in every_call if c["sample_key"] in chosen]
    assert [
        scored[c["sample_key"]]["live.exact_match"] for c in every_call if c["sample_key"] in chosen
    ] == right
    assert hub.metrics(run_id)["live.exact_match"] == pytest.approx(sum(right) / len(right))
    (row,) = hub.scorings(run_id=run_id).to_dicts()
    assert row["config"] is not None and "online" in str(row["config"])


def test_a_judge_rates_the_calls_of_a_trace_run(hub: Any, server_url: str, tmp_path: Any) -> None:
    """A pointwise judge over a trace run: the deterministic ``python`` plugin judge of
    ``tests/_judges.py`` (what is tested is the pipeline, not the quality of a judgement), run through the
    real worker class in this process (``InProcessExecutor``); every call stored with its sample."""
    from _judges import InProcessExecutor, register_judge

    from evalhub.scorers import Judge

    app = App(server_url, "judged-bot", _headers(hub))
    asked = [("what is 2 + 3", "5"), ("what is 4 + 4", "9"), ("what is 1 + 6", "7")]
    for question, answer in asked:
        app.ask(question, answer)
    app.close()
    (run,) = _trace_runs(hub)
    judge = register_judge(hub, tmp_path)
    scored = hub.score(run["id"], Judge(judge), executor=InProcessExecutor())
    assert scored["status"].to_list() == ["completed"]
    samples = {s["sample_key"]: s for s in _samples(hub, run["id"])}
    calls = hub.judge_calls(run["id"])
    by_key = {row["sample_key"]: row for row in calls.iter_rows(named=True)}
    rated = {
        samples[k]["prompt"]: row["score"] for k, row in by_key.items() if samples[k]["extra"].get("genai")
    }
    assert rated == {"what is 2 + 3": 9.0, "what is 4 + 4": 2.0, "what is 1 + 6": 9.0}
    for key, row in by_key.items():
        if samples[key]["extra"].get("genai"):
            assert samples[key]["scores"]["judge.score"] == row["score"] and "[Question]" in row["prompt"]
    assert hub.metrics(run["id"])["judge.score"] == pytest.approx((9 + 2 + 9) / 3)


def test_a_span_without_gen_ai_attributes_whose_log_records_carry_messages_is_a_call() -> None:
    """A span that names no ``gen_ai.*`` attribute but whose log records are GenAI events is an LLM call
    (flagged for what it lacks), not one of the application's own spans."""
    from evalhub_server.otlp import LogRecord, Span
    from evalhub_server.traces import log_part, merge, sample_of, span_part

    span = Span(
        "ab" * 16, "cd" * 8, None, "llm", 3, 10**18, 10**18 + 2 * 10**6, {"http.method": "POST"}, [], {}, {}
    )
    key, part = span_part(span)
    assert sample_of(key, part).extra["flags"] == ["not_genai"]  # type: ignore[index]
    record = LogRecord(
        "ab" * 16, "cd" * 8, 10**18 + 1, "gen_ai.choice", {"message": {"content": "hi"}}, {}, {}
    )
    log_key, log = log_part(record) or ("", {})
    assert log_key == key
    sample = sample_of(key, merge(part, log))
    assert (sample.output, sample.latency_ms) == ("hi", 2.0)
    assert sample.extra is not None and sample.extra["flags"] == ["no_model", "no_usage", "no_prompt"]
    assert log_part(LogRecord(None, None, None, None, "a plain line", {}, {})) is None
