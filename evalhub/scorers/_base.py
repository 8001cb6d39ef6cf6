"""What every scorer is: a name (the prefix of the score keys it writes), a version, a config, and a
way to turn stored samples into per-sample scores and summary metrics."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from evalhub.errors import InvalidValue

Values = dict[str, float | None]
"""A sample's scores from one scorer: ``{metric: value}``; ``None`` is a null score (nothing stored)."""


def answer_of(sample: Mapping[str, Any]) -> str:
    """The answer a scorer reads: the run's filtered output where it has one, else its raw output."""
    value = sample.get("filtered_output")
    if value is None:
        value = sample.get("output")
    return "" if value is None else str(value)


def check_name(name: str) -> str:
    """A scorer's name must work as the prefix of score keys (``<name>.<metric>``)."""
    import re

    if not isinstance(name, str) or not re.match(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", name):
        raise InvalidValue(
            f"scorer name {name!r} is not valid: a letter, then up to 63 letters, digits, '_' or '-' "
            "(it prefixes the score keys the scorer writes)"
        )
    return name


class Scorer(ABC):
    """A way to score a run's stored samples without generating again.

    Subclasses set ``kind`` and implement :meth:`score` (one sample's values per metric); the default
    :meth:`summarize` averages each metric over the samples that have a value (with its standard error,
    and per subtask when the samples come from several).
    """

    kind: ClassVar[str] = ""
    name: str = ""

    @property
    def version(self) -> str:
        """What identifies this scorer's computation (recorded with every scoring)."""
        return "1"

    def config(self) -> dict[str, Any]:
        """The options it was made with (recorded with every scoring; JSON)."""
        return {}

    @property
    def higher_is_better(self) -> dict[str, bool]:
        """Metric -> whether a larger value is better (what the comparison colours by)."""
        return {}

    def directions(self, metrics: Sequence[str]) -> dict[str, bool]:
        """Which way each of these metrics is better, where the scorer knows."""
        known = self.higher_is_better
        return {m: known[m] for m in metrics if m in known}

    @abstractmethod
    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Values]:
        """Each sample's values, in order."""

    def summarize(
        self, values: Mapping[str, Sequence[float | None]], tasks: Sequence[str | None]
    ) -> dict[str, float]:
        """Summary metrics (``metric``, ``metric_stderr``, ``<subtask>:metric`` …) from every sample's
        values of each metric (``None`` where it had none); keys without the scorer's prefix."""
        out: dict[str, float] = {}
        distinct = sorted({t for t in tasks if t})
        for metric, column in values.items():
            out.update(_mean(metric, column))
            if len(distinct) > 1:
                for task in distinct:
                    part = [v for v, t in zip(column, tasks, strict=True) if t == task]
                    out.update({f"{task}:{k}": v for k, v in _mean(metric, part).items()})
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"


def _mean(metric: str, column: Sequence[float | None]) -> dict[str, float]:
    present = [float(v) for v in column if v is not None]
    if not present:
        return {}
    n = len(present)
    mean = math.fsum(present) / n
    out = {metric: mean}
    if n > 1 and all(math.isfinite(v) for v in present):
        variance = math.fsum((v - mean) ** 2 for v in present) / (n - 1)
        out[metric + "_stderr"] = math.sqrt(variance / n)
    return out


__all__ = ["Scorer", "Values", "answer_of", "check_name"]
