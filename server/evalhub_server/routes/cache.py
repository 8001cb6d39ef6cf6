"""The request cache: answers of model requests a worker stored as it went (events of type ``cache``),
looked up by key before a run calls its model (see :mod:`evalhub_server.cache`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from evalhub.protocol import CacheLookup
from evalhub.protocol import responses as r

from .. import cache
from ..deps import COMMON_ERRORS, JSON, CallerDep, StoreDep

router = APIRouter(prefix="/api/cache", tags=["cache"], responses=COMMON_ERRORS)


@router.post("/lookup", response_model=r.CacheValues)
def lookup(body: CacheLookup, c: CallerDep, store: StoreDep) -> Any:
    """The stored answers of these keys (at most 1,000 per request) that the project's cache has."""
    return JSON(cache.lookup(store.db, c.project_id, list(body.keys)))
