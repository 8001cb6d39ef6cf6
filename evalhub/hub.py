"""The Hub: the facade of the Python surface; every call delegates to a service over one Client.

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

from evalhub._frames import compare_frame, frame
from evalhub.client import Client
from evalhub.services import Experiments, Registry, Runs, Scoring
from evalhub.services.annotation import Annotation, AnnotationQueue
from evalhub.services.export import Export
from evalhub.services.schedules import Schedules
from evalhub.services.traces import OnlineEvaluation, Traces

if TYPE_CHECKING:
    import polars as pl

    from evalhub.experiment import Experiment
    from evalhub.orchestrator import Plan
    from evalhub.tracking import Run


class Hub:
    """A connection to a tracking server and one project: the facade over the services.

    Every call delegates to a service that takes the :class:`~evalhub.client.Client` only:
    ``hub.registry`` (:class:`~evalhub.services.Registry`), ``hub.runs_api``
    (:class:`~evalhub.services.Runs`), ``hub.experiments_api`` (:class:`~evalhub.services.Experiments`)
    ``hub.scoring`` (:class:`~evalhub.services.Scoring`), ``hub.annotation``
    (:class:`~evalhub.services.annotation.Annotation`) and ``hub.traces``
    (:class:`~evalhub.services.traces.Traces`).
    Make one with :func:`connect`.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.registry = Registry(client)
        self.runs_api = Runs(client)
        self.experiments_api = Experiments(client)
        self.scoring = Scoring(client)
        self.annotation = Annotation(client)
        self.export_api = Export(client)
        self.traces = Traces(client)
        self.schedules_api = Schedules(client)

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

    # -- registry (hub.registry) -------------------------------------------------------------------

    def register_family(self, name: str, modality: str = "llm", description: str = "",
                        metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """Register a model family (``modality``: ``llm``, ``t2i``, ``vlm``, …)."""
        return self.registry.register_family(
            name, modality=modality, description=description, metadata=metadata
        )

    def register_model(self, name: str, family: str, runtime: str, code_uri: str | None = None,
                       adapter: str | None = None, default_params: Mapping[str, Any] | None = None,
                       metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """Register a model implementation (``runtime``: ``hf``, ``vllm``, ``openai``, ``python``)."""
        return self.registry.register_model(name, family, runtime, code_uri=code_uri, adapter=adapter,
                                            default_params=default_params, metadata=metadata)  # fmt: skip

    def register_checkpoint(self, model: str, name: str, uri: str | os.PathLike[str], step: int | None = None,
                            epoch: int | None = None, dataset_version: str | None = None,
                            training_config: Mapping[str, Any] | None = None,
                            metadata: Mapping[str, Any] | None = None, run_id: int | None = None) -> dict[str, Any]:  # fmt: skip
        """Register a checkpoint of ``model`` (metadata only: the weights stay at ``uri``)."""
        return self.registry.register_checkpoint(model, name, uri, step=step, epoch=epoch,
                                                 dataset_version=dataset_version, training_config=training_config,
                                                 metadata=metadata, run_id=run_id)  # fmt: skip

    def register_dataset(
        self, name: str, uri: str | os.PathLike[str], version: str = "1", **kw: Any
    ) -> dict[str, Any]:
        """Register a dataset. For a local file, row count, schema and hash are filled in."""
        return self.registry.register_dataset(name, uri, version=version, **kw)

    def register_task(
        self, name: str, data: str | os.PathLike[str] | None = None, **kw: Any
    ) -> dict[str, Any]:
        """Register a task: a local data file with prompt templates, or a task lm-eval knows
        (see :meth:`evalhub.services.Registry.register_task` for every option)."""
        return self.registry.register_task(name, data, **kw)

    def register_image_task(self, name: str, prompts: str | os.PathLike[str], **kw: Any) -> dict[str, Any]:
        """Register a text-to-image task over a prompt set (see :meth:`evalhub.services.Registry.register_image_task`)."""
        return self.registry.register_image_task(name, prompts, **kw)

    def register_benchmark(
        self, name: str, tasks: Iterable[str], config: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Register a named set of tasks with a run configuration (batch_size, generation, limit, …)."""
        return self.registry.register_benchmark(name, tasks, config)

    def register_repo(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Register the model of a code repo holding ``ai_eval_config.yaml`` (see :mod:`evalhub.plugin`)."""
        return self.registry.register_repo(path)

    def families(self, modality: str | None = None) -> pl.DataFrame:
        """Model families, as a DataFrame."""
        return self.registry.families(modality)

    def models(self, family: str | None = None, runtime: str | None = None) -> pl.DataFrame:
        """Registered models, as a DataFrame."""
        return self.registry.models(family, runtime)

    def checkpoints(self, model: str | None = None) -> pl.DataFrame:
        """Checkpoints (of ``model``), sorted by step, as a DataFrame."""
        return self.registry.checkpoints(model)

    def datasets(self, name: str | None = None) -> pl.DataFrame:
        """Registered datasets, as a DataFrame."""
        return self.registry.datasets(name)

    def tasks(self, type: str | None = None) -> pl.DataFrame:
        """Registered tasks, as a DataFrame."""
        return self.registry.tasks(type)

    def benchmarks(self) -> pl.DataFrame:
        """Registered benchmarks, as a DataFrame."""
        return self.registry.benchmarks()

    def family(self, ref: str | int) -> dict[str, Any]:
        """One family by name or id."""
        return self.registry.family(ref)

    def model(self, ref: str | int) -> dict[str, Any]:
        """One model by name or id."""
        return self.registry.model(ref)

    def checkpoint(self, model: str | int, name: str | None = None) -> dict[str, Any]:
        """One checkpoint: ``checkpoint(model, name)``, or ``checkpoint(id)``."""
        return self.registry.checkpoint(model, name)

    def dataset(self, ref: str | int) -> dict[str, Any]:
        """One dataset by name or id."""
        return self.registry.dataset(ref)

    def task(self, ref: str | int) -> dict[str, Any]:
        """One task by name or id."""
        return self.registry.task(ref)

    def benchmark(self, ref: str | int) -> dict[str, Any]:
        """One benchmark by name or id."""
        return self.registry.benchmark(ref)

    def patch(self, kind: str, ref: str | int, **changes: Any) -> dict[str, Any]:
        """Correct a registry object, a run (``"runs"``) or an experiment (``"experiments"``):
        ``description=``, ``tags=`` and ``metadata=`` (merged: a key set to None is removed)."""
        if kind in ("run", "runs"):
            return self.runs_api.patch_run(int(ref), **changes)
        if kind in ("experiment", "experiments"):
            return self.experiments_api.patch_experiment(int(ref), **changes)
        return self.registry.patch(kind, ref, **changes)

    def delete(
        self, kind: str, ref: str | int, *, cascade: bool = False, purge: bool = False
    ) -> dict[str, Any]:
        """Delete a registry object, a run or an experiment: archived (hidden, restorable) unless
        ``purge``; an object others refer to is refused with the referrers named unless ``cascade``."""
        if kind in ("run", "runs"):
            return self.runs_api.delete_run(int(ref), purge=purge)
        if kind in ("experiment", "experiments"):
            return self.experiments_api.delete_experiment(int(ref), purge=purge)
        return self.registry.delete(kind, ref, cascade=cascade, purge=purge)

    def restore(self, kind: str, ref: str | int) -> dict[str, Any]:
        """Bring back what a delete archived."""
        if kind in ("run", "runs"):
            return self.runs_api.restore_run(int(ref))
        if kind in ("experiment", "experiments"):
            return self.experiments_api.restore_experiment(int(ref))
        return self.registry.restore(kind, ref)

    # -- runs (hub.runs_api) -----------------------------------------------------------------------

    def init_run(self, name: str, config: Mapping[str, Any] | None = None, type: str = "training",
                 tags: Mapping[str, Any] | None = None, experiment_id: int | None = None, model: str | None = None,
                 system_metrics: bool = True, system_metrics_interval: float = 10.0,
                 plugins: Sequence[Any] | None = None) -> Run:  # fmt: skip
        """Start a run to log into (W&B style); use it as a context manager or call ``finish()``.

        ``model`` (a registered model) lets ``run.log_checkpoint`` register checkpoints without
        naming it each time. System metrics (``sys/*``) are sampled unless ``system_metrics=False``.
        ``plugins`` (metric plugins, :mod:`evalhub.metric_plugins`) see its points as they are logged
        and add series and metrics of their own, e.g. ``[Quantiles("grad_norm", every=100)]``.
        """
        return self.runs_api.init_run(name, config=config, type=type, tags=tags, experiment_id=experiment_id,
                                      model=model, system_metrics=system_metrics,
                                      system_metrics_interval=system_metrics_interval, plugins=plugins)  # fmt: skip

    def run(self, run_id: int) -> dict[str, Any]:
        """One run by id."""
        return self.runs_api.run(run_id)

    def runs(self, experiment_id: int | None = None, status: str | None = None, type: str | None = None,
             model: str | None = None, task: str | None = None, limit: int | None = None) -> pl.DataFrame:  # fmt: skip
        """Runs, filtered, as a DataFrame."""
        return self.runs_api.runs(experiment_id, status, type, model, task, limit)

    def series(self, run_id: int | Sequence[int], key: str, max_points: int | None = 1000,
               min_step: int | None = None, max_step: int | None = None) -> pl.DataFrame:  # fmt: skip
        """A series as a DataFrame ``step, value, min, max, wall_time``: downsampled on the server to
        ``max_points``, or every raw point with ``max_points=None`` (paged, bounded memory)."""
        return self.runs_api.series(run_id, key, max_points, min_step, max_step)

    def export_series(self, run_id: int, key: str, path: str | os.PathLike[str]) -> Path:
        """Every raw point of a series into a Parquet file, page by page."""
        return self.runs_api.export_series(run_id, key, path)

    def series_keys(self, run_id: int) -> pl.DataFrame:
        """The series keys of a run with count, last step/value and step range."""
        return self.runs_api.series_keys(run_id)

    def metrics(self, run_id: int) -> dict[str, float]:
        """A run's summary metrics."""
        return self.runs_api.metrics(run_id)

    def samples(self, run_id: int, limit: int | None = None) -> pl.DataFrame:
        """A run's per-sample results, by index."""
        return self.runs_api.samples(run_id, limit)

    def logs(self, run_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """A run's log lines, oldest first."""
        return self.runs_api.logs(run_id, limit)

    def upload_artifact(
        self, run_id: int, path: str | os.PathLike[str], name: str | None = None
    ) -> dict[str, Any]:
        """Store a file as an artifact of a run; returns ``{"name", "size", "sha256", "uri"}``."""
        return self.runs_api.upload_artifact(run_id, path, name)

    def artifacts(self, run_id: int) -> pl.DataFrame:
        """The artifacts of a run."""
        return self.runs_api.artifacts(run_id)

    def artifact(self, run_id: int, name: str) -> bytes:
        """The bytes of one artifact of a run."""
        return self.runs_api.artifact(run_id, name)

    def download_artifact(self, run_id: int, name: str, target: str | os.PathLike[str]) -> Path:
        """Save one artifact of a run to ``target``, streamed (any size, bounded memory)."""
        return self.runs_api.download_artifact(run_id, name, target)

    # -- experiments (hub.experiments_api) ---------------------------------------------------------

    def experiment(self, experiment_id: int) -> Experiment:
        """A handle on an experiment (status, compare, samples, wait, cancel)."""
        exp = self.experiments_api.experiment(experiment_id)
        exp.hub = self
        return exp

    def experiments(self, status: str | None = None, limit: int | None = None) -> pl.DataFrame:
        """Experiments, newest first, as a DataFrame."""
        return self.experiments_api.experiments(status, limit)

    def plan(self, spec: Any) -> Plan:
        """Validate a spec and expand it into its runs, submitting nothing."""
        return self.experiments_api.plan(spec)

    def run_experiment(self, spec: Any, wait: bool = True, executor: Any = None, progress: bool = True,
                       **kw: Any) -> Experiment:  # fmt: skip
        """Compile ``spec`` (YAML text, dict or path) into runs, submit them and (by default) wait."""
        from evalhub.orchestrator import run_experiment

        return run_experiment(self, spec, wait=wait, executor=executor, progress=progress, **kw)

    def compare(self, experiment_id: int, baseline: str | int | None = None, **kw: Any) -> pl.DataFrame:
        """The comparison table of an experiment: one row per run, one column per metric (with a
        ``baseline``, the paired deltas, intervals and p-values: see ``Experiment.compare``)."""
        return self.experiments_api.compare(experiment_id, baseline, **kw)

    # -- scores over stored outputs (hub.scoring) --------------------------------------------------

    def score(self, run_ids: int | Sequence[int], scorer: Any, *, baseline: str | int | None = None,
              executor: Any = None) -> pl.DataFrame:  # fmt: skip
        """Score the stored samples of runs again with a scorer of :mod:`evalhub.scorers` (a metric, a
        function or a judge); one row per run with its scoring and summary metrics."""
        ids = [run_ids] if isinstance(run_ids, int) else list(run_ids)
        return self.scoring.score(ids, scorer, baseline=baseline, executor=executor)

    def scorings(self, run_id: int | None = None, experiment_id: int | None = None) -> pl.DataFrame:
        """Every rescoring (of a run or an experiment's runs): scorer, version, when, counts."""
        return self.scoring.scorings(run_id=run_id, experiment_id=experiment_id)

    def judge_reliability(self, experiment: int | Any) -> pl.DataFrame:
        """Per judge scoring of an experiment: position consistency, length bias, kappa with people."""
        return self.scoring.judge_reliability(int(getattr(experiment, "id", experiment)))

    def judge_calls(self, run_id: int, sample_key: str | None = None) -> pl.DataFrame:
        """The judge calls on a run's samples: prompt, raw output, parsed verdict, rationale, judge."""
        return self.scoring.judge_calls(run_id, sample_key=sample_key)

    # -- evaluations that run by themselves (hub.schedules_api) -------------------------------------

    def schedule(self, spec: Any, *, every: float | str | None = None, cron: str | None = None,
                 on_checkpoint: str | None = None, name: str | None = None, start_at: float | None = None,
                 ray_address: str | None = None, keep: bool = True) -> dict[str, Any]:  # fmt: skip
        """Run ``spec`` by itself, ``every`` so long (seconds, ``"15m"``, ``"6h"``, ``"1d"``) or at the
        times of ``cron`` (five fields, UTC), starting at ``start_at`` (default: now). The server keeps
        the schedule; a keeper on the Ray cluster (``ray_address``, ``RAY_ADDRESS``, else evalhub's
        local cluster, which a live schedule keeps from idling out) runs each tick as an experiment.
        A tick missed while no keeper ran runs once when one is back, never twice. With
        ``on_checkpoint="<model>"`` it is a trigger: ``spec`` (as ``log_checkpoint``'s ``evaluate=``)
        runs on each checkpoint of the model registered from now on, into one growing experiment.

        >>> hub.schedule("nightly.yaml", cron="0 3 * * *")
        >>> hub.schedule({"tasks": ["arith-add"]}, on_checkpoint="tiny-gpt")
        >>> hub.schedules()
        """
        made = self.schedules_api.create(spec, every=every, cron=cron, on_checkpoint=on_checkpoint, name=name,
                                         start_at=start_at)  # fmt: skip
        if keep:
            self.keep_schedules(ray_address)
        return made

    def keep_schedules(self, ray_address: str | None = None) -> None:
        """Make sure the keeper of this project's schedules runs on the cluster (it ends by itself
        when no schedule is left; Ray restarts it if its process dies)."""
        from evalhub.execution.executor import ClusterExecutor
        from evalhub.execution.schedules import start_keeper

        executor = ClusterExecutor(address=ray_address)
        executor.start()
        try:
            start_keeper(self.url, self.token, self.project)
        finally:
            executor.shutdown()

    def schedules(self) -> pl.DataFrame:
        """The project's schedules: period or cron, next tick, last experiment, ticks run."""
        return self.schedules_api.list()

    def unschedule(self, schedule: str | int) -> None:
        """Stop a schedule (by name or id); the experiments it made stay."""
        self.schedules_api.delete(schedule)

    # -- traces from applications (hub.traces) -----------------------------------------------------

    def trace_runs(self, service: str | None = None) -> pl.DataFrame:
        """The ``trace`` runs: the LLM calls applications export over OTLP (``OTEL_EXPORTER_OTLP_ENDPOINT=
        <server>/api/otlp``), one run per service; browse one with ``hub.samples(run_id)``."""
        return self.traces.runs(service)

    def evaluate_traces(self, run: str | int, scorer: Any, *, share: float = 1.0, seed: int = 0,
                        every: float | None = None) -> OnlineEvaluation:  # fmt: skip
        """Online evaluation: score ``share`` of a trace run's calls (a run id, or a service's open run)
        as they come, every ``every`` seconds until ``.stop()`` (or call ``.step()`` yourself).

        >>> online = hub.evaluate_traces("qa-bot", Regex(r"answer is (\\d+)"), share=0.1, every=30)
        >>> online.stop()   # the scoring finished, its metrics over the calls it scored
        """
        return self.traces.evaluate(run, scorer, share=share, seed=seed, every=every)

    # -- people as scorers (hub.annotation) -------------------------------------------------------

    def annotation_queue(
        self, experiment: Any, name: str, schema: Mapping[str, Any], **kw: Any
    ) -> AnnotationQueue:
        """A queue for people to label an experiment's samples: ``schema`` is ``{"kind": "scale", "min": 1,
        "max": 5}``, ``{"kind": "choice", "options": [...]}``, ``{"kind": "pairwise"}`` (with
        ``run_ids=[run, other]``) or ``{"kind": "text"}``; ``filter=``, ``q=``, ``sample=``/``seed=``
        choose the samples. Its labels are scores ``<name>.<person>`` of the labelled runs."""
        return self.annotation.create(_experiment_id(experiment), name, schema, **kw)

    def queue(self, ref: int | str, person: str | None = None) -> AnnotationQueue:
        """An annotation queue by id or name (``person`` labels on a server without auth)."""
        return self.annotation.queue(ref, person)

    # -- export (hub.export_api) --------------------------------------------------------------------

    def export(
        self, experiment: Any, path: str | os.PathLike[str], format: str | None = None
    ) -> Path:  # fmt: skip
        """Write an experiment whole: runs, metrics, samples with every scorer's scores and people's
        labels, scorings, judge calls and annotation labels; ``json`` (one file), ``csv`` or
        ``parquet`` (a folder of one file per table)."""
        return self.export_api.export(_experiment_id(experiment), path, format)

    def export_tables(self, experiment: Any) -> dict[str, pl.DataFrame]:
        """The export's tables as polars frames (``runs``, ``metrics``, ``samples``, ``scorings``,
        ``judge_calls``, ``labels``)."""
        return self.export_api.tables(_experiment_id(experiment))

    def slices(self, experiment_id: int, by: str, **kw: Any) -> pl.DataFrame:
        """An experiment's metrics per slice of ``by`` with intervals (and paired deltas against a
        ``baseline``): see ``Experiment.slices``."""
        return self.experiment(experiment_id).slices(by, **kw)


def _experiment_id(experiment: Any) -> int:
    """An experiment's id from the id, a dict with ``id`` or an Experiment."""
    if isinstance(experiment, int):
        return experiment
    found = getattr(experiment, "id", None)
    return int(found if found is not None else experiment["id"])


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
    client = Client(url, token=token, project=project, timeout=timeout, retries=retries)
    client.check_server()  # a server of another contract version is refused here, naming both
    return Hub(client)


__all__ = ["Hub", "compare_frame", "connect", "frame"]
