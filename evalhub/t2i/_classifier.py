"""The shape-and-colour classifier: what the image shows, read back, so correctness is a per-image 0/1
score (the image analogue of exact_match).

A small CNN (batch-normalised: it learns the shapes in a few hundred steps) with one head per attribute (shape, colour, background, position), trained on drawn scenes,
half of them passed through the pipeline's autoencoder so it also reads the softer images the tiny
model produces. Saved as ``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.t2i._shapes import COLOURS, POSITIONS, SHAPES, draw_many

if TYPE_CHECKING:
    import numpy as np
    import torch
    from numpy.typing import NDArray

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "background": tuple(COLOURS),
    "position": POSITIONS,
}
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def _network(attributes: dict[str, tuple[str, ...]]) -> torch.nn.Module:
    import torch
    from torch import nn

    class ShapeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
            )  # fmt: skip
            self.heads = nn.ModuleDict({name: nn.Linear(64, len(v)) for name, v in attributes.items()})

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            h = self.features(x)
            return {name: head(h) for name, head in self.heads.items()}

    torch.manual_seed(0)
    return ShapeNet()


def _to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC or NCHW (0..255) or float NCHW (0..1) -> float NCHW in 0..1."""
    import torch

    x = images
    if x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


class ShapeClassifier:
    """Reads shape, colour, background and position off 32x32 images.

    >>> classifier = ShapeClassifier.load(build.classifier)
    >>> classifier.predict(images)["shape"][:3]
    ['circle', 'square', 'circle']
    """

    def __init__(self, network: torch.nn.Module, attributes: dict[str, tuple[str, ...]]) -> None:
        self.network = network.eval()
        self.attributes = attributes

    @classmethod
    def load(cls, path: str | Path) -> ShapeClassifier:
        from safetensors.torch import load_file

        from evalhub.errors import EvalhubError

        folder = Path(path)
        try:
            config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            attributes = {k: tuple(v) for k, v in config["attributes"].items()}
            network = _network(attributes)
            network.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise EvalhubError(f"{folder} is not a shape classifier saved by evalhub.t2i: {exc}") from exc
        return cls(network, attributes)

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(
            json.dumps({"attributes": {k: list(v) for k, v in self.attributes.items()}}, indent=2),
            encoding="utf-8",
        )
        save_file(
            {k: v.contiguous() for k, v in self.network.state_dict().items()}, str(folder / WEIGHTS_FILE)
        )
        return folder

    def predict(self, images: torch.Tensor, batch_size: int = 256) -> dict[str, list[str]]:
        """The most likely value of each attribute for each image (uint8 0..255 or float 0..1)."""
        import torch

        out: dict[str, list[str]] = {name: [] for name in self.attributes}
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                logits = self.network(_to_input(images[start : start + batch_size]))
                for name, values in self.attributes.items():
                    out[name].extend(values[int(i)] for i in logits[name].argmax(dim=1))
        return out


def train_classifier(
    steps: int = 300, seed: int = 0, batch_size: int = 64, roundtrip: Any = None
) -> ShapeClassifier:
    """Train on freshly drawn scenes; ``roundtrip(x)`` (float NCHW in -1..1) is the autoencoder's
    encode-decode, applied to half of each batch. Well under a minute on one CPU thread."""
    import numpy as np
    import torch

    network = _network(ATTRIBUTES).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-3, weight_decay=1e-4)
    scenes, images = draw_many(steps * batch_size // 4, seed + 20_000)  # each image seen ~4 times
    labels = {
        name: torch.tensor([values.index(getattr(s, name)) for s in scenes])
        for name, values in ATTRIBUTES.items()
    }
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    rng = random.Random(f"classifier-{seed}")
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.tensor(rng.sample(range(len(scenes)), batch_size))
        x = pixels[idx]
        if roundtrip is not None:
            half = batch_size // 2
            with torch.no_grad():
                x[:half] = ((roundtrip(x[:half] * 2 - 1) + 1) / 2).clamp(0, 1)
        x = (x + torch.randn(x.shape, generator=generator) * 0.05 * torch.rand(1, generator=generator)).clamp(
            0, 1
        )
        logits = network(x)
        loss = sum(torch.nn.functional.cross_entropy(logits[n], labels[n][idx]) for n in ATTRIBUTES)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
    return ShapeClassifier(network, ATTRIBUTES)


def accuracy(classifier: ShapeClassifier, images: NDArray[np.uint8], scenes: list[Any]) -> dict[str, float]:
    """Share of ``images`` whose attributes the classifier reads as the ``scenes`` say."""
    import torch

    predicted = classifier.predict(torch.from_numpy(images))
    return {
        name: sum(p == getattr(s, name) for p, s in zip(values, scenes, strict=True)) / max(1, len(scenes))
        for name, values in predicted.items()
    }
