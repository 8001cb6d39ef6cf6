"""What the OTLP/HTTP endpoints answer (``POST /api/otlp/v1/traces`` and ``/v1/logs``).

The first field is OTLP's own (``Export{Trace,Logs}ServiceResponse.partial_success``, in OTLP/JSON's
lowerCamelCase, which exporters read); the rest is evalhub's account of where the spans went. A
protobuf request is answered in protobuf with the OTLP part alone.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OtlpPartialSuccess(BaseModel):
    model_config = ConfigDict(extra="allow")

    rejectedSpans: int | None = None
    rejectedLogRecords: int | None = None
    errorMessage: str = Field(default="", description="a warning: how many were kept flagged, and why")


class OtlpAnswer(BaseModel):
    """Spans (or log records of GenAI events) stored as samples of ``trace`` runs, one per service."""

    partialSuccess: OtlpPartialSuccess | None = None
    run_ids: list[int] = Field(default_factory=list, description="the trace runs written to")
    stored: int = Field(0, description="samples written (a span and its messages' log records are one)")
    flagged: int = Field(
        0, description="of which kept with what they had, their extra.flags saying what lacks"
    )
    flags: dict[str, int] = Field(default_factory=dict, description="how many samples carry each flag")
    ignored: int = Field(0, description="log records that are no GenAI event (not stored)")


__all__ = ["OtlpAnswer", "OtlpPartialSuccess"]
