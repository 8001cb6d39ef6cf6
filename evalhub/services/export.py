"""Export an experiment whole: its runs, their summary metrics, every sample with every scorer's
scores (the run's own, rescorings', judges' and people's labels, one ``score:<key>`` column each),
the scorings, the judge calls and the annotation labels, as JSON, CSV or Parquet.

>>> hub.export(exp, "exp.json")                       # one JSON document of tables
>>> hub.export(exp, "exp-csv", format="csv")          # a folder: runs.csv, metrics.csv, samples.csv, …
>>> tables = hub.export_tables(exp)                    # the same tables as polars frames
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.client import Client
from evalhub.errors import InvalidValue
from evalhub.protocol import number_from_wire

if TYPE_CHECKING:
    import polars as pl

PAGE = 1000
FORMATS = ("json", "csv", "parquet")
TABLES = ("runs", "metrics", "samples", "scorings", "judge_calls", "labels")
RUN_FIELDS = ("id", "name", "type", "status", "model", "checkpoint", "checkpoint_id", "runtime", "task",
              "created_at", "started_at", "ended_at", "reused_from")  # fmt: skip
SAMPLE_FIELDS = ("run_id", "sample_key", "index", "task", "prompt", "reference", "output", "filtered_output",
                 "primary_score", "latency_ms", "tokens_in", "tokens_out")  # fmt: skip


class Export:
    """An experiment's tables read from the server, and written to files."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def rows(self, experiment_id: int) -> dict[str, list[dict[str, Any]]]:
        """Every table of the export as rows (what JSON holds)."""
        exp = int(experiment_id)
        runs = list(self.client.paged(f"/experiments/{exp}/runs", limit=PAGE))
        out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        for run in runs:
            rid = int(run["id"])
            out["runs"].append({k: run.get(k) for k in RUN_FIELDS})
            metrics = self.client.get(f"/runs/{rid}/metrics").get("metrics", {})
            out["metrics"].extend(
                {"run_id": rid, "key": k, "value": number_from_wire(v)} for k, v in metrics.items()
            )
            for s in self.client.paged(f"/runs/{rid}/samples", limit=PAGE):
                row = {k: (rid if k == "run_id" else s.get(k)) for k in SAMPLE_FIELDS}
                row.update({f"score:{k}": number_from_wire(v) for k, v in (s.get("scores") or {}).items()})
                out["samples"].append(row)
            for call in self.client.paged(f"/runs/{rid}/judge-calls", limit=PAGE):
                out["judge_calls"].append({**call, "score": number_from_wire(call.get("score"))})
        for scoring in self.client.paged("/scorings", limit=PAGE, experiment_id=exp):
            nested = ("config", "judge", "counts", "metrics")  # JSON text in a table's cell
            out["scorings"].append({k: (_text(v) if k in nested else v) for k, v in scoring.items()})
        for queue in self.client.paged("/annotation-queues", limit=PAGE, experiment_id=exp):
            for label in self.client.paged(f"/annotation-queues/{int(queue['id'])}/labels", limit=PAGE):
                out["labels"].append({"queue": queue["name"], "kind": queue["schema"]["kind"], **label})
        return out

    def tables(self, experiment_id: int) -> dict[str, pl.DataFrame]:
        """Every table of the export as a polars frame."""
        import polars as pl

        return {
            name: pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
            for name, rows in self.rows(experiment_id).items()
        }

    def export(self, experiment_id: int, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write the export: ``json`` (one file), ``csv`` or ``parquet`` (a folder, one file per table).
        The format defaults to the path's suffix (``.json``, ``.csv``, ``.parquet``), else JSON."""
        target = Path(path)
        fmt = format or (target.suffix.lstrip(".").lower() if target.suffix else "json")
        if fmt not in FORMATS:
            raise InvalidValue(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
        if fmt == "json":
            info = self.client.get(f"/experiments/{int(experiment_id)}")
            doc = {"experiment": {k: info.get(k) for k in ("id", "name", "project", "created_at")},
                   **self.rows(experiment_id)}  # fmt: skip
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(doc, indent=1, allow_nan=True, default=str), encoding="utf-8")
            return target
        folder = target.with_suffix("") if target.suffix == f".{fmt}" else target
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in self.tables(experiment_id).items():
            file = folder / f"{name}.{fmt}"
            if fmt == "csv":
                table.write_csv(file)
            else:
                table.write_parquet(file)
        return folder


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


__all__ = ["Export"]
