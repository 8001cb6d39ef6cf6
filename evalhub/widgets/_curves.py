"""Curves: Altair line charts of training series, or of a metric against checkpoint step.

The chart is an ``altair.JupyterChart`` (itself an anywidget) running offline: its JavaScript comes
from ``vl-convert-python``, so it draws in JupyterLab 4.6 without a CDN and without JupyterLab's
Vega-Lite 5 renderer (Altair 6 emits Vega-Lite 6).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import altair as alt

from evalhub._frames import comparison
from evalhub.errors import EvalhubError
from evalhub.metric_names import parse_key
from evalhub.protocol import TERMINAL
from evalhub.protocol.numbers import number_from_wire
from evalhub.widgets._base import fmt_number
from evalhub.widgets._source import ClientLike, client_of, id_of, run_labels

if TYPE_CHECKING:
    import polars as pl

_offline_lock = threading.Lock()


def _enable_offline() -> None:
    with _offline_lock:
        alt.JupyterChart.enable_offline(True)


class Curves(alt.JupyterChart):
    """Line charts of ``keys`` for several runs overlaid, downsampled on the server.

    With ``experiment`` set instead of runs, one line per task and configuration of a metric
    against the checkpoint's training step (a training-progress experiment). While any run is
    still running a background thread re-reads the data every ``interval`` seconds and redraws.

    >>> evalhub.curves(run, "loss")                        # one training run
    >>> evalhub.curves([run_a, run_b], ["loss", "grad_norm"])
    >>> evalhub.curves(exp, "exact_match")                 # metric against checkpoint step
    >>> evalhub.curves(exp, ["fid", "correct"], training="loss")  # beside the training loss

    ``training`` (with an experiment) names a series of the runs that wrote the checkpoints (their
    ``run.log_checkpoint``): it is drawn first, on the same step axis as the metrics.
    """

    def __init__(
        self,
        client: ClientLike,
        keys: Sequence[str],
        *,
        run_ids: Sequence[int] = (),
        experiment_id: int | None = None,
        max_points: int = 1000,
        live: bool = True,
        interval: float = 2.0,
        height: int = 240,
        width: int = 560,
        training: str | None = None,
    ) -> None:
        if not keys and experiment_id is None:
            raise EvalhubError("name the series to plot, e.g. curves(run, 'loss')")
        _enable_offline()
        self._client = client
        self._keys = list(keys)
        self._training = training
        self._training_runs: dict[tuple[str, str], int | None] = {}  # (model, checkpoint) -> writer run
        self._run_ids = [int(r) for r in run_ids]
        self.experiment_id = experiment_id
        self._max_points = max_points
        self.interval = interval
        self._size = (width, height)
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._statuses: dict[int, str] = {}
        self._intervals: dict[tuple[int, str], tuple[float | None, float | None]] = {}
        self._signature: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fetch()
        self._signature = self._data_signature()
        # SVG: marks stay in the DOM (inspectable, crisp when printed)
        super().__init__(self._build(), embed_options={"renderer": "svg"})
        if live and not self.done:
            self.start()

    # -- data --------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True when no run behind the chart can add data any more."""
        return bool(self._statuses) and all(s in TERMINAL for s in self._statuses.values())

    def _fetch(self) -> None:
        if self.experiment_id is not None:
            self._fetch_experiment()
        else:
            self._fetch_runs()

    def _fetch_runs(self) -> None:
        runs = [self._client.get(f"/api/runs/{rid}") for rid in self._run_ids]
        self._statuses = {int(r["id"]): str(r.get("status", "")) for r in runs}
        names = [str(r.get("name") or r["id"]) for r in runs]
        labels = {
            int(r["id"]): (n if names.count(n) == 1 else f"{n} #{r['id']}")
            for r, n in zip(runs, names, strict=True)
        }
        ids = ",".join(str(r) for r in self._run_ids)
        records: dict[str, list[dict[str, Any]]] = {}
        for key in self._keys:
            data = self._client.get("/api/series", run_ids=ids, key=key, max_points=self._max_points)
            rows = records.setdefault(key, [])
            for series in data.get("series", []):
                label = labels.get(int(series["run_id"]), str(series["run_id"]))
                for p in series.get("points", []):
                    rows.append(
                        _point(
                            label, int(series["run_id"]), p["step"], p["value"], p.get("min"), p.get("max")
                        )
                    )
        self._records = records

    def _fetch_experiment(self) -> None:
        data = comparison(self._client, self.experiment_id)
        runs = list(data.get("runs", []))
        self._statuses = {int(r["run_id"]): str(r.get("status", "")) for r in runs}
        if not self._keys:
            metrics = [m for m in data.get("metrics", []) if not m.endswith("_stderr")]
            if not metrics:
                raise EvalhubError(f"experiment {self.experiment_id} has no metrics yet to plot")
            self._keys = [metrics[0]]
        # one line per configuration other than the checkpoint: model, runtime, task
        lines = run_labels([{**r, "checkpoint": None} for r in runs])
        records: dict[str, list[dict[str, Any]]] = {}
        for key in self._keys:
            rows = records.setdefault(key, [])
            for r in runs:
                value = (r.get("metrics") or {}).get(key)
                if value is None or r.get("step") is None:
                    continue
                label = lines[int(r["run_id"])]
                task = r.get("task") or ""
                run = f"{task} · {label}" if len(set(lines.values())) > 1 else task
                point = {**_point(run, int(r["run_id"]), r["step"], value), "checkpoint": r.get("checkpoint")}
                low, high = self._interval(int(r["run_id"]), key, str(r.get("status")))
                point.update(low=low, high=high)
                rows.append(point)
            rows.sort(key=lambda row: (row["run"], row["step"]))
        if self._training:
            records = {self._training: self._training_records(runs), **records}
        self._records = records

    def _training_records(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The ``training`` series of the runs that wrote the experiment's checkpoints."""
        for r in runs:
            ref = (str(r.get("model") or ""), str(r.get("checkpoint") or ""))
            if all(ref) and ref not in self._training_runs:
                page = self._client.get("/api/checkpoints", model=ref[0], name=ref[1], limit=1)
                items = page.get("items") or []
                self._training_runs[ref] = (
                    int(items[0]["run_id"]) if items and items[0].get("run_id") else None
                )
        writers = sorted({rid for rid in self._training_runs.values() if rid is not None})
        if not writers:
            raise EvalhubError(
                f"no run wrote the checkpoints of experiment {self.experiment_id} (run.log_checkpoint), "
                f"so there is no {self._training!r} to draw beside them"
            )
        data = self._client.get("/api/series", run_ids=",".join(map(str, writers)), key=self._training,
                                max_points=self._max_points)  # fmt: skip
        rows = []
        for series in data.get("series", []):
            run = self._client.get(f"/api/runs/{int(series['run_id'])}")
            label = f"{run.get('name') or series['run_id']} (training)"
            for p in series.get("points", []):
                rows.append(
                    _point(label, int(series["run_id"]), p["step"], p["value"], p.get("min"), p.get("max"))
                )
        return rows

    def _interval(self, run_id: int, key: str, status: str) -> tuple[float | None, float | None]:
        """The 95% interval of a finished run's metric from its per-sample scores (Wilson for 0/1,
        else a bootstrap; see :mod:`evalhub.stats`), computed once; (None, None) without scores."""
        if status not in TERMINAL:
            return None, None
        cached = self._intervals.get((run_id, key))
        if cached is None:
            cached = (None, None)
            try:
                from evalhub import stats
                from evalhub.services.comparison import scores_frame

                column = _score_column(key)
                frame = scores_frame(self._client, run_id)  # type: ignore[arg-type]
                subtask = parse_key(key).subtask
                if subtask is not None:
                    frame = frame.filter(frame["task"] == subtask)
                if column in frame.columns and frame.height:
                    est = stats.mean_interval(frame[column].to_numpy())
                    if est.method != "none":
                        cached = (float(est.low), float(est.high))
            except Exception:  # no scores, or the notebook extra lacks scipy: the point has no interval
                cached = (None, None)
            self._intervals[(run_id, key)] = cached
        return cached

    def to_polars(self) -> pl.DataFrame:
        """The plotted points: key, run, run_id, step, value, min, max."""
        import polars as pl

        rows = [
            {
                "key": key,
                **{k: r[k] for k in ("run", "run_id", "step", "min", "max")},
                "value": number_from_wire(r["nonfinite"]) if r["nonfinite"] else r["value"],
            }
            for key, records in self._records.items()
            for r in records
        ]
        schema = {
            "key": pl.Utf8,
            "run": pl.Utf8,
            "run_id": pl.Int64,
            "step": pl.Float64,
            "value": pl.Float64,
            "min": pl.Float64,
            "max": pl.Float64,
        }
        return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)

    # -- chart -------------------------------------------------------------------------------------

    def _build(self) -> Any:  # an altair LayerChart or VConcatChart
        width, height = self._size
        charts = []
        x_title = "checkpoint step" if self.experiment_id is not None else "step"
        keys = (
            [self._training, *self._keys] if self._training and self.experiment_id is not None else self._keys
        )
        for key in keys:
            records = self._records.get(key, [])
            data = alt.Data(values=records)  # type: ignore[no-untyped-call]
            training = key == self._training and self.experiment_id is not None
            base = alt.Chart(data).encode(
                x=alt.X("step:Q", title="training step" if training else x_title),
                color=alt.Color(
                    "run:N", title="run" if self.experiment_id is None or training else "task · config"
                ),
            )
            line = base.mark_line(point=self.experiment_id is not None and not training).encode(
                y=alt.Y("value:Q", title=key, scale=alt.Scale(zero=False)),
                tooltip=[alt.Tooltip("run:N"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".4g")],
            )
            layers: list[Any] = [line]
            if any(r["min"] != r["max"] for r in records):  # downsampled: show each bucket's range
                layers.insert(0, base.mark_area(opacity=0.15).encode(y="min:Q", y2="max:Q"))
            if any(r.get("low") is not None for r in records):  # each checkpoint's 95% interval
                layers.append(
                    base.mark_errorbar(ticks=True).encode(
                        y=alt.Y("low:Q", title=key), y2="high:Q",
                        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("low:Q", format=".4g", title="95% low"),
                                 alt.Tooltip("high:Q", format=".4g", title="95% high")],
                    )
                )  # fmt: skip
            if any(r["nonfinite"] for r in records):  # NaN / ±inf are values: a red rule at their steps
                layers.append(
                    alt.Chart(alt.Data(values=[r for r in records if r["nonfinite"]]))  # type: ignore[no-untyped-call]
                    .mark_rule(color="#d62728", strokeDash=[4, 2])
                    .encode(
                        x="step:Q",
                        tooltip=[
                            alt.Tooltip("run:N"),
                            alt.Tooltip("step:Q"),
                            alt.Tooltip("nonfinite:N", title=key),
                        ],
                    )
                )
            charts.append(alt.layer(*layers).properties(width=width, height=height, title=key))
        if len(charts) == 1:
            return charts[0]
        return alt.vconcat(*charts)

    def _data_signature(self) -> Any:
        return {
            k: [(r["run_id"], r["step"], r["value"], r["min"], r["max"]) for r in v]
            for k, v in self._records.items()
        }

    def refresh(self) -> bool:
        """Re-read the data; redraw when it changed. Returns True when it did."""
        self._fetch()
        signature = self._data_signature()
        if signature == self._signature:
            return False
        self._signature = signature
        self.chart = self._build()
        return True

    def start(self) -> None:
        """Redraw in the background while runs are still going."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="evalhub-curves", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop redrawing."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # a dropped connection: try again next time
                continue
            if self.done:
                break

    # -- fallbacks ---------------------------------------------------------------------------------

    def _text(self) -> str:
        lines = []
        for key, records in self._records.items():
            last: dict[str, dict[str, Any]] = {}
            for r in records:
                if r["run"] not in last or r["step"] >= last[r["run"]]["step"]:
                    last[r["run"]] = r
            summary = ", ".join(
                f"{run} step {fmt_number(r['step'])} = {fmt_number(r['value'])}" for run, r in last.items()
            )
            lines.append(f"{key}: {len(records)} points" + (f"; last: {summary}" if summary else ""))
        return "Curves\n" + "\n".join(lines)

    def __repr__(self) -> str:
        return self._text()

    def _html(self) -> str:
        try:
            import vl_convert as vlc
            from altair.utils._importers import vl_version_for_vl_convert

            svg = vlc.vegalite_to_svg(self.spec, vl_version=vl_version_for_vl_convert())
            return f'<div class="evh-curves-static">{svg}</div>'
        except Exception:
            return f"<pre>{html.escape(self._text())}</pre>"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        data["text/plain"] = self._text()
        data["text/html"] = self._html()
        return data, metadata


def _is_experiment(obj: Any) -> bool:
    if type(obj).__name__ == "Experiment":
        return True
    return hasattr(obj, "compare") and hasattr(obj, "samples") and hasattr(obj, "id")


def curves(
    run_or_runs: Any = None,
    key: str | Sequence[str] | None = None,
    *,
    hub: Any = None,
    max_points: int = 1000,
    live: bool = True,
    interval: float = 2.0,
    experiment: Any = None,
    training: str | None = None,
) -> Curves:
    """Line charts of a series key (or keys) for one or several runs, or of a metric of an
    experiment against checkpoint step.

    ``run_or_runs``: a Run (``hub.init_run``), a run id, a list of them, or an Experiment (then
    ``key`` is a metric, default its first one). ``max_points`` is the server's downsampling budget.
    ``training`` (an experiment only): a series of the runs that wrote its checkpoints, drawn first on
    the same step axis, e.g. ``curves(exp, ["fid", "correct"], training="loss")``.
    """
    keys: list[str] = [key] if isinstance(key, str) else list(key or [])
    if experiment is not None or _is_experiment(run_or_runs):
        target = experiment if experiment is not None else run_or_runs
        client = client_of(target, hub)
        return Curves(
            client,
            keys,
            experiment_id=id_of(target, "an experiment"),
            max_points=max_points,
            live=live,
            interval=interval,
            training=training,
        )
    if training is not None:
        raise EvalhubError("training= goes with an experiment: curves(exp, 'fid', training='loss')")
    if run_or_runs is None:
        raise EvalhubError("curves() needs a run (or runs), or experiment=...")
    items = list(run_or_runs) if isinstance(run_or_runs, (list, tuple)) else [run_or_runs]
    if not items:
        raise EvalhubError("curves() needs at least one run")
    client = client_of(items[0], hub)
    return Curves(
        client,
        keys,
        run_ids=[id_of(r, "a run") for r in items],
        max_points=max_points,
        live=live,
        interval=interval,
    )


def _point(run: str, run_id: int, step: Any, value: Any, low: Any = None, high: Any = None) -> dict[str, Any]:
    """A plotted point. A non-finite value (the wire's "NaN", "Infinity", "-Infinity") has no place on
    the y axis: it is kept in ``nonfinite`` and drawn as a rule at its step."""
    nonfinite = value if isinstance(value, str) else None
    number = None if nonfinite else value
    low = number if low is None or isinstance(low, str) else low
    high = number if high is None or isinstance(high, str) else high
    return {"run": run, "run_id": run_id, "step": step, "value": number, "min": low, "max": high,
            "nonfinite": nonfinite}  # fmt: skip


def _score_column(key: str) -> str:
    """The per-sample score a summary metric key is the mean of (``acc``, ``exact_match/strict-match``)."""
    parsed = parse_key(key)
    return parsed.metric if not parsed.filter else f"{parsed.metric}/{parsed.filter}"
