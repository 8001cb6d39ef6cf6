"""lm-eval's metrics by name over stored outputs: the registry's functions (``exact_match`` with its
options, ``bleu``, ``chrf``, ``ter``, …) and evalhub's ROUGE (``rouge1``, ``rouge2``, ``rougeL``,
``rougeLsum``), computed exactly as lm-eval computes them when it evaluates a task.

A per-item metric (``aggregation: mean``) gives each sample its value and the run their mean. A corpus
metric (BLEU, chrF, TER: lm-eval passes the items through and aggregates them together) gives each
sample its sentence-level value and the run the corpus value over all its samples (per subtask too),
the same number lm-eval reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from evalhub.errors import InvalidValue
from evalhub.scorers._base import Scorer, Values, answer_of, check_name

ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _registry() -> Any:
    import lm_eval.api.metrics  # noqa: F401  (fills the registry)
    from lm_eval.api import registry

    return registry


class LmEvalMetric(Scorer):
    """An lm-eval metric by name: ``<name>.<metric>`` per sample, its aggregate per run.

    >>> exp.score(evalhub.scorers.LmEvalMetric("exact_match", ignore_case=True, name="em_nocase"))
    >>> exp.score(evalhub.scorers.LmEvalMetric("bleu"))
    """

    kind: ClassVar[str] = "lm_eval"

    def __init__(self, metric: str, name: str | None = None, **kwargs: Any) -> None:
        self.metric = metric
        self.kwargs = dict(kwargs)
        self.name = check_name(name or metric.replace("+", "p"))
        if metric in ROUGE:
            from evalhub.engines import _rouge

            self.fn: Callable[..., Any] = getattr(_rouge, metric)
            self.aggregate: Callable[[list[Any]], float] | None = None
            self._higher = True
        else:
            registry = _registry()
            if metric not in registry.METRIC_REGISTRY:
                known = sorted([*registry.METRIC_REGISTRY, *ROUGE])
                raise InvalidValue(f"lm-eval has no metric {metric!r}; known: {', '.join(known)}")
            self.fn = registry.get_metric(metric)
            aggregation = registry.get_metric_aggregation(metric)
            from lm_eval.api.metrics import mean

            self.aggregate = None if aggregation is mean else aggregation
            self._higher = bool(registry.is_higher_better(metric))

    @property
    def version(self) -> str:
        import lm_eval

        return f"lm-eval {getattr(lm_eval, '__version__', '?')}"

    def config(self) -> dict[str, Any]:
        return {"metric": self.metric, **self.kwargs}

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {self.metric: self._higher}

    def _item(self, reference: str, prediction: str) -> Any:
        try:
            value = self.fn(references=[reference], predictions=[prediction], **self.kwargs)
        except TypeError:  # lm-eval's own calling convention for pass-through metrics
            value = self.fn([reference, prediction])
        if isinstance(value, dict):
            value = value[self.metric]
        return value

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Values]:
        out: list[Values] = []
        for sample in samples:
            reference = sample.get("reference")
            if reference is None:
                out.append({self.metric: None})
                continue
            item = self._item(str(reference), answer_of(sample))
            value = self.aggregate([item]) if self.aggregate is not None else item
            out.append({self.metric: float(value)})
        return out

    def corpus_summary(self, items: Sequence[tuple[str, str, str | None]]) -> dict[str, float]:
        """The corpus value over (reference, prediction, subtask) items, and per subtask."""
        assert self.aggregate is not None
        out: dict[str, float] = {}
        if items:
            out[self.metric] = float(self.aggregate([(r, p) for r, p, _ in items]))
        distinct = sorted({t for *_, t in items if t})
        if len(distinct) > 1:
            for task in distinct:
                part = [(r, p) for r, p, t in items if t == task]
                out[f"{task}:{self.metric}"] = float(self.aggregate(part))
        return out

    @property
    def corpus(self) -> bool:
        """Whether the run's value is an aggregate over all items together (BLEU, chrF, TER)."""
        return self.aggregate is not None


__all__ = ["ROUGE", "LmEvalMetric"]
