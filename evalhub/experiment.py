"""A handle on an experiment: its status, its runs, the comparison table and the aligned samples.

>>> exp = hub.run_experiment("spec.yaml", wait=False)
>>> exp.wait(timeout=600)
>>> exp.compare()                 # one row per run, one column per metric
>>> exp.samples(task="arith-add") # one row per sample, each run's output side by side
"""

from __future__ import annotations

import html
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from evalhub._frames import compare_frame, comparison, kind_frame
from evalhub.client import client_of
from evalhub.errors import EvalhubError
from evalhub.protocol import ACTIVE, number_from_wire

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger("evalhub")


class Experiment:
    """An experiment on the tracking server; everything is read from the server when asked."""

    def __init__(self, source: Any, experiment_id: int, data: dict[str, Any] | None = None) -> None:
        self.client = client_of(source)
        self.hub: Any = source  # what it was made from (a Hub, or a Client): widgets read through it
        self.id = int(experiment_id)
        self._data = data
        self._driver: threading.Thread | None = None
        self._driver_error: BaseException | None = None
        self.executor: Any = None

    # -- reads ------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The experiment as the server has it now (status, counts, progress, spec)."""
        data: dict[str, Any] = self.client.get(f"/experiments/{self.id}")
        self._data = data
        return data

    @property
    def name(self) -> str:
        """The experiment's name."""
        data = self._data or self.info()
        return str(data.get("name"))

    def status(self) -> str:
        """``queued``, ``running``, ``completed``, ``failed`` or ``cancelled`` (derived from its runs)."""
        return str(self.info().get("status"))

    def runs(self) -> pl.DataFrame:
        """The experiment's runs as a DataFrame."""
        return kind_frame("runs", list(self.client.paged("/runs", experiment_id=self.id)))

    def compare(
        self, baseline: str | int | None = None, *, seed: int = 0, resamples: int | None = None
    ) -> pl.DataFrame:
        """One row per run, one column per metric.

        With a ``baseline`` (a checkpoint name, ``model/checkpoint``, a run name or id), every other run
        of each task gets, per metric with per-sample scores, ``<metric>_delta``, ``_delta_low``,
        ``_delta_high`` (95% interval), ``_p_value`` and ``_p_holm`` (Holm across the runs compared) and
        ``_test`` (McNemar's exact test for 0/1 scores, else a paired bootstrap from ``seed``), computed on
        the items both runs answered (see :mod:`evalhub.services.comparison`).
        """
        if baseline is None:
            return compare_frame(comparison(self.client, self.id))
        from evalhub.services.comparison import paired_comparison

        return paired_comparison(self.client, self.id, baseline, seed=seed, resamples=resamples)

    def samples(
        self, task: str | None = None, filter: str = "all", q: str | None = None, limit: int | None = None
    ) -> pl.DataFrame:
        """Per-sample outputs of every run of ``task``, aligned by sample key.

        Columns: ``sample_key, index, prompt, reference``, then for each run ``<label>`` (its filtered
        output) and ``<label>:score`` (its primary score). ``filter`` is ``all``, ``disagree``,
        ``any_wrong`` or ``all_wrong``; ``q`` a text search.
        """
        import polars as pl

        page_size = 200 if limit is None else min(200, limit)
        rows: list[dict[str, Any]] = []
        labels: dict[str, str] = {}
        offset = 0
        while True:
            answer = self.client.get(
                f"/experiments/{self.id}/samples",
                task=task,
                filter=filter,
                q=q,
                limit=page_size,
                offset=offset,
            )
            for run in answer.get("runs", []):
                labels[str(run["run_id"])] = str(run.get("label") or run["run_id"])
            items = answer.get("items", [])
            for item in items:
                row: dict[str, Any] = {k: item.get(k) for k in ("sample_key", "index", "prompt", "reference")}
                outputs = item.get("outputs") or {}
                for run_id, label in labels.items():
                    out = outputs.get(run_id) or {}
                    text = out.get("filtered_output")
                    row[label] = text if text is not None else out.get("output")
                    row[f"{label}:score"] = number_from_wire(out.get("primary_score"))
                rows.append(row)
            offset += len(items)
            total = int(answer.get("total", 0))
            if not items or offset >= total or (limit is not None and len(rows) >= limit):
                break
        schema: dict[str, Any] = {
            "sample_key": pl.String,
            "index": pl.Int64,
            "prompt": pl.String,
            "reference": pl.String,
        }
        for label in labels.values():
            schema[label] = pl.String
            schema[f"{label}:score"] = pl.Float64
        rows = rows if limit is None else rows[:limit]
        return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema, orient="row")

    # -- scores over stored outputs ---------------------------------------------------------------

    def score(
        self,
        scorer: Any,
        *,
        baseline: str | int | None = None,
        task: str | None = None,
        executor: Any = None,
    ) -> pl.DataFrame:
        """Score the stored samples of the experiment's completed runs again (of ``task``, or all): a
        scorer of :mod:`evalhub.scorers` or a spec entry (``{"type": "regex", ...}``). Its scores sit
        beside the runs' own (``<name>.<metric>``) in ``compare()`` (paired deltas included), the diff
        and exports; every rescoring is recorded (``scorings()``). A judge runs on the cluster
        (``executor``); a pairwise one against ``baseline``. One row per run scored.

        >>> exp.score(evalhub.scorers.ExactMatch(ignore_case=True, strip=True))
        >>> exp.score(evalhub.scorers.Judge("tiny-judge/step-300", mode="pairwise"), baseline="step-100")
        """
        from evalhub.services.scoring import Scoring

        runs = [
            r
            for r in self.client.paged(f"/experiments/{self.id}/runs", task=task)
            if r.get("status") == "completed"
        ]
        if not runs:
            raise EvalhubError(
                f"experiment {self.id} has no completed runs{f' of task {task!r}' if task else ''} to score"
            )
        return Scoring(self.client).score(
            [int(r["id"]) for r in runs], scorer, baseline=baseline, executor=executor
        )

    def scorings(self) -> pl.DataFrame:
        """Every rescoring of the experiment's runs: scorer, kind, version, status, when, counts."""
        from evalhub.services.scoring import Scoring

        return Scoring(self.client).scorings(experiment_id=self.id)

    def judge_reliability(self) -> pl.DataFrame:
        """How far to trust each judge on this experiment: position consistency, length bias and
        agreement with people's labels (kappa), one row per judge scoring; see
        :meth:`evalhub.services.scoring.Scoring.judge_reliability`."""
        from evalhub.services.scoring import Scoring

        return Scoring(self.client).judge_reliability(self.id)

    def judge_calls(self, run_id: int, sample_key: str | None = None) -> pl.DataFrame:
        """The judge calls on one run's samples (or one sample's): prompt, raw output, verdict, rationale."""
        from evalhub.services.scoring import Scoring

        return Scoring(self.client).judge_calls(int(run_id), sample_key=sample_key)

    def slices(
        self,
        by: str,
        *,
        task: str | None = None,
        metrics: list[str] | None = None,
        baseline: str | int | None = None,
        bins: int | list[float] = 5,
        seed: int = 0,
        resamples: int | None = None,
    ) -> pl.DataFrame:
        """Where the runs fail: per slice of ``by`` (a column of the task's documents such as
        ``"subject"``, a derived feature ``prompt_length``/``answer_length``/``subtask``, or a per-sample
        score key such as a judge's ``"judge.score"``), run and metric, the mean with its 95% interval;
        with a ``baseline``, the paired delta, its interval and Holm-adjusted p-value. See
        :mod:`evalhub.services.slices`; ``worst_slices`` ranks the losses.

        >>> exp.slices(by="subject", baseline="step-100").filter(pl.col("metric") == "exact_match")
        """
        from evalhub.services.slices import slices

        return slices(self.client, self.id, by, task=task, metrics=metrics, baseline=baseline, bins=bins,
                      seed=seed, resamples=resamples)  # fmt: skip

    def worst_slices(self, by: str, baseline: str | int, k: int = 10, **kw: Any) -> pl.DataFrame:
        """The slices of ``by`` where a run loses to ``baseline`` most, the most significant first."""
        from evalhub.services.slices import worst

        return worst(self.slices(by, baseline=baseline, **kw), k=k)

    # -- control ----------------------------------------------------------------------------------

    def cancel(self) -> Experiment:
        """Cancel every queued or running run (running ones stop between batches)."""
        self._data = self.client.post(f"/experiments/{self.id}/cancel", {})
        return self

    def resume(self, executor: Any = None, *, wait: bool = False, progress: bool = False) -> Experiment:
        """Continue the experiment: its failed and cancelled runs are queued again (completed runs are
        kept; a run evaluated again asks the model only for what the server's request cache lacks) and
        handed to ``executor`` (the one that ran it from this handle, else
        :func:`~evalhub.execution.default_executor`): a :class:`~evalhub.execution.ClusterExecutor`
        starts a scheduler on the cluster, a :class:`~evalhub.execution.RayExecutor` drives them from a
        thread of this process.

        >>> hub.experiment(12).resume(ClusterExecutor(address="127.0.0.1:6379"))
        """
        self._data = self.client.post(f"/experiments/{self.id}/resume", {})
        if executor is None:
            executor = self.executor
        if executor is None:
            from evalhub.execution import default_executor

            executor = default_executor()
        self.executor = executor
        if hasattr(executor, "resume"):
            if getattr(executor, "after_runs", False) is None:
                executor.after_runs = score_by_spec  # the spec's scorers, applied on the cluster
            executor.resume(self.client, self.id)
        else:
            from evalhub.execution.driver import jobs_from_server

            jobs, _ = jobs_from_server(self.client, self.id)
            rows = self.client.paged(f"/experiments/{self.id}/runs", status="queued")
            queued = {int(r["id"]) for r in rows}
            todo = [job for run_id, job in jobs.items() if run_id in queued]
            resources = dict(((self._data or {}).get("config") or {}).get("resources") or {})
            if todo:
                self._driver_error = None

                def drive() -> None:
                    try:
                        executor.execute(self.hub, self.id, todo, resources)
                    except BaseException as exc:  # surfaced by wait()
                        self._driver_error = exc

                self._driver = threading.Thread(target=drive, name=f"evalhub-driver-{self.id}", daemon=True)
                self._driver.start()
        if wait:
            self.wait(progress=progress)
        return self

    def wait(
        self,
        timeout: float | None = None,
        progress: bool = False,
        poll: float = 0.5,
        scheduler_timeout: float = 60.0,
    ) -> Experiment:
        """Block until no run is queued or running (or ``timeout`` seconds pass: ``TimeoutError``).

        ``progress=True`` shows a progress bar over all runs' progress. An experiment driven by a
        scheduler on the cluster (:class:`~evalhub.execution.ClusterExecutor`) that has not been heard
        from for ``scheduler_timeout`` seconds while runs are left (the cluster stopped, its node
        died) is an :class:`~evalhub.errors.EvalhubError` saying how to resume it, never a wait forever.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _bar(self) if progress else None
        heard: tuple[Any, ...] | None = None
        heard_at = time.monotonic()
        try:
            while True:
                data = self.info()
                if bar is not None:
                    _update_bar(bar, data)
                driver_alive = self._driver is not None and self._driver.is_alive()
                if data.get("status") not in ACTIVE and not driver_alive:
                    break
                beat = (data.get("metadata") or {}).get("evalhub_scheduler")
                if isinstance(beat, dict) and beat.get("state") != "done" and not driver_alive:
                    mark = (beat.get("started"), beat.get("beat"))
                    if mark != heard:
                        heard, heard_at = mark, time.monotonic()
                    elif time.monotonic() - heard_at > scheduler_timeout:
                        left = {k: v for k, v in (data.get("counts") or {}).items() if k in ACTIVE and v}
                        raise EvalhubError(
                            f"experiment {self.id}: its scheduler on the cluster has not been heard from for "
                            f"{scheduler_timeout:.0f}s (the cluster stopped, or its node died) with runs left "
                            f"({', '.join(f'{n} {k}' for k, n in left.items()) or 'some'}); "
                            f"exp.resume() or `evalhub resume {self.id}` "
                            "goes on from what is stored"
                        )
                if self._driver is not None and not driver_alive and self._driver_error is not None:
                    raise EvalhubError(
                        f"the driver of experiment {self.id} stopped: {self._driver_error}"
                    ) from self._driver_error
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"experiment {self.id} still {data.get('status')} after {timeout}s")
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()
        if self._driver_error is not None:
            raise EvalhubError(f"the driver of experiment {self.id} stopped: {self._driver_error}")
        return self

    def wait_scheduler(self, timeout: float | None = None, poll: float = 0.5,
                       scheduler_timeout: float = 60.0) -> Experiment:  # fmt: skip
        """Block until the experiment's scheduler on the cluster is done, its spec's scorers applied
        after the runs ended (its beat says ``done``). A scheduler not heard from for
        ``scheduler_timeout`` seconds is gone: the wait ends (``exp.score(...)`` scores by hand)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        heard: tuple[Any, ...] | None = None
        heard_at = time.monotonic()
        while True:
            beat = (self.info().get("metadata") or {}).get("evalhub_scheduler")
            if not isinstance(beat, dict) or beat.get("state") == "done":
                return self
            mark = (beat.get("started"), beat.get("beat"))
            if mark != heard:
                heard, heard_at = mark, time.monotonic()
            elif time.monotonic() - heard_at > scheduler_timeout:
                log.warning(
                    "evalhub: the scheduler of experiment %s is gone before saying it was done", self.id
                )
                return self
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"the scheduler of experiment {self.id} still {beat.get('state')} after {timeout}s"
                )
            time.sleep(poll)

    def done(self) -> bool:
        """True when no run is queued or running."""
        return self.status() not in ACTIVE

    def failed_runs(self) -> list[dict[str, Any]]:
        """The runs that ended ``failed``, with their errors."""
        return list(self.client.paged(f"/experiments/{self.id}/runs", status="failed"))

    # -- display ----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        try:
            data = self.info()
        except EvalhubError:
            return f"Experiment(id={self.id})"
        counts = data.get("counts") or {}
        progress = data.get("progress") or {}
        parts = ", ".join(f"{k}={v}" for k, v in counts.items() if v)
        return (
            f"Experiment(id={self.id}, name={data.get('name')!r}, status={data.get('status')!r}, "
            f"runs: {parts or 'none'}, progress {progress.get('done', 0)}/{progress.get('total') or '?'})"
        )

    def _repr_html_(self) -> str:
        try:
            data = self.info()
            table = self.compare()
        except EvalhubError as exc:
            return f"<pre>{html.escape(repr(self))}: {html.escape(str(exc))}</pre>"
        counts = data.get("counts") or {}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        head = (
            f"<b>Experiment {self.id}</b> <code>{html.escape(str(data.get('name')))}</code> — "
            f"{html.escape(str(data.get('status')))} ({html.escape(summary)})"
        )
        cols = [c for c in table.columns if c not in ("run_id", "name")]
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in cols) + "</tr>"
            for row in table.iter_rows(named=True)
        )
        header = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        return f"<div>{head}<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table></div>"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _bar(exp: Experiment) -> Any:
    """A tqdm bar on a terminal or in a notebook; elsewhere (a log file, CI) a plain line per change."""
    import sys

    from evalhub._progress import LineProgress, in_notebook, on_terminal

    desc = f"experiment {exp.id}"
    if on_terminal(sys.stderr):
        from tqdm import tqdm

        return tqdm(total=0, desc=desc, unit="req", dynamic_ncols=True)
    if in_notebook():
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(total=0, desc=desc, unit="req", dynamic_ncols=True)
    return LineProgress(desc, unit="req")


def _update_bar(bar: Any, data: dict[str, Any]) -> None:
    from evalhub._progress import LineProgress

    progress = data.get("progress") or {}
    total = int(progress.get("total") or 0)
    done = int(progress.get("done") or 0)
    counts = data.get("counts") or {}
    if isinstance(bar, LineProgress):
        bar.update(done, total, counts)
        return
    if total and bar.total != total:
        bar.total = total
    bar.n = min(done, total) if total else done
    bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in counts.items() if v), refresh=False)
    bar.refresh()


def table_text(frame: pl.DataFrame, metrics: list[str] | None = None) -> str:
    """A comparison DataFrame as a plain-text table (what the CLI prints)."""
    base = [c for c in ("model", "checkpoint", "step", "runtime", "task", "status") if c in frame.columns]
    skip = {"run_id", "name", *base}
    cols = base + (metrics if metrics is not None else [c for c in frame.columns if c not in skip])
    rows = [[_fmt(r.get(c)) for c in cols] for r in frame.iter_rows(named=True)]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


__all__ = ["Experiment", "table_text"]


def apply_scorers(exp: Experiment, scorers: list[dict[str, Any]], executor: Any = None) -> None:
    """A spec's ``scorers`` over the experiment's finished runs (each a recorded scoring of every run)."""
    runs = exp.client.paged(f"/experiments/{exp.id}/runs")
    if not scorers or not any(r.get("status") == "completed" for r in runs):
        return
    from evalhub.scorers import from_spec

    for entry in scorers:
        scorer = from_spec(entry)
        exp.score(scorer, baseline=getattr(scorer, "baseline", None), executor=executor)


def score_by_spec(client: Any, experiment_id: int) -> None:
    """The experiment's spec's ``scorers`` (as the server keeps the spec) over its finished runs, with
    judges on Ray: what the cluster scheduler does once the runs end (its ``after_runs``)."""
    from evalhub.execution.executor import RayExecutor

    scorers = (client.get(f"/experiments/{int(experiment_id)}").get("spec") or {}).get("scorers") or []
    if scorers:
        apply_scorers(Experiment(client, int(experiment_id)), list(scorers), RayExecutor())
