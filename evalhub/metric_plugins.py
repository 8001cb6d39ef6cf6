"""Metric plugins over a run's events: a plugin sees the series points and samples a run writes, as
they are written, and emits metrics and series of its own into the same run.

A plugin is any object with some of these methods (:class:`MetricPlugin` is a base to start from):

- ``on_points(points)``: a batch of series points ``(key, step, value, wall_time)`` (a training run's
  ``run.log``, system metrics under ``sys/``);
- ``on_samples(samples)``: a batch of an evaluation's per-sample records (``output``, ``scores``,
  ``latency_ms``, ``tokens_out``, ...);
- ``finish() -> dict``: summary metrics when the run ends.

During a run it emits series through ``self.emit(key, step, value)`` (set by the runner). Plugins run
in a thread of their own, fed by a queue: ``run.log`` and the worker's sending only append to it, so a
slow plugin never slows ingest. A plugin that raises is switched off for the rest of the run, its
error logged on the run: it costs nothing but itself.

Where plugins come from: an instance (``hub.init_run(..., plugins=[Quantiles("grad_norm")])``), a name
in the ``evalhub.metrics`` entry-point group (``quantiles``, ``sample_quantiles`` are evalhub's own), a
``module:Class`` path, or ``{"plugin": name, **kwargs}``: the last three also in a spec, as
``config.metric_plugins``, for every run of an experiment (built on each worker).

>>> hub.init_run("train", plugins=[Quantiles("grad_norm", every=100)])      # grad_norm/p50, /p90, /max
>>> config: {metric_plugins: [{plugin: sample_quantiles, field: latency_ms}]}   # in a spec
"""

from __future__ import annotations

import importlib
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from evalhub.errors import InvalidValue

log = logging.getLogger("evalhub.metric_plugins")

GROUP = "evalhub.metrics"
"""The entry-point group plugins are found in by name."""

Point = tuple[str, int, float, float | None]


class MetricPlugin:
    """A base for plugins: every hook does nothing until overridden; ``emit`` is set by the runner."""

    name = "plugin"
    emit: Callable[[str, int, float], None] = staticmethod(lambda key, step, value: None)

    def on_points(self, points: Sequence[Point]) -> None:
        """A batch of series points ``(key, step, value, wall_time)``."""

    def on_samples(self, samples: Sequence[Mapping[str, Any]]) -> None:
        """A batch of per-sample records."""

    def finish(self) -> Mapping[str, float]:
        """Summary metrics when the run ends."""
        return {}


def _quantile(values: Sequence[float], q: float) -> float:
    """numpy's default (linear) quantile of finite values."""
    ordered = sorted(v for v in values if math.isfinite(v))
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _suffix(q: float) -> str:
    return f"p{q * 100:g}".replace(".", "_")


class Quantiles(MetricPlugin):
    """Quantiles of a training series over windows of ``every`` steps: every window that closes emits
    ``<key>/p50``, ``<key>/p90``, ... and ``<key>/max`` at its last step (a grad-norm histogram over
    training, drawn as bands); ``finish`` gives the same over all points as summary metrics."""

    name = "quantiles"

    def __init__(
        self, key: str = "grad_norm", every: int = 100, qs: Sequence[float] = (0.5, 0.9, 0.99)
    ) -> None:
        if every < 1:
            raise InvalidValue(f"quantiles: every must be at least 1, got {every}")
        if not all(0 <= q <= 1 for q in qs):
            raise InvalidValue(f"quantiles: qs must lie in [0, 1], got {list(qs)}")
        self.key, self.every, self.qs = key, int(every), tuple(float(q) for q in qs)
        self.window: list[float] = []
        self.window_end: int | None = None
        self.seen: list[float] = []

    def _close(self, step: int) -> None:
        for q in self.qs:
            self.emit(f"{self.key}/{_suffix(q)}", step, _quantile(self.window, q))
        finite = [v for v in self.window if math.isfinite(v)]
        self.emit(f"{self.key}/max", step, max(finite) if finite else math.nan)
        self.window = []

    def on_points(self, points: Sequence[Point]) -> None:
        for key, step, value, _ in points:
            if key != self.key:
                continue
            end = (step // self.every + 1) * self.every - 1  # the last step of the point's window
            if self.window_end is not None and end != self.window_end and self.window:
                self._close(self.window_end)
            self.window_end = end
            self.window.append(float(value))
            self.seen.append(float(value))
            if step == end:
                self._close(end)

    def finish(self) -> Mapping[str, float]:
        if not self.seen:
            return {}
        out = {f"{self.key}/{_suffix(q)}": _quantile(self.seen, q) for q in self.qs}
        out[f"{self.key}/max"] = max((v for v in self.seen if math.isfinite(v)), default=math.nan)
        return out


class SampleQuantiles(MetricPlugin):
    """Quantiles of a numeric field of an evaluation's samples (``latency_ms``, ``tokens_out``, or a
    score as ``scores.<key>``), as summary metrics ``samples/<field>_p50``, ... and ``_max``."""

    name = "sample_quantiles"

    def __init__(self, field: str = "latency_ms", qs: Sequence[float] = (0.5, 0.9, 0.99)) -> None:
        if not all(0 <= q <= 1 for q in qs):
            raise InvalidValue(f"sample_quantiles: qs must lie in [0, 1], got {list(qs)}")
        self.field, self.qs = field, tuple(float(q) for q in qs)
        self.values: list[float] = []

    def _value(self, sample: Mapping[str, Any]) -> Any:
        if self.field.startswith("scores."):
            return (sample.get("scores") or {}).get(self.field.removeprefix("scores."))
        return sample.get(self.field)

    def on_samples(self, samples: Sequence[Mapping[str, Any]]) -> None:
        for sample in samples:
            value = self._value(sample)
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.values.append(float(value))

    def finish(self) -> Mapping[str, float]:
        if not self.values:
            return {}
        name = self.field.replace(".", "_")
        out = {f"samples/{name}_{_suffix(q)}": _quantile(self.values, q) for q in self.qs}
        out[f"samples/{name}_max"] = max((v for v in self.values if math.isfinite(v)), default=math.nan)
        return out


def resolve(entry: Any) -> Any:
    """A plugin from an instance, an entry-point name, a ``module:Class`` path or
    ``{"plugin": name_or_path, **kwargs}``; a clear error naming what was not found."""
    kwargs: dict[str, Any] = {}
    if isinstance(entry, Mapping):
        kwargs = {k: v for k, v in entry.items() if k != "plugin"}
        entry = entry.get("plugin")
        if not isinstance(entry, str) or not entry:
            raise InvalidValue("a metric plugin given as a mapping names it under 'plugin'")
    if not isinstance(entry, str):
        if any(hasattr(entry, hook) for hook in ("on_points", "on_samples", "finish")):
            return entry
        raise InvalidValue(
            f"a metric plugin is an object with on_points/on_samples/finish, a name or module:Class, "
            f"got {type(entry).__name__}"
        )
    if ":" in entry:
        module, _, attr = entry.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise InvalidValue(f"metric plugin {entry!r} cannot be imported: {exc}") from None
    else:
        from importlib.metadata import entry_points

        found = {ep.name: ep for ep in entry_points(group=GROUP)}
        if entry not in found:
            raise InvalidValue(
                f"no metric plugin named {entry!r} (the {GROUP} entry points: {', '.join(sorted(found)) or 'none'};"
                " or give module:Class)"
            )
        factory = found[entry].load()
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise InvalidValue(f"metric plugin {entry!r}: {exc}") from None


def resolve_all(entries: Iterable[Any] | None) -> list[Any]:
    return [resolve(entry) for entry in entries or ()]


class PluginRunner:
    """Feeds a run's points and samples to its plugins from a thread of its own and writes what they
    emit into the run's event stream; :meth:`close` drains the queue and writes each plugin's
    ``finish`` metrics (call it before the run's final status)."""

    def __init__(self, stream: Any, plugins: Sequence[Any]) -> None:
        self.stream = stream
        self.plugins = list(plugins)
        self.errors: dict[str, str] = {}
        self._closed = False
        self._queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        for plugin in self.plugins:
            plugin.emit = self._emitter(plugin)
        self._thread = threading.Thread(target=self._loop, name="evalhub-metric-plugins", daemon=True)
        self._thread.start()

    def _emitter(self, plugin: Any) -> Callable[[str, int, float], None]:
        def emit(key: str, step: int, value: float) -> None:
            self.stream.series(key, int(step), float(value))

        return emit

    def points(self, points: Sequence[Point]) -> None:
        self._queue.put(("on_points", list(points)))

    def samples(self, samples: Sequence[Mapping[str, Any]]) -> None:
        self._queue.put(("on_samples", list(samples)))

    def _call(self, plugin: Any, hook: str, *args: Any) -> Any:
        name = str(getattr(plugin, "name", type(plugin).__name__))
        if name in self.errors or not hasattr(plugin, hook):
            return None
        try:
            return getattr(plugin, hook)(*args)
        except Exception as exc:  # one plugin's fault costs nothing but itself
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            message = f"metric plugin {name} failed in {hook} and is off for this run: {self.errors[name]}"
            log.warning(message)
            self.stream.log(message, level="warning")
            return None

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            hook, batch = item
            for plugin in self.plugins:
                self._call(plugin, hook, batch)

    def close(self, finish: bool = True) -> dict[str, float]:
        """Drain, then (with ``finish``) each plugin's summary metrics, written to the run; the metrics
        written. A second call does nothing."""
        if self._closed:
            return {}
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        metrics: dict[str, float] = {}
        if not finish:
            return metrics
        for plugin in self.plugins:
            values = self._call(plugin, "finish")
            if values:
                metrics.update({str(k): float(v) for k, v in values.items()})
        if metrics:
            self.stream.metrics(metrics)
        return metrics


__all__ = ["GROUP", "MetricPlugin", "PluginRunner", "Quantiles", "SampleQuantiles", "resolve", "resolve_all"]
