"""``GET /api/health``: is the server there, which version and contract it speaks, its limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from evalhub.protocol.responses import PROTOCOL_VERSION, Health

from .._version import __version__
from ..deps import JSON

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=Health)
def health(request: Request) -> Any:
    state = request.app.state
    return JSON(
        {
            "status": "ok",
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "db": state.store.db.backend,
            "auth": state.settings.auth_enabled,
            "schema": state.schema_rev,
            "lease_s": state.settings.lease_s,
            "max_text_bytes": state.text_limit,
            "max_request_bytes": state.settings.max_request_bytes,
        }
    )
