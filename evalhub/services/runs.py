"""The runs service: start a training run to log into, and read any run back — its metrics, series
(downsampled, or every raw point), samples, logs and artifacts; correct, delete and restore runs.

>>> runs = Runs(client)
>>> with runs.init_run("train", config={"lr": 3e-4}) as run:
...     run.log({"loss": 1.9}, step=1)
>>> runs.series(run.id, "loss", max_points=None)       # every point, paged from the server
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from evalhub._frames import frame, kind_frame, number_column, raw_frame, series_frame
from evalhub.client import Client
from evalhub.errors import InvalidValue
from evalhub.protocol import from_wire

if TYPE_CHECKING:
    import polars as pl

    from evalhub.tracking import Run

RAW_PAGE = 50_000  # points per page of a raw read: bounded memory on both sides


class Runs:
    """Runs of one project on one tracking server."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _list(self, path: str, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for item in self.client.paged(path, limit=min(limit or 1000, 1000), **filters):
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return items

    # -- training runs -----------------------------------------------------------------------------

    def init_run(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        type: str = "training",
        tags: Mapping[str, Any] | None = None,
        experiment_id: int | None = None,
        model: str | None = None,
        system_metrics: bool = True,
        system_metrics_interval: float = 10.0,
        plugins: Sequence[Any] | None = None,
    ) -> Run:
        """Start a run to log into (W&B style); use it as a context manager or call ``finish()``.

        ``model`` (a registered model) lets ``run.log_checkpoint`` register checkpoints without
        naming it each time. System metrics (``sys/*``) are sampled unless ``system_metrics=False``.
        ``plugins`` (see :mod:`evalhub.metric_plugins`) see its points as they are logged and add
        series and metrics of their own.
        """
        from evalhub.tracking import Run

        if plugins:  # refused before the run exists
            from evalhub.metric_plugins import resolve_all

            plugins = resolve_all(plugins)

        body = {
            "name": name,
            "type": type,
            "config": dict(config or {}),
            "tags": dict(tags or {}),
            "experiment_id": experiment_id,
        }
        data = self.client.post("/runs", {k: v for k, v in body.items() if v is not None})
        return Run(
            self.client,
            data,
            system_metrics=system_metrics,
            system_metrics_interval=system_metrics_interval,
            model=model,
            plugins=plugins,
        )

    # -- reads -------------------------------------------------------------------------------------

    def run(self, run_id: int) -> dict[str, Any]:
        """One run by id."""
        result: dict[str, Any] = self.client.get(f"/runs/{int(run_id)}")
        return result

    def runs(
        self,
        experiment_id: int | None = None,
        status: str | None = None,
        type: str | None = None,
        model: str | None = None,
        task: str | None = None,
        limit: int | None = None,
        archived: bool = False,
    ) -> pl.DataFrame:
        """Runs, filtered, as a DataFrame (``archived=True``: the deleted ones, restorable)."""
        items = self._list(
            "/runs", limit=limit, experiment_id=experiment_id, status=status, type=type, model=model, task=task,
            archived=archived or None,
        )  # fmt: skip
        return kind_frame("runs", items)

    def series(
        self,
        run_id: int | Sequence[int],
        key: str,
        max_points: int | None = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> pl.DataFrame:
        """A series as a DataFrame ``step, value, min, max, wall_time``.

        ``max_points`` is the point budget of a read downsampled on the server (every point comes back
        when there are no more than that); ``max_points=None`` reads every raw point, paged from the
        server. Several run ids give one frame with a ``run_id`` column.
        """
        import polars as pl

        if not isinstance(run_id, int):
            ids = [int(r) for r in run_id]
            if max_points is None:
                frames = [self.series(i, key, None, min_step, max_step).insert_column(0, pl.lit(i).alias("run_id"))
                          for i in ids]  # fmt: skip
                return pl.concat(frames) if frames else series_frame([], run_id=0).clear()
            answer = self.client.get("/series", run_ids=ids, key=key, max_points=max_points)
            return pl.concat(
                [series_frame(s.get("points", []), run_id=int(s["run_id"])) for s in answer.get("series", [])]
                or [series_frame([], run_id=0).clear()]
            )
        if max_points is None:
            pages = [raw_frame(page) for page in self.raw_pages(run_id, key, min_step, max_step)]
            return pl.concat(pages) if pages else raw_frame({})
        answer = self.client.get(
            f"/runs/{run_id}/series", key=key, max_points=max_points, min_step=min_step, max_step=max_step
        )
        return series_frame(answer.get("points", []))

    def raw_pages(
        self, run_id: int, key: str, min_step: int | None = None, max_step: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every raw point of a series in step order, one server page at a time: each a dict of
        ``step``, ``value`` (wire numbers: NaN/±inf as strings) and ``wall_time`` columns."""
        after = None if min_step is None else str(int(min_step) - 1)
        while True:
            page = self.client.get(f"/runs/{int(run_id)}/series/points", key=key, after=after, limit=RAW_PAGE)
            steps = page.get("step", [])
            if max_step is not None and steps and steps[-1] > max_step:
                end = bisect.bisect_right(steps, max_step)
                yield {name: page.get(name, [])[:end] for name in ("step", "value", "wall_time")}
                return
            yield page
            after = page.get("next")
            if after is None:
                return

    def export_series(self, run_id: int, key: str, path: str | os.PathLike[str]) -> Path:
        """Write every raw point of a series to a Parquet file, page by page (bounded memory)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = Path(path).expanduser()
        schema = pa.schema([("step", pa.int64()), ("value", pa.float64()), ("wall_time", pa.float64())])
        with pq.ParquetWriter(str(target), schema) as writer:
            for page in self.raw_pages(run_id, key):
                columns = {"step": page.get("step", []), "value": number_column(page.get("value", [])),
                           "wall_time": page.get("wall_time", [])}  # fmt: skip
                writer.write_table(pa.Table.from_pydict(columns, schema=schema))
        return target

    def series_keys(self, run_id: int) -> pl.DataFrame:
        """The series keys of a run with count, last step/value and step range."""
        return frame(self.client.get(f"/runs/{int(run_id)}/series/keys").get("keys", []), ["key", "count"])

    def metrics(self, run_id: int) -> dict[str, float]:
        """A run's summary metrics (NaN and ±inf included: they are values)."""
        values = self.client.get(f"/runs/{int(run_id)}/metrics").get("metrics", {})
        return {k: float(from_wire(v)) for k, v in values.items()}

    def samples(self, run_id: int, limit: int | None = None) -> pl.DataFrame:
        """A run's per-sample results, by index."""
        return frame(self._list(f"/runs/{int(run_id)}/samples", limit=limit), ["index", "sample_key"])

    def logs(self, run_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """A run's log lines, oldest first."""
        return self._list(f"/runs/{int(run_id)}/logs", limit=limit)

    # -- artifacts ---------------------------------------------------------------------------------

    def upload_artifact(
        self, run_id: int, path: str | os.PathLike[str], name: str | None = None
    ) -> dict[str, Any]:
        """Store a file as an artifact of a run; returns ``{"name", "size", "sha256", "uri"}``."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise InvalidValue(f"artifact {file} is not a file")
        result: dict[str, Any] = self.client.put_file(
            f"/runs/{int(run_id)}/artifacts/{quote(name or file.name, safe='')}", file
        )  # streamed: a file of any size, bounded memory
        return result

    def artifacts(self, run_id: int) -> pl.DataFrame:
        """The artifacts of a run."""
        return frame(self._list(f"/runs/{int(run_id)}/artifacts"), ["name", "size", "sha256", "uri"])

    def artifact(self, run_id: int, name: str) -> bytes:
        """The bytes of one artifact of a run (for a large file, :meth:`download_artifact`)."""
        return self.client.get_bytes(f"/runs/{int(run_id)}/artifacts/{quote(name, safe='')}")

    def download_artifact(self, run_id: int, name: str, target: str | os.PathLike[str]) -> Path:
        """Save one artifact of a run to ``target``, streamed (bounded memory)."""
        return self.client.download(f"/runs/{int(run_id)}/artifacts/{quote(name, safe='')}", target)

    # -- correct and remove ------------------------------------------------------------------------

    def patch_run(
        self,
        run_id: int,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Correct a run: a new ``description``; ``tags``/``metadata`` merged (a key set to None is removed)."""
        body = {"description": description, "tags": None if tags is None else dict(tags),
                "metadata": None if metadata is None else dict(metadata)}  # fmt: skip
        result: dict[str, Any] = self.client.request("PATCH", f"/runs/{int(run_id)}", json_body=body)
        return result

    def delete_run(self, run_id: int, *, purge: bool = False) -> dict[str, Any]:
        """Archive a run (hidden from lists and comparisons, restorable), or purge it with its data."""
        result: dict[str, Any] = self.client.request(
            "DELETE", f"/runs/{int(run_id)}", params={"purge": purge}
        )
        return result

    def restore_run(self, run_id: int) -> dict[str, Any]:
        """Bring an archived run back."""
        result: dict[str, Any] = self.client.post(f"/runs/{int(run_id)}/restore")
        return result


__all__ = ["Runs"]
