"""The Hub: registry calls, reads as polars DataFrames, training runs and experiments.

>>> import evalhub
>>> hub = evalhub.connect()                          # embedded server under EVALHUB_HOME
>>> hub.register_family("tiny-gpt", modality="llm")
>>> hub.register_model("tiny-gpt", family="tiny-gpt", runtime="hf")
>>> hub.models()                                     # polars DataFrame
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.client import Client
from evalhub.errors import Conflict, InvalidValue

if TYPE_CHECKING:
    import polars as pl

    from evalhub.experiment import Experiment
    from evalhub.tracking import Run

# Column order of each list read (other fields follow).
_COLUMNS: dict[str, list[str]] = {
    "families": ["id", "name", "modality", "description", "created_at"],
    "models": ["id", "name", "family", "runtime", "code_uri", "adapter", "created_at"],
    "checkpoints": ["id", "model", "name", "step", "epoch", "uri", "run_id", "created_at"],
    "datasets": ["id", "name", "version", "uri", "num_rows", "content_hash", "created_at"],
    "tasks": ["id", "name", "type", "dataset", "engine", "metrics", "created_at"],
    "benchmarks": ["id", "name", "tasks", "created_at"],
    "experiments": ["id", "name", "status", "counts", "progress", "created_at"],
    "runs": [
        "id",
        "name",
        "type",
        "status",
        "experiment_id",
        "model",
        "checkpoint",
        "step",
        "runtime",
        "task",
        "attempt",
        "error",
        "created_at",
        "started_at",
        "ended_at",
    ],
}


def frame(items: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> pl.DataFrame:
    """A DataFrame of API objects: nested objects become JSON text, lists of strings stay lists."""
    import json

    import polars as pl

    names: list[str] = list(columns)
    for item in items:
        for key in item:
            if key not in names:
                names.append(key)
    data: dict[str, list[Any]] = {name: [] for name in names}
    for item in items:
        for name in names:
            value = item.get(name)
            if isinstance(value, dict) or (
                isinstance(value, list) and not all(isinstance(v, str) for v in value)
            ):
                value = json.dumps(value, sort_keys=True)
            data[name].append(value)
    series = []
    for name, values in data.items():
        if any(isinstance(v, list) for v in values):
            series.append(pl.Series(name, values, dtype=pl.List(pl.String)))
        elif all(v is None for v in values):
            series.append(pl.Series(name, values, dtype=pl.String))
        else:
            series.append(pl.Series(name, values, strict=False))
    return pl.DataFrame(series)


class Hub:
    """A connection to a tracking server and one project. Make one with :func:`connect`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def url(self) -> str:
        """The tracking server's base URL."""
        return self.client.url

    @property
    def token(self) -> str | None:
        """The bearer token (None without auth)."""
        return self.client.token

    @property
    def project(self) -> str:
        """The project every call acts in."""
        return self.client.project

    def __repr__(self) -> str:
        return f"Hub(url={self.url!r}, project={self.project!r})"

    def _repr_html_(self) -> str:
        import html

        return f"<b>evalhub</b> Hub at <code>{html.escape(self.url)}</code>, project <code>{html.escape(self.project)}</code>"

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registry writes ---------------------------------------------------------------------------

    def _create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.client.post(
            f"/{kind}", {k: v for k, v in body.items() if v is not None}
        )
        return result

    def register_family(
        self,
        name: str,
        modality: str = "llm",
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a model family (``modality``: ``llm``, ``t2i``, ``vlm``, …)."""
        return self._create(
            "families", {"name": name, "modality": modality, "description": description, "metadata": metadata}
        )

    def register_model(
        self,
        name: str,
        family: str,
        runtime: str,
        code_uri: str | None = None,
        adapter: str | None = None,
        default_params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a model implementation (``runtime``: ``hf``, ``vllm``, ``openai``, ``python``)."""
        return self._create(
            "models",
            {
                "name": name,
                "family": family,
                "runtime": runtime,
                "code_uri": code_uri,
                "adapter": adapter,
                "default_params": dict(default_params) if default_params else None,
                "metadata": metadata,
            },
        )

    def register_checkpoint(
        self,
        model: str,
        name: str,
        uri: str | os.PathLike[str],
        step: int | None = None,
        epoch: int | None = None,
        dataset_version: str | None = None,
        training_config: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_id: int | None = None,
    ) -> dict[str, Any]:
        """Register a checkpoint of ``model`` (metadata only: the weights stay at ``uri``)."""
        text = os.fspath(uri)
        return self._create(
            "checkpoints",
            {
                "model": model,
                "name": name,
                "uri": text,
                "step": step,
                "epoch": epoch,
                "dataset_version": dataset_version,
                "training_config": dict(training_config) if training_config else None,
                "metadata": metadata,
                "run_id": run_id,
            },
        )

    def register_dataset(
        self,
        name: str,
        uri: str | os.PathLike[str],
        version: str = "1",
        schema: Mapping[str, Any] | None = None,
        num_rows: int | None = None,
        content_hash: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a dataset. For a local file, row count, schema and hash are filled in."""
        text = os.fspath(uri)
        path = Path(text).expanduser()
        if (
            "://" not in text
            and path.is_file()
            and (num_rows is None or content_hash is None or schema is None)
        ):
            from evalhub._taskdata import read_rows

            table = read_rows(path)
            num_rows = table.num_rows if num_rows is None else num_rows
            content_hash = table.content_hash if content_hash is None else content_hash
            schema = table.schema if schema is None else schema
            text = str(path.resolve())
        return self._create(
            "datasets",
            {
                "name": name,
                "uri": text,
                "version": version,
                "schema": dict(schema) if schema else None,
                "num_rows": num_rows,
                "content_hash": content_hash,
                "metadata": metadata,
            },
        )

    def register_task(
        self,
        name: str,
        data: str | os.PathLike[str] | None = None,
        prompt: str | None = None,
        target: str | None = None,
        output_type: str = "generate_until",
        metrics: Sequence[str] | None = None,
        choices: str | Sequence[str] | None = None,
        type: str | None = None,
        generation: Mapping[str, Any] | None = None,
        num_fewshot: int = 0,
        lm_eval_task: str | None = None,
        dataset: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a task: a local data file with prompt templates, or a task lm-eval knows.

        ``data`` is a JSONL or CSV file; ``prompt``/``target`` are lm-eval (Jinja) templates over its
        columns, e.g. ``"{{question}}"``; every column they name must exist in every row.
        ``output_type`` is ``generate_until`` (metric ``exact_match`` by default) or
        ``multiple_choice`` (``choices`` like ``"{{choices}}"``, metric ``acc``), or a
        loglikelihood type. ``generation`` overrides ``until``, ``max_gen_toks``, ``do_sample``.
        ``lm_eval_task="gsm8k"`` registers a task lm-eval already knows instead of a data file.
        The data file is also registered as a dataset (``dataset``, default its file name).
        """
        from evalhub import _taskdata

        if lm_eval_task:
            if data is not None:
                raise InvalidValue(
                    "register_task: give either data= (a local file) or lm_eval_task=, not both"
                )
            return self._create(
                "tasks",
                {
                    "name": name,
                    "type": type or _taskdata.task_type(output_type),
                    "dataset": None,
                    "engine": "lm_eval",
                    "engine_config": {"task": lm_eval_task},
                    "metrics": list(metrics) if metrics else [],
                    "metadata": metadata,
                },
            )
        if data is None:
            raise InvalidValue("register_task needs data= (a JSONL/CSV file) or lm_eval_task= (e.g. 'gsm8k')")
        config = _taskdata.task_config(
            name,
            data,
            prompt=prompt,
            target=target,
            output_type=output_type,
            metrics=metrics,
            choices=choices,
            generation=generation,
            num_fewshot=num_fewshot,
        )
        table = config.pop("_table")
        dataset_name = dataset or Path(os.fspath(data)).stem
        self._ensure_dataset(dataset_name, table)
        return self._create(
            "tasks",
            {
                "name": name,
                "type": type or _taskdata.task_type(output_type),
                "dataset": dataset_name,
                "engine": "lm_eval",
                "engine_config": config,
                "metrics": [m["metric"] for m in config["metric_list"]],
                "metadata": metadata,
            },
        )

    def _ensure_dataset(self, name: str, table: Any) -> dict[str, Any]:
        try:
            return self.register_dataset(
                name,
                str(table.path),
                version=table.content_hash.split(":")[-1][:12],
                schema=table.schema,
                num_rows=table.num_rows,
                content_hash=table.content_hash,
            )
        except Conflict:
            existing = self.dataset(name)
            if existing.get("content_hash") == table.content_hash:
                return existing
            raise Conflict(
                f"a dataset named {name!r} already exists with other content ({existing.get('uri')}); "
                "pass dataset='another-name' to register_task",
                status=409,
                code="conflict",
                field="dataset",
            ) from None

    def register_benchmark(
        self, name: str, tasks: Iterable[str], config: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Register a named set of tasks with a run configuration (batch_size, generation, limit, …)."""
        return self._create("benchmarks", {"name": name, "tasks": list(tasks), "config": dict(config or {})})

    def register_repo(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Register the model of a code repo holding ``ai_eval_config.yaml`` (see :mod:`evalhub.plugin`)."""
        from evalhub.plugin import register_repo

        result: dict[str, Any] = register_repo(self, Path(path))
        return result

    # -- registry reads ----------------------------------------------------------------------------

    def _list(self, kind: str, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for item in self.client.paged(f"/{kind}", limit=min(limit or 1000, 1000), **filters):
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return items

    def _frame(self, kind: str, limit: int | None = None, **filters: Any) -> pl.DataFrame:
        return frame(self._list(kind, limit=limit, **filters), _COLUMNS.get(kind, ()))

    def families(self, modality: str | None = None) -> pl.DataFrame:
        """Model families, as a DataFrame."""
        return self._frame("families", modality=modality)

    def models(self, family: str | None = None, runtime: str | None = None) -> pl.DataFrame:
        """Registered models, as a DataFrame."""
        return self._frame("models", family=family, runtime=runtime)

    def checkpoints(self, model: str | None = None) -> pl.DataFrame:
        """Checkpoints (of ``model``), sorted by step, as a DataFrame."""
        return self._frame("checkpoints", model=model)

    def datasets(self, name: str | None = None) -> pl.DataFrame:
        """Registered datasets, as a DataFrame."""
        return self._frame("datasets", name=name)

    def tasks(self, type: str | None = None) -> pl.DataFrame:
        """Registered tasks, as a DataFrame."""
        return self._frame("tasks", type=type)

    def benchmarks(self) -> pl.DataFrame:
        """Registered benchmarks, as a DataFrame."""
        return self._frame("benchmarks")

    def experiments(self, status: str | None = None, limit: int | None = None) -> pl.DataFrame:
        """Experiments, newest first, as a DataFrame."""
        return self._frame("experiments", limit=limit, status=status)

    def runs(
        self,
        experiment_id: int | None = None,
        status: str | None = None,
        type: str | None = None,
        model: str | None = None,
        task: str | None = None,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """Runs, filtered, as a DataFrame."""
        return self._frame(
            "runs", limit=limit, experiment_id=experiment_id, status=status, type=type, model=model, task=task
        )

    def _one(self, kind: str, ref: str | int) -> dict[str, Any]:
        from urllib.parse import quote

        result: dict[str, Any] = self.client.get(f"/{kind}/{quote(str(ref), safe='')}")
        return result

    def family(self, ref: str | int) -> dict[str, Any]:
        """One family by name or id."""
        return self._one("families", ref)

    def model(self, ref: str | int) -> dict[str, Any]:
        """One model by name or id."""
        return self._one("models", ref)

    def checkpoint(self, model: str | int, name: str | None = None) -> dict[str, Any]:
        """One checkpoint: ``checkpoint(model, name)``, or ``checkpoint(id)``."""
        from evalhub.errors import NotFound

        if name is None:
            return self._one("checkpoints", model)
        page = self.client.get("/checkpoints", model=model, name=name, limit=1)
        items = page.get("items", [])
        if not items:
            self.model(model)  # a missing model says so by name
            raise NotFound(
                f"no checkpoint {name!r} of model {model!r}", status=404, code="not_found", field="name"
            )
        result: dict[str, Any] = items[0]
        return result

    def dataset(self, ref: str | int) -> dict[str, Any]:
        """One dataset by name or id."""
        return self._one("datasets", ref)

    def task(self, ref: str | int) -> dict[str, Any]:
        """One task by name or id."""
        return self._one("tasks", ref)

    def benchmark(self, ref: str | int) -> dict[str, Any]:
        """One benchmark by name or id."""
        return self._one("benchmarks", ref)

    def run(self, run_id: int) -> dict[str, Any]:
        """One run by id."""
        return self._one("runs", int(run_id))

    # -- runs: training and reads ------------------------------------------------------------------

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
    ) -> Run:
        """Start a run to log into (W&B style); use it as a context manager or call ``finish()``.

        ``model`` (a registered model) lets ``run.log_checkpoint`` register checkpoints without
        naming it each time. System metrics (``sys/*``) are sampled unless ``system_metrics=False``.
        """
        from evalhub.tracking import Run

        body = {
            "name": name,
            "type": type,
            "config": dict(config or {}),
            "tags": dict(tags or {}),
            "experiment_id": experiment_id,
        }
        data = self._create("runs", body)
        return Run(
            self,
            data,
            system_metrics=system_metrics,
            system_metrics_interval=system_metrics_interval,
            model=model,
        )

    def series(
        self,
        run_id: int | Sequence[int],
        key: str,
        max_points: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> pl.DataFrame:
        """A series as a DataFrame ``step, value, min, max, wall_time`` (downsampled on the server).

        Several run ids give one frame with a ``run_id`` column.
        """
        import polars as pl

        schema = {
            "step": pl.Int64,
            "value": pl.Float64,
            "min": pl.Float64,
            "max": pl.Float64,
            "wall_time": pl.Float64,
        }
        if isinstance(run_id, int):
            answer = self.client.get(
                f"/runs/{run_id}/series", key=key, max_points=max_points, min_step=min_step, max_step=max_step
            )
            points = answer.get("points", [])
            return pl.DataFrame([{k: p.get(k) for k in schema} for p in points], schema=schema, orient="row")
        ids = [int(r) for r in run_id]
        answer = self.client.get(
            "/series", run_ids=ids, key=key, max_points=max_points, min_step=min_step, max_step=max_step
        )
        rows = [
            {"run_id": s["run_id"], **{k: p.get(k) for k in schema}}
            for s in answer.get("series", [])
            for p in s.get("points", [])
        ]
        return pl.DataFrame(rows, schema={"run_id": pl.Int64, **schema}, orient="row")

    def series_keys(self, run_id: int) -> pl.DataFrame:
        """The series keys of a run with count, last step/value and step range."""
        return frame(self.client.get(f"/runs/{int(run_id)}/series/keys").get("keys", []), ["key", "count"])

    def metrics(self, run_id: int) -> dict[str, float]:
        """A run's summary metrics."""
        result: dict[str, float] = self.client.get(f"/runs/{int(run_id)}/metrics").get("metrics", {})
        return result

    def samples(self, run_id: int, limit: int | None = None) -> pl.DataFrame:
        """A run's per-sample results, by index."""
        return frame(self._list(f"runs/{int(run_id)}/samples", limit=limit), ["index", "sample_key"])

    def logs(self, run_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """A run's log lines, oldest first."""
        return self._list(f"runs/{int(run_id)}/logs", limit=limit)

    def upload_artifact(
        self, run_id: int, path: str | os.PathLike[str], name: str | None = None
    ) -> dict[str, Any]:
        """Store a file as an artifact of a run; returns ``{"name", "size", "sha256", "uri"}``."""
        from urllib.parse import quote

        file = Path(path).expanduser()
        if not file.is_file():
            raise InvalidValue(f"artifact {file} is not a file")
        result: dict[str, Any] = self.client.put_bytes(
            f"/runs/{int(run_id)}/artifacts/{quote(name or file.name, safe='')}", file.read_bytes()
        )
        return result

    def artifacts(self, run_id: int) -> pl.DataFrame:
        """The artifacts of a run."""
        return frame(self._list(f"runs/{int(run_id)}/artifacts"), ["name", "size", "sha256", "uri"])

    def artifact(self, run_id: int, name: str) -> bytes:
        """The bytes of one artifact of a run."""
        from urllib.parse import quote

        return self.client.get_bytes(f"/runs/{int(run_id)}/artifacts/{quote(name, safe='')}")

    # -- experiments -------------------------------------------------------------------------------

    def experiment(self, experiment_id: int) -> Experiment:
        """A handle on an experiment (status, compare, samples, wait, cancel)."""
        from evalhub.experiment import Experiment

        return Experiment(self, int(experiment_id))

    def run_experiment(
        self, spec: Any, wait: bool = True, executor: Any = None, progress: bool = True, **kw: Any
    ) -> Experiment:
        """Compile ``spec`` (YAML text, dict or path) into runs, submit them and (by default) wait."""
        from evalhub.orchestrator import run_experiment

        result: Experiment = run_experiment(self, spec, wait=wait, executor=executor, progress=progress, **kw)
        return result

    def compare(self, experiment_id: int) -> pl.DataFrame:
        """The comparison table of an experiment: one row per run, one column per metric."""
        return compare_frame(self.client.get(f"/experiments/{int(experiment_id)}/compare"))


def compare_frame(answer: Mapping[str, Any]) -> pl.DataFrame:
    """``GET /experiments/{id}/compare`` as a DataFrame: run columns, then one column per metric."""
    import polars as pl

    base = ["run_id", "name", "model", "checkpoint", "step", "runtime", "task", "status"]
    metrics = list(answer.get("metrics", []))
    rows = []
    for run in answer.get("runs", []):
        row = {k: run.get(k) for k in base}
        values = run.get("metrics") or {}
        for m in metrics:
            row[m] = values.get(m)
        rows.append(row)
    schema: dict[str, Any] = {
        "run_id": pl.Int64,
        "name": pl.String,
        "model": pl.String,
        "checkpoint": pl.String,
        "step": pl.Int64,
        "runtime": pl.String,
        "task": pl.String,
        "status": pl.String,
        **{m: pl.Float64 for m in metrics},
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def connect(
    url: str | None = None,
    token: str | None = None,
    project: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    retries: int = 5,
) -> Hub:
    """Connect to a tracking server.

    With no ``url`` (and no ``EVALHUB_URL``), starts or reuses the embedded server under
    ``EVALHUB_HOME`` (default ``~/.evalhub``). ``token`` and ``project`` default to
    ``EVALHUB_TOKEN`` and ``EVALHUB_PROJECT`` (``default``).

    >>> hub = evalhub.connect()                                           # embedded
    >>> hub = evalhub.connect("http://evalhub:8765", token="ehk_...")     # shared
    """
    url = url or os.environ.get("EVALHUB_URL") or None
    token = token or os.environ.get("EVALHUB_TOKEN") or None
    project = project or os.environ.get("EVALHUB_PROJECT") or "default"
    if url is None:
        from evalhub._embedded import ensure_server

        url = str(ensure_server(home)["url"])
    return Hub(Client(url, token=token, project=project, timeout=timeout, retries=retries))


__all__ = ["Hub", "compare_frame", "connect", "frame"]
