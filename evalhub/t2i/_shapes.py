"""The generated-shapes world: scenes, their captions, their images, and the prompt-set task files.

A scene is a coloured shape at a position on a coloured background, captioned "a red circle at the left
on a blue background". Images are 32x32 RGB, drawn anti-aliased (4x supersampled) with a little jitter
in size, place and colour, so that a set of references has the spread FID expects.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

SIZE = 32
SHAPES = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 45, 40),
    "green": (40, 175, 70),
    "blue": (45, 75, 220),
    "yellow": (235, 205, 45),
}
POSITIONS = ("left", "center", "right")
_CENTRES = {"left": 10.5, "center": 16.0, "right": 21.5}
_SUPERSAMPLE = 4
PROMPT_SET = "shapes"


@dataclass(frozen=True)
class Scene:
    """What one image shows; ``caption()`` is its prompt."""

    shape: str
    colour: str
    background: str
    position: str

    def caption(self) -> str:
        return f"a {self.colour} {self.shape} at the {self.position} on a {self.background} background"

    def attributes(self) -> dict[str, str]:
        return asdict(self)


def all_scenes() -> list[Scene]:
    """Every scene of the world (the shape's colour differs from the background's): 108 of them."""
    return [
        Scene(shape, colour, background, position)
        for shape in SHAPES
        for colour in COLOURS
        for background in COLOURS
        if background != colour
        for position in POSITIONS
    ]


def sample_scene(rng: random.Random) -> Scene:
    colour, background = rng.sample(sorted(COLOURS), 2)
    return Scene(rng.choice(SHAPES), colour, background, rng.choice(POSITIONS))


def words() -> list[str]:
    """Every word a caption uses (the tokenizers' vocabulary)."""
    scene = Scene("circle", "red", "blue", "left").caption().split()
    return sorted(set(scene) | set(SHAPES) | set(COLOURS) | set(POSITIONS))


def _mask(shape: str, cx: float, cy: float, r: float) -> NDArray[np.float64]:
    """Coverage (0..1) of the shape on the SIZE x SIZE grid, from a supersampled binary mask."""
    n = SIZE * _SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / _SUPERSAMPLE
    x, y = np.meshgrid(coords, coords)
    if shape == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    elif shape == "square":
        half = r * 0.86
        inside = (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    elif shape == "triangle":  # pointing up: apex above the centre, base below
        top, bottom = cy - r, cy + r * 0.8
        half_width = r * (y - top) / (bottom - top)
        inside = (y >= top) & (y <= bottom) & (np.abs(x - cx) <= half_width)
    else:
        raise ValueError(f"unknown shape {shape!r}: use one of {', '.join(SHAPES)}")
    coverage: NDArray[np.float64] = inside.reshape(SIZE, _SUPERSAMPLE, SIZE, _SUPERSAMPLE).mean(axis=(1, 3))
    return coverage


def draw(scene: Scene, rng: random.Random) -> NDArray[np.uint8]:
    """The scene as a SIZE x SIZE x 3 uint8 image, with jitter drawn from ``rng``."""
    r = rng.uniform(8.0, 9.5)
    cx = _CENTRES[scene.position] + rng.uniform(-1.0, 1.0)
    cy = SIZE / 2 + rng.uniform(-1.5, 1.5)
    alpha = _mask(scene.shape, cx, cy, r)[..., None]
    jitter = np.array([rng.uniform(-12, 12) for _ in range(3)])
    fg = np.clip(np.array(COLOURS[scene.colour], dtype=np.float64) + jitter, 0, 255)
    bg = np.clip(np.array(COLOURS[scene.background], dtype=np.float64) - jitter, 0, 255)
    image = alpha * fg + (1.0 - alpha) * bg
    out: NDArray[np.uint8] = np.round(image).astype(np.uint8)
    return out


def draw_many(n: int, seed: int) -> tuple[list[Scene], NDArray[np.uint8]]:
    """``n`` random scenes and their images (``n x SIZE x SIZE x 3``), deterministic in ``seed``."""
    rng = random.Random(f"shapes-{seed}")
    scenes = [sample_scene(rng) for _ in range(n)]
    images = np.stack([draw(s, rng) for s in scenes]) if scenes else np.zeros((0, SIZE, SIZE, 3), np.uint8)
    return scenes, images


def write_prompt_set(out_dir: str | Path, n: int = 200, seed: int = 0, name: str = PROMPT_SET) -> Path:
    """Write a prompt-set task: ``<name>.jsonl`` (one prompt per line with its attributes and the path
    of its reference image) and ``<name>-references/`` (the reference images, PNG). Returns the JSONL path.

    >>> path = write_prompt_set("/tmp/t2i", n=200)   # /tmp/t2i/shapes.jsonl, /tmp/t2i/shapes-references/
    >>> sorted(json.loads(path.read_text().splitlines()[0]))
    ['background', 'colour', 'id', 'position', 'prompt', 'reference', 'shape']
    """
    from PIL import Image

    out = Path(out_dir)
    refs = out / f"{name}-references"
    refs.mkdir(parents=True, exist_ok=True)
    scenes, images = draw_many(n, seed + 10_000)  # never the training draw
    path = out / f"{name}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, (scene, image) in enumerate(zip(scenes, images, strict=True)):
            ref = refs / f"{i:05d}.png"
            Image.fromarray(image).save(ref)
            row: dict[str, Any] = {
                "id": f"{name}-{i:05d}",
                "prompt": scene.caption(),
                **scene.attributes(),
                "reference": f"{refs.name}/{ref.name}",
            }
            fh.write(json.dumps(row) + "\n")
    return path
