"""One APIRouter per resource; :data:`ROUTERS` is what ``create_app`` includes, in this order."""

from __future__ import annotations

from . import (
    access,
    artifacts,
    cache,
    events,
    experiments,
    health,
    otlp,
    queues,
    registry,
    runs,
    samples,
    schedules,
    scorings,
    series,
)

ROUTERS = [
    health.router,
    access.router,
    *registry.routers,
    experiments.router,
    runs.router,
    events.router,
    series.router,
    samples.router,
    artifacts.router,
    cache.router,
    scorings.router,
    queues.router,
    schedules.router,
    otlp.router,
]

__all__ = ["ROUTERS"]
