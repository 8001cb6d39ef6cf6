"""People rating generated images: HEIM's human-evaluation rubric as annotation queues.

HEIM (Lee et al., 2023, "Holistic Evaluation of Text-to-Image Models") asks raters, per image, how
well it matches its prompt (alignment), how it looks (aesthetics) and how original it is
(originality), each on a 1–5 scale. Here each criterion is one scale queue over the experiment's
image samples, so the labels become per-sample scores ``<criterion>.<person>`` of the runs (beside
FID, CLIPScore and correctness), people's agreement is each queue's kappa, and the queues are
labelled in the annotation widget like any other.

>>> queues = evalhub.t2i.rating_queues(hub, exp, sample=100, seed=0)
>>> queues["alignment"].agreement()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalhub.errors import InvalidValue

if TYPE_CHECKING:
    from evalhub.services.annotation import AnnotationQueue

HEIM_RUBRIC: dict[str, str] = {
    "alignment": "How well does the image match its description? "
    "1: does not match at all, 2: has significant discrepancies, 3: has several minor discrepancies, "
    "4: has a few minor discrepancies, 5: matches exactly",
    "aesthetics": "How aesthetically pleasing is the image (composition, colour, clarity)? "
    "1: very unpleasing, 2: unpleasing, 3: neutral, 4: pleasing, 5: very pleasing",
    "originality": "How original is the image, given its description? "
    "1: extremely unoriginal, 2: unoriginal, 3: neither, 4: original, 5: extremely original",
}
"""HEIM's human criteria, each asked on a 1–5 scale (the question a rater sees)."""


def rating_queues(
    hub: Any,
    experiment: Any,
    criteria: Sequence[str] | Mapping[str, str] = tuple(HEIM_RUBRIC),
    *,
    prefix: str = "",
    **kw: Any,
) -> dict[str, AnnotationQueue]:
    """One 1–5 scale queue per criterion over a text-to-image experiment's images.

    ``criteria``: names of :data:`HEIM_RUBRIC` or ``{name: question}`` of your own; ``prefix`` goes in
    front of each queue's name (two rubrics over one experiment); ``kw`` choose the samples as
    ``hub.annotation_queue`` does (``filter=``, ``q=``, ``sample=``, ``seed=``, ``run_ids=``, ``task=``).
    """
    if isinstance(criteria, Mapping):
        asked = {str(k): str(v) for k, v in criteria.items()}
    else:
        unknown = [c for c in criteria if c not in HEIM_RUBRIC]
        if unknown:
            raise InvalidValue(
                f"unknown rubric criteria {', '.join(map(repr, unknown))}: HEIM's are "
                f"{', '.join(HEIM_RUBRIC)} (or pass {{name: question}})"
            )
        asked = {c: HEIM_RUBRIC[c] for c in criteria}
    if not asked:
        raise InvalidValue("rating_queues needs at least one criterion")
    return {
        name: hub.annotation_queue(
            experiment, f"{prefix}{name}", {"kind": "scale", "min": 1, "max": 5, "question": question}, **kw
        )
        for name, question in asked.items()
    }


__all__ = ["HEIM_RUBRIC", "rating_queues"]
