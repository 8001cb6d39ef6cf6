"""ROUGE for lm-eval task configs (``metric: !function evalhub.engines._rouge.rouge1``), through rouge-score.

lm-eval registers BLEU, chrF and TER (through sacrebleu) but no ROUGE: its tasks that report ROUGE compute
it in their own ``utils.py`` with rouge-score's ``RougeScorer`` (truthfulqa, cnn_dailymail, …). These are
the same computation as per-sample metric functions, averaged over samples (``aggregation: mean``): the
F-measure of ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of each prediction against its reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

NAMES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(NAMES))


def _fmeasure(kind: str, references: Sequence[Any], predictions: Sequence[Any]) -> float:
    reference = str(references[0]) if references else ""
    prediction = str(predictions[0]) if predictions else ""
    if kind == "rougeLsum":  # sentences on lines of their own, as rouge-score expects for Lsum
        reference, prediction = (t.replace(". ", ".\n") for t in (reference, prediction))
    return float(_scorer().score(reference, prediction)[kind].fmeasure)


def rouge1(references: Sequence[Any], predictions: Sequence[Any]) -> float:
    """ROUGE-1 F-measure of one prediction against its reference."""
    return _fmeasure("rouge1", references, predictions)


def rouge2(references: Sequence[Any], predictions: Sequence[Any]) -> float:
    """ROUGE-2 F-measure of one prediction against its reference."""
    return _fmeasure("rouge2", references, predictions)


def rougeL(references: Sequence[Any], predictions: Sequence[Any]) -> float:
    """ROUGE-L F-measure of one prediction against its reference."""
    return _fmeasure("rougeL", references, predictions)


def rougeLsum(references: Sequence[Any], predictions: Sequence[Any]) -> float:
    """ROUGE-Lsum F-measure of one prediction against its reference."""
    return _fmeasure("rougeLsum", references, predictions)
