"""The Store: every operation of the REST API as one method over SQL; the routes only translate HTTP.

- ``store.access``: projects and tokens (:mod:`.access`)
- ``store.registry``: families, models, checkpoints, datasets, tasks, benchmarks (:mod:`.registry`)
- ``store.runs``: runs and experiments, their state machine and lease reaping (:mod:`.runs`)
- ``store.reads``: metrics, series, samples, logs, comparisons (:mod:`.reads`)
- ``store.artifacts``: a run's files (:mod:`.artifacts`)
- ``store.scoring``: rescorings of runs, their per-sample scores and judge calls (:mod:`.scoring`)
- ``store.annotation``: annotation queues, their items and people's labels (:mod:`.annotation`)
- ``store.traces``: spans of applications' LLM calls, stored as samples of trace runs (:mod:`.traces`)
- ``store.columns``: a run's samples read as columns (:mod:`.columns`)
- ``store.ingest(...)``: an event batch (:mod:`.ingest`)
"""

from __future__ import annotations

from typing import Any

from .access import AccessStore
from .annotation import AnnotationStore
from .artifacts import ArtifactStore
from .columns import ColumnReader
from .db import Database
from .reads import ReadStore
from .registry import RegistryStore
from .runs import RunStore
from .schedules import ScheduleStore
from .scoring import ScoringStore
from .traces import TraceStore


class Store:
    def __init__(
        self, db: Database, artifacts_dir: Any, lease_s: float = 60.0, staging_dir: Any = None
    ) -> None:
        self.db = db
        self.access = AccessStore(db)
        self.registry = RegistryStore(db)
        self.runs = RunStore(db, lease_s=lease_s)
        self.reads = ReadStore(db, self.runs)
        self.artifacts = ArtifactStore(db, artifacts_dir, staging_dir)
        self.runs.artifacts = self.artifacts  # a purged run takes its files along
        self.scoring = ScoringStore(db, self.runs)
        self.columns = ColumnReader(db)
        self.annotation = AnnotationStore(db, self.runs, self.reads)
        self.traces = TraceStore(db, self.runs)
        self.schedules = ScheduleStore(db)

    def ingest(
        self, pid: int, run_id: int, stream: str, events: list[Any], attempt: int | None = None
    ) -> dict[str, Any]:
        from .ingest import apply_batch

        return apply_batch(self.db, self.runs, pid, run_id, stream, events, attempt=attempt)


__all__ = ["AccessStore", "RegistryStore", "Store"]
