"""The training-log API: a W&B-style ``Run`` over the batched :class:`~evalhub._events.EventStream`.

>>> with hub.init_run("train-tiny", config={"lr": 3e-4}) as run:
...     for step in range(100):
...         run.log({"loss": 1.9, "grad_norm": 0.7}, step=step)
...     run.log_checkpoint("/data/tiny/step-100", step=100, model="tiny-gpt", name="step-100")
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub._events import Delivery, EventStream, _check_key, _check_step
from evalhub._frames import series_frame
from evalhub.client import check_number, client_of
from evalhub.errors import EvalhubError, InvalidValue
from evalhub.protocol import TERMINAL, from_wire
from evalhub.services.registry import Registry

if TYPE_CHECKING:
    from types import TracebackType

    import polars as pl

    from evalhub.checkpoint_evals import CheckpointEvaluations
    from evalhub.experiment import Experiment
    from evalhub.metric_plugins import PluginRunner
    from evalhub.sysmetrics import Sampler


# Runs not finished by their script are finished at interpreter exit: failed if an exception
# ended the program (seen through sys.excepthook), completed otherwise, as W&B does.
_LIVE_RUNS: set[Run] = set()
_UNCAUGHT: list[str] = []
_HOOKED = False


def _hook_uncaught() -> None:
    global _HOOKED
    if _HOOKED:
        return
    _HOOKED = True
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _UNCAUGHT.append(f"{exc_type.__name__}: {exc}")
        previous(exc_type, exc, tb)

    sys.excepthook = hook


def _finish_live_runs() -> None:
    for run in list(_LIVE_RUNS):
        if _UNCAUGHT:
            run.finish("failed", error=f"the program ended with {_UNCAUGHT[-1]}")
        else:
            run.finish("completed")


# Registered after evalhub._events (imported above), so it runs before the streams are closed.
atexit.register(_finish_live_runs)


class Run:
    """A training (or any) run being logged from this process.

    ``log`` only checks its values and appends them to a buffer; a background thread sends them in
    batches. System metrics (``sys/*`` series) are sampled every ``system_metrics_interval`` seconds
    unless ``system_metrics=False``.
    """

    def __init__(
        self,
        source: Any,
        data: Mapping[str, Any],
        *,
        system_metrics: bool = True,
        system_metrics_interval: float = 10.0,
        stream: EventStream | None = None,
        model: str | None = None,
        plugins: Sequence[Any] | None = None,
    ) -> None:
        self.client = client_of(source)  # a Client, or a Hub
        self.data = dict(data)
        self.id: int = int(self.data["id"])
        self.name: str = str(self.data.get("name", ""))
        self.model = model or self.data.get("model")
        self._stream = stream or EventStream(self.client, self.id, attempt=int(self.data.get("attempt") or 1))
        self._next_step = 0
        self._finished = False
        self.dropped = 0  # values run.log could not store (counted, warned once per reason, logged)
        self._drop_reasons: set[str] = set()
        self._evaluations: dict[str, CheckpointEvaluations] = {}  # one per evaluate= spec
        self._plugins: PluginRunner | None = None
        if plugins:  # a bad plugin is refused here, before the run says it is running
            from evalhub.metric_plugins import PluginRunner, resolve_all

            self._plugins = PluginRunner(self._stream, resolve_all(plugins))
        self._stream.status("running", worker={"node": socket.gethostname(), "pid": os.getpid(), "gpu": None})
        self._sampler: Sampler | None = None
        if system_metrics:
            from evalhub.sysmetrics import Sampler

            self._sampler = Sampler(self._log_system, system_metrics_interval).start()
        _hook_uncaught()
        _LIVE_RUNS.add(self)  # held until finished

    def __repr__(self) -> str:
        state = "finished" if self._finished else "live"
        return f"Run(id={self.id}, name={self.name!r}, {state})"

    @property
    def stream(self) -> EventStream:
        """The event stream this run writes through."""
        return self._stream

    @property
    def status(self) -> str | None:
        """The server's latest word on this run's status."""
        return self._stream.run_status

    # -- logging -----------------------------------------------------------------------------------

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        """Log one point per key at ``step`` (default: one past the last step logged).

        NaN and ±infinity are values (a diverging loss is what you want to see). What cannot be
        stored (a non-number, a key that is not a string of 1-255 chars, a step outside 64 bits) never
        raises in a training loop: it is dropped, counted in ``run.dropped``, warned about once per
        reason and logged on the run; the call's other values are kept.
        """
        if self._finished:
            raise EvalhubError(
                f"run {self.id} ({self.name}) is finished; start a new one with hub.init_run()"
            )
        if type(values) is not dict and not isinstance(values, Mapping):
            raise InvalidValue(f"run.log takes a dict of key -> number, got {type(values).__name__}")
        # No lock: with several threads logging into one run, give each call its step.
        if step is None:
            s = self._next_step
        elif type(step) is int and -(2**63) <= step < 2**63:
            s = step
        else:
            try:
                s = _check_step(step)
            except InvalidValue as exc:
                self._drop(len(values), f"step {step!r}", str(exc))
                return
        now = time.time()
        points = []
        for k, v in values.items():
            if type(v) is float and type(k) is str and 0 < len(k) <= 255 and k.isascii():
                points.append((k, s, v, now))  # fast path: a float under a plain key
                continue
            try:
                points.append((_check_key(k), s, check_number(k, v), now))
            except InvalidValue as exc:
                self._drop(1, f"key {k!r}", str(exc))
        self._next_step = s + 1
        if points:
            self._stream._put(points)  # already checked: skip series_many's second pass
            if self._plugins is not None:
                self._plugins.points(points)  # queued: the plugins' thread sees them

    def _drop(self, n: int, what: str, reason: str) -> None:
        """Count values run.log cannot store; say so once per reason (a warning and a line on the run)."""
        import warnings

        self.dropped += n
        kind = reason.split(":")[-1].strip()[:120]
        if kind in self._drop_reasons:
            return
        self._drop_reasons.add(kind)
        message = f"run {self.id}: dropped {what} (cannot be stored: {reason}); further ones are only counted"
        warnings.warn(message, stacklevel=3)
        self._stream.log(message.encode("ascii", "backslashreplace").decode(), level="warning")

    def summary(self, values: Mapping[str, Any]) -> None:
        """Set summary metrics of the run (a later value of a key replaces the earlier one)."""
        self._stream.metrics(values)

    def log_text(self, message: str, level: str = "info") -> None:
        """Add a line to the run's log."""
        self._stream.log(message, level=level)

    def log_checkpoint(
        self,
        uri: str | os.PathLike[str],
        step: int | None = None,
        *,
        model: str | None = None,
        name: str | None = None,
        epoch: int | None = None,
        dataset_version: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        evaluate: Any = None,
        executor: Any = None,
    ) -> dict[str, Any]:
        """Register a checkpoint written by this run (metadata only: the weights stay at ``uri``).

        ``model`` is the registered model it belongs to (default: the run's model); ``name``
        defaults to ``step-<step>``, or the folder name when there is no step.

        ``evaluate`` (a task or benchmark name, or a spec without ``models``: a dict, YAML text or a
        file) evaluates the checkpoint now, in the background, appending its runs to one growing
        experiment per run and spec (:attr:`evaluations`), so the eval curve grows beside the loss while
        training goes on; ``executor`` is what runs them (:func:`~evalhub.execution.default_executor`:
        the scheduler on the cluster, which outlives this process). See :mod:`evalhub.checkpoint_evals`.

        >>> run.log_checkpoint(out / "step-100", step=100, evaluate={"tasks": ["arith-add"], "config": {"limit": 50}})
        """
        evaluations = None
        if evaluate is not None:  # a bad spec is refused before the checkpoint is registered
            from evalhub.checkpoint_evals import CheckpointEvaluations, spec_fragment

            fragment = spec_fragment(self.client, evaluate)
            key = repr(sorted(fragment.items()))
            evaluations = self._evaluations.get(key)
            if evaluations is None:
                evaluations = CheckpointEvaluations(self.client, self.id, self.name, fragment, executor)
                self._evaluations[key] = evaluations
        model = model or self.model
        if not model:
            raise InvalidValue(
                "log_checkpoint needs model= (the registered model this checkpoint belongs to), "
                "or hub.init_run(..., model=...)"
            )
        text = os.fspath(uri)
        if "://" not in text:
            text = str(Path(text).expanduser().resolve())
        if name is None:
            name = f"step-{step}" if step is not None else Path(text.rstrip("/")).name
        checkpoint = Registry(self.client).register_checkpoint(
            model,
            name,
            uri=text,
            step=step,
            epoch=epoch,
            dataset_version=dataset_version,
            training_config=self.data.get("config") or None,
            metadata=dict(metadata) if metadata else None,
            run_id=self.id,
        )
        self._stream.log(f"checkpoint {model}/{name} at step {step}: {text}")
        if evaluations is not None:
            evaluations.add(model, name)
        return checkpoint

    @property
    def evaluations(self) -> Experiment | None:
        """The experiment of the checkpoints logged with ``evaluate=`` (the latest spec's, where a run
        logged with several); ``None`` before the first. ``run.evaluations.wait()`` blocks until the
        checkpoints logged so far are evaluated."""
        for evaluations in reversed(list(self._evaluations.values())):
            if evaluations.experiment is not None:
                return evaluations.experiment
        return None

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
        """Upload a file (a config, a log, a results JSON) to the run's artifact store."""
        from urllib.parse import quote

        file = Path(path).expanduser()
        if not file.is_file():
            raise InvalidValue(f"artifact {file} is not a file")
        result: dict[str, Any] = self.client.put_file(
            f"/runs/{self.id}/artifacts/{quote(name or file.name, safe='')}", file
        )
        return result

    def _log_system(self, index: int, values: dict[str, float]) -> None:
        if not self._finished:
            points = [(k, index, v, None) for k, v in values.items()]
            self._stream.series_many(points)
            if self._plugins is not None:
                self._plugins.points(points)

    # -- reading back ------------------------------------------------------------------------------

    def series(self, key: str, max_points: int = 1000) -> pl.DataFrame:
        """This run's ``key`` series (flushes first)."""
        self.flush()
        answer = self.client.get(f"/runs/{self.id}/series", key=key, max_points=max_points)
        return series_frame(answer.get("points", []))

    def metrics(self) -> dict[str, float]:
        """This run's summary metrics (flushes first)."""
        self.flush()
        values = self.client.get(f"/runs/{self.id}/metrics").get("metrics", {})
        return {k: float(from_wire(v)) for k, v in values.items()}

    # -- ending ------------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> Delivery:
        """Block until everything logged so far is acknowledged; what was stored and what dropped."""
        return self._stream.flush(timeout)

    def finish(
        self, status: str = "completed", error: str | None = None, timeout: float | None = 60.0
    ) -> Delivery:
        """End the run (``completed``, ``failed`` with ``error``, or ``cancelled``), sending everything;
        returns what became of everything logged (stored, dropped)."""
        if status not in TERMINAL:
            raise InvalidValue(f"finish status must be one of {', '.join(TERMINAL)}, got {status!r}")
        if self._finished:
            return self._stream.delivery()
        self._finished = True
        _LIVE_RUNS.discard(self)
        if self._sampler is not None:
            self._sampler.stop()
        if self._plugins is not None:
            self._plugins.close()  # their summary metrics, before the final status
        if self.dropped:
            self._stream.log(f"run.log dropped {self.dropped} values that cannot be stored", level="warning")
        self._stream.status(status, error=error)
        return self._stream.close(timeout)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.finish("completed")
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("cancelled", error="interrupted (KeyboardInterrupt)")
        else:
            self.finish("failed", error=f"{type(exc).__name__}: {exc}")


__all__ = ["Run"]
