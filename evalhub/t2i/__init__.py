"""The tiny text-to-image model evalhub trains itself, its generated-shapes world and the image metrics.

>>> from evalhub import t2i
>>> build = t2i.build("/tmp/tiny-t2i", hub=hub)    # step-100 … diffusers pipelines, classifier, CLIP, prompt set
>>> task = t2i.task_row(build)                      # the prompt-set task, as engines.t2i takes it
>>> t2i.write_prompt_set("/tmp/shapes", n=500)      # shapes.jsonl + shapes-references/

Heavy imports (torch, diffusers, transformers, torchmetrics) happen inside the functions.
"""

from __future__ import annotations

from typing import Any

from evalhub.t2i._classifier import ATTRIBUTES, ShapeClassifier
from evalhub.t2i._rubric import HEIM_RUBRIC, rating_queues
from evalhub.t2i._shapes import (
    COLOURS,
    POSITIONS,
    PROMPT_SET,
    SHAPES,
    SIZE,
    Scene,
    all_scenes,
    draw,
    write_prompt_set,
)
from evalhub.t2i._train import FAMILY, MODEL, RUNTIME, T2IBuild, T2IConfig, build

TASK = "shapes-t2i"


def task_row(build: T2IBuild, name: str = TASK) -> dict[str, Any]:
    """The prompt-set task of a build as a registry row (what ``evalhub.engines.t2i.evaluate`` takes)."""
    return {
        "name": name,
        "type": "t2i",
        "engine": "t2i",
        "engine_config": {
            "prompts": str(build.prompts),
            "classifier": str(build.classifier),
            "clip_model": str(build.clip),
        },
        "metrics": ["correct", "clip_score", "fid", "kid"],
    }


__all__ = [
    "ATTRIBUTES",
    "COLOURS",
    "FAMILY",
    "HEIM_RUBRIC",
    "MODEL",
    "POSITIONS",
    "PROMPT_SET",
    "RUNTIME",
    "SHAPES",
    "SIZE",
    "TASK",
    "Scene",
    "ShapeClassifier",
    "T2IBuild",
    "T2IConfig",
    "all_scenes",
    "build",
    "draw",
    "rating_queues",
    "task_row",
    "write_prompt_set",
]
