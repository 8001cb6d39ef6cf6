"""Rescoring an experiment's stored outputs through a real server: the scores sit beside the runs' own
in the comparison (paired statistics included), the aligned samples and the samples; every rescoring is
recorded; a new one under a name replaces it; refusals name what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from _widgetdata import create_experiment, finished_experiment

from evalhub.errors import EvalhubError, InvalidValue
from evalhub.scorers import ExactMatch, Function, LmEvalMetric, Regex


def test_rescoring_sits_beside_the_original_scores(hub: Any) -> None:
    data = finished_experiment(hub, n=40)
    exp = hub.experiment(data["id"])
    scored = exp.score(ExactMatch(strip=True))
    assert scored.height == 3 and set(scored["status"]) == {"completed"} and set(scored["samples"]) == {40}
    table = exp.compare()
    assert table["em.exact_match"].to_list() == pytest.approx(table["exact_match"].to_list())
    assert table["em.exact_match_stderr"].null_count() == 0
    paired = exp.compare(baseline="step-100")
    for suffix in ("_delta", "_delta_low", "_delta_high", "_p_value", "_p_holm"):
        assert paired[f"em.exact_match{suffix}"].to_list() == pytest.approx(
            paired[f"exact_match{suffix}"].to_list(), nan_ok=True
        )
    aligned = hub.client.get(f"/experiments/{exp.id}/samples", limit=5)
    for item in aligned["items"]:
        for out in item["outputs"].values():
            assert out["scores"]["em.exact_match"] == out["scores"]["exact_match"]


def test_a_function_a_regex_and_an_lm_eval_metric(hub: Any) -> None:
    data = finished_experiment(hub, n=20, steps=(100, 200))
    exp = hub.experiment(data["id"])

    def apples(sample: dict[str, Any]) -> dict[str, Any]:
        return {"fruit": "apples" in (sample["output"] or ""), "chars": len(sample["output"] or "")}

    exp.score(Function(apples, higher_is_better=False))
    exp.score(Regex(r"^(\d+)", name="num"))
    exp.score(LmEvalMetric("chrf"))
    table = exp.compare()
    wrong = 1 - table["exact_match"]
    assert table["apples.fruit"].to_list() == pytest.approx(wrong.to_list())
    assert table["num.found"].to_list() == [1.0, 1.0]  # every output starts with a number
    assert table["num.exact_match"].to_list() == pytest.approx(table["exact_match"].to_list())
    assert all(0 < v <= 100 for v in table["chrf.chrf"].to_list())
    compared = hub.client.get(f"/experiments/{exp.id}/compare")
    assert compared["higher_is_better"]["apples.fruit"] is False
    assert compared["higher_is_better"]["num.exact_match"] is True
    history = exp.scorings()
    assert sorted(set(history["name"].to_list())) == ["apples", "chrf", "num"]
    assert set(history["kind"].to_list()) == {"python", "regex", "lm_eval"}
    assert history["created_at"].null_count() == 0 and history["version"].null_count() == 0


def test_scoring_again_under_a_name_replaces_its_scores(hub: Any) -> None:
    data = finished_experiment(hub, n=10, steps=(100,))
    exp = hub.experiment(data["id"])
    run = data["runs"][0]["id"]
    exp.score(Function(lambda s: {"a": 1.0, "b": 2.0}, name="fn"))
    exp.score(Function(lambda s: {"c": 3.0}, name="fn"))
    metrics = hub.metrics(run)
    assert "fn.a" not in metrics and "fn.b" not in metrics and metrics["fn.c"] == 3.0
    sample = hub.samples(run, limit=1).row(0, named=True)
    assert "fn.a" not in sample["scores"] and "fn.c" in sample["scores"]
    assert hub.scorings(run_id=run).height == 2


def test_refusals_name_what_is_wrong(hub: Any) -> None:
    done = finished_experiment(hub, n=3, steps=(100,))
    exp = create_experiment(hub, steps=(100,))
    run = exp["runs"][0]["id"]
    with pytest.raises(InvalidValue, match=f"run {run} is queued: score its samples once it has finished"):
        hub.score(run, ExactMatch())
    with pytest.raises(EvalhubError, match="no completed runs"):
        hub.experiment(exp["id"]).score(ExactMatch())

    def broken(sample: dict[str, Any]) -> float:
        raise RuntimeError("no")

    with pytest.raises(InvalidValue, match="scorer 'broken' failed on sample 'doc-0': RuntimeError: no"):
        hub.experiment(done["id"]).score(Function(broken))
    failed = hub.scorings(run_id=done["runs"][0]["id"]).row(0, named=True)
    assert failed["status"] == "failed"


def test_a_specs_scorers_score_its_finished_runs(hub: Any, tmp_path: Any) -> None:
    from _widgetdata import complete_run, register_tiny

    register_tiny(hub, (100, 200))
    data = tmp_path / "arith.jsonl"
    data.write_text("".join(f'{{"question": "{j}+{j}=", "answer": "{2 * j}"}}\n' for j in range(10)))
    hub.register_task("arith-add", data=str(data), prompt="{{question}}", target="{{answer}}")

    class Completes:
        """Finishes every run as a worker would (samples, metrics, completed)."""

        def execute(self, hub: Any, experiment_id: int, jobs: Any, resources: Any) -> None:
            for i, job in enumerate(jobs):
                complete_run(hub, {"id": job.run_id}, i, n=10)

    spec = (
        "name: scored\nmodels: [{model: tiny-gpt}]\ntasks: [arith-add]\nscorers:\n"
        "  - {type: exact_match, name: em}\n  - {type: regex, pattern: '^(\\d+)$', name: num}\n"
    )
    exp = hub.run_experiment(spec, executor=Completes(), progress=False)
    table = exp.compare()
    assert table["em.exact_match"].to_list() == pytest.approx(table["exact_match"].to_list())
    assert table["num.exact_match"].to_list() == pytest.approx(table["exact_match"].to_list())
    assert sorted(set(exp.scorings()["name"].to_list())) == ["em", "num"]
