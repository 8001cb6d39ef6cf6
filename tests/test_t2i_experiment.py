"""Text-to-image through the same experiments as text: the tiny T2I model evaluated at three checkpoints
on a Ray worker through the diffusers runtime, fixed seeds; images stored per sample as artifacts with
thumbnails; quality rises from the first checkpoint to the last (compare the ends: a few dozen CPU
images make neighbouring checkpoints noise); and what cannot pair is refused at plan time."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("torchmetrics")

from _t2imodel import trained_t2i

from evalhub import t2i
from evalhub.errors import InvalidValue, SpecError

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture
def t2i_hub(hub: Any) -> Any:
    build = trained_t2i()
    hub.register_family(t2i.FAMILY, modality="t2i")
    hub.register_model(t2i.MODEL, family=t2i.FAMILY, runtime="diffusers")
    for step, path in sorted(build.checkpoints.items()):
        hub.register_checkpoint(t2i.MODEL, f"step-{step}", uri=str(path), step=step)
    hub.register_image_task("shapes", build.prompts, classifier=build.classifier, clip_model=str(build.clip),
                            generation={"steps": 15})  # fmt: skip
    return hub


def _spec(limit: int = 32) -> str:
    return (
        f"name: t2i-{uuid.uuid4().hex[:6]}\nmodels: [{{model: {t2i.MODEL}, checkpoints: all}}]\ntasks: [shapes]\n"
        f"config: {{limit: {limit}, seed: 1234, batch_size: 16, resources: {{max_workers: 1}}}}\n"
    )


def test_the_tiny_t2i_model_improves_from_its_first_checkpoint_to_its_last(t2i_hub: Any) -> None:
    from evalhub.execution import RayExecutor

    executor = RayExecutor(include_dashboard=False, poll_interval=0.5, start_nice=-19)
    exp = t2i_hub.run_experiment(_spec(), executor=executor, progress=False)
    table = exp.compare()
    assert table["status"].to_list() == ["completed"] * 3, exp.failed_runs()
    by_step = {r["step"]: r for r in table.iter_rows(named=True)}
    first, last = by_step[100], by_step[300]
    assert last["correct"] > first["correct"] + 0.05
    assert last["fid"] < first["fid"]
    run_id = last["run_id"]
    samples = t2i_hub.samples(run_id)
    assert samples.height == 32
    image = samples.row(0, named=True)
    extra = json.loads(image["extra"])
    assert image["output"] == extra["image"] and extra["thumbnail"].endswith(".thumb.png")
    png = t2i_hub.artifact(run_id, extra["image"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the same seed per prompt: the first checkpoint's rerun draws the same image (its first 16 prompts:
    # one batch of 16 as before, since CPU kernels round differently for another batch size)
    again = t2i_hub.run_experiment(_spec(limit=16).replace("checkpoints: all", "checkpoints: [step-100]"),
                                   executor=executor, progress=False)  # fmt: skip
    first_run = by_step[100]["run_id"]
    for row in t2i_hub.samples(again.runs()["id"][0]).iter_rows(named=True):
        earlier = t2i_hub.samples(first_run).filter(
            t2i_hub.samples(first_run)["sample_key"] == row["sample_key"]
        )
        assert t2i_hub.artifact(again.runs()["id"][0], row["output"]) == t2i_hub.artifact(
            first_run, earlier["output"][0]
        )
    executor.shutdown()


def test_an_image_task_on_a_text_runtime_is_refused_at_plan_time(t2i_hub: Any) -> None:
    t2i_hub.register_model("texty", family=t2i.FAMILY, runtime="hf")
    t2i_hub.register_checkpoint("texty", "v1", uri="/nowhere", step=1)
    spec = "name: bad\nmodels: [{model: texty}]\ntasks: [shapes]\n"
    with pytest.raises(SpecError, match="an image task"):
        t2i_hub.plan(spec)


def test_a_prompt_set_with_an_empty_prompt_is_refused_at_registration(t2i_hub: Any, tmp_path: Any) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a red circle"}\n{"prompt": ""}\n')
    with pytest.raises(InvalidValue, match="line 2: the prompt is empty"):
        t2i_hub.register_image_task("bad", bad)
    with pytest.raises(InvalidValue, match="not an image metric"):
        t2i_hub.register_image_task("bad2", trained_t2i().prompts, metrics=["exact_match"])


def test_a_folder_that_is_not_a_pipeline_is_refused_at_registration(t2i_hub: Any, tmp_path: Any) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(InvalidValue, match=r"is not a diffusers pipeline: it has no model_index\.json"):
        t2i_hub.register_checkpoint(t2i.MODEL, "not-a-pipeline", uri=str(tmp_path), step=1)


def test_a_size_the_pipeline_cannot_produce_is_refused_at_plan_time(t2i_hub: Any) -> None:
    t2i_hub.register_image_task("shapes-30px", trained_t2i().prompts, classifier=trained_t2i().classifier,
                                generation={"steps": 15, "width": 30})  # fmt: skip
    spec = f"name: bad-size\nmodels: [{{model: {t2i.MODEL}, checkpoints: [step-100]}}]\ntasks: [shapes-30px]\n"
    with pytest.raises(SpecError, match="can't produce width 30: sizes must be multiples of 8") as caught:
        t2i_hub.plan(spec)
    assert "step-100" in str(caught.value) and caught.value.line == 2
    t2i_hub.register_model(t2i.MODEL + "-wide", family=t2i.FAMILY, runtime="diffusers",
                           default_params={"width": 48, "height": 48})  # fmt: skip
    t2i_hub.register_checkpoint(t2i.MODEL + "-wide", "step-100", uri=str(trained_t2i().checkpoints[100]))
    assert len(t2i_hub.plan(spec.replace(t2i.MODEL, t2i.MODEL + "-wide").replace("shapes-30px", "shapes")).runs) == 1


def test_a_clip_model_that_is_not_clip_is_refused_at_registration(t2i_hub: Any, tmp_path: Any) -> None:
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(InvalidValue, match=r"engine_config\.clip_model .* is not a CLIP model \(its config says model_type='gpt2'\)"):
        t2i_hub.register_image_task("bad-clip", trained_t2i().prompts, clip_model=str(gpt))
    lonely = tmp_path / "lonely-clip"
    lonely.mkdir()
    (lonely / "config.json").write_text((trained_t2i().clip / "config.json").read_text())
    with pytest.raises(InvalidValue, match="is a CLIP model without its image processor or tokenizer"):
        t2i_hub.register_image_task("bad-clip", trained_t2i().prompts, clip_model=str(lonely))
