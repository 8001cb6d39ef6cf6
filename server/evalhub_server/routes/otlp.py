"""OTLP/HTTP: ``POST /api/otlp/v1/traces`` and ``/v1/logs`` take what an application instrumented with
OpenTelemetry exports (set ``OTEL_EXPORTER_OTLP_ENDPOINT=<server>/api/otlp``), protobuf or JSON, gzip
or not; LLM calls become samples of ``trace`` runs (see :mod:`evalhub_server.traces`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from evalhub.protocol.traces import OtlpAnswer

from .. import otlp
from ..deps import COMMON_ERRORS, JSON, CallerDep, StoreDep, errors, settings_of
from ..traces import log_part, service_of, span_part

ContentType = Annotated[
    str | None, Header(max_length=255, description="application/x-protobuf or application/json")
]
ContentEncoding = Annotated[str | None, Header(max_length=64, description="gzip, or none")]
router = APIRouter(prefix="/api/otlp/v1", tags=["otlp"], responses=COMMON_ERRORS)

_ANSWERS: dict[int | str, dict[str, Any]] = {
    **errors(400, 413, 415),
    200: {
        "description": "stored; a protobuf request is answered in protobuf (OTLP's part alone)",
        "content": {otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}}},
    },
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            otlp.JSON_TYPE: {"schema": {"type": "object", "description": "OTLP/JSON"}},
        },
    }
}


def _answer(kind: str, answer: dict[str, Any], count_key: str) -> Response:
    flagged = answer["flagged"]
    message = ""
    if flagged:
        flags = ", ".join(f"{name} {n}" for name, n in sorted(answer["flags"].items()))
        message = f"{flagged} of {answer['stored']} kept flagged ({flags}): see extra.flags of their samples"
    if kind == "protobuf":
        return Response(otlp.answer_protobuf(0, message), media_type=otlp.PROTOBUF)
    partial = {count_key: 0, "errorMessage": message} if message else None
    return JSON({"partialSuccess": partial, **answer})


@router.post("/traces", response_model=OtlpAnswer, responses=_ANSWERS, openapi_extra=_BODY)
async def traces(
    request: Request,
    c: CallerDep,
    store: StoreDep,
    content_type: ContentType = None,
    content_encoding: ContentEncoding = None,
) -> Any:
    """An ``ExportTraceServiceRequest``: each span is a sample of its service's open trace run (created
    on the first span), its GenAI attributes read into prompt, output, tokens and latency; a span
    lacking them is kept, flagged. 400 naming what is wrong for a body that is not OTLP."""
    limit = settings_of(request).max_request_bytes
    raw, kind = otlp.body_of(await request.body(), content_type, content_encoding, limit)

    def work() -> dict[str, Any]:
        parts = [(service_of(s.resource), *span_part(s)) for s in otlp.read_spans(raw, kind)]
        return store.traces.ingest(c.project_id, parts)

    return _answer(kind, await run_in_threadpool(work), "rejectedSpans")


@router.post("/logs", response_model=OtlpAnswer, responses=_ANSWERS, openapi_extra=_BODY)
async def logs(
    request: Request,
    c: CallerDep,
    store: StoreDep,
    content_type: ContentType = None,
    content_encoding: ContentEncoding = None,
) -> Any:
    """An ``ExportLogsServiceRequest``: the GenAI events among its records (the messages and choices
    of a call, ``gen_ai.client.inference.operation.details``) fill the sample of the span they name;
    other records are counted in ``ignored`` and not stored."""
    limit = settings_of(request).max_request_bytes
    raw, kind = otlp.body_of(await request.body(), content_type, content_encoding, limit)

    def work() -> dict[str, Any]:
        parts, ignored = [], 0
        for record in otlp.read_logs(raw, kind):
            part = log_part(record)
            if part is None:
                ignored += 1
            else:
                parts.append((service_of(record.resource), *part))
        return {**store.traces.ingest(c.project_id, parts), "ignored": ignored}

    return _answer(kind, await run_in_threadpool(work), "rejectedLogRecords")
