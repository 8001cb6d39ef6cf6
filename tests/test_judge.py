"""LLM-as-judge end to end on a real server: pointwise and pairwise judgements (both orders), verdicts
parsed or kept null with their raw text and counted, every call stored with its sample, the judge's
scores beside the runs' own; then on a real Ray cluster with the tiny model as the judge."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _judges import InProcessExecutor, outcome_with_unknowns, register_judge
from _widgetdata import complete_run, create_experiment, register_tiny

from evalhub.errors import InvalidValue
from evalhub.scorers import Judge

N = 40


def _samples(hub: Any, run_id: int) -> dict[str, dict[str, Any]]:
    return {s["sample_key"]: s for s in hub.client.paged(f"/runs/{run_id}/samples")}


def _experiment(hub: Any, steps: tuple[int, ...] = (100, 200), outcome: Any = outcome_with_unknowns) -> Any:
    register_tiny(hub, steps)
    data = create_experiment(hub, steps=steps)
    for i, run in enumerate(data["runs"]):
        complete_run(hub, run, i, n=N, outcome=outcome)
    return hub.experiment(data["id"])


def test_a_pointwise_judge_rates_every_sample_and_keeps_what_it_cannot_read(hub: Any, tmp_path: Path) -> None:
    exp = _experiment(hub)
    judge = register_judge(hub, tmp_path)
    executor = InProcessExecutor()
    scored = exp.score(Judge(judge), executor=executor)
    assert scored.height == 2 and set(scored["status"]) == {"completed"}
    # one judge run per judged run, every prompt of a run in one job
    assert len(executor.jobs) == 2 and all(len(j.task["engine_config"]["calls"]) == N for j in executor.jobs)
    for run in exp.runs().iter_rows(named=True):
        calls = exp.judge_calls(run["id"])
        assert calls.height == N and set(calls["position"]) == {"single"}
        assert set(calls["judge"]) == {judge} and calls["prompt"].str.contains(r"\[Question\]").all()
        unparsed = calls.filter(calls["verdict"].is_null())
        assert sorted(unparsed["sample_key"]) == ["doc-13", "doc-39"]  # the answers "?": no verdict
        assert (
            unparsed["score"].null_count() == 2
            and unparsed["raw_output"].to_list() == ["I cannot rate this one."] * 2
        )
        parsed = calls.filter(calls["verdict"].is_not_null())
        samples = _samples(hub, run["id"])
        for row in parsed.iter_rows(named=True):
            sample = samples[row["sample_key"]]
            expected = 9.0 if sample["scores"]["exact_match"] == 1.0 else 2.0
            assert row["score"] == expected and sample["scores"]["judge.score"] == expected
            assert row["rationale"].startswith("The answer is")
        for key in ("doc-13", "doc-39"):
            assert "judge.score" not in samples[key]["scores"]  # a null score, never a guess
        metrics = hub.metrics(run["id"])
        assert metrics["judge.unparsed"] == 2.0
        assert metrics["judge.score"] == pytest.approx(parsed["score"].mean())
    table = exp.compare()
    assert "judge.score" in table.columns and "judge.unparsed" in table.columns
    history = exp.scorings().row(0, named=True)
    assert history["kind"] == "judge" and history["version"].startswith("mt-bench-single@")
    # the judge runs are an experiment of their own, their calls its samples
    judge_run = hub.run(int(hub.client.get(f"/scorings/{history['id']}")["judge_run_id"]))
    assert judge_run["status"] == "completed" and judge_run["model"] == "det-judge"
    assert hub.samples(judge_run["id"]).height == N


def test_a_pairwise_judge_judges_both_orders_and_counts_disagreement(hub: Any, tmp_path: Path) -> None:
    exp = _experiment(hub)
    judge = register_judge(hub, tmp_path)
    scored = exp.score(Judge(judge, mode="pairwise", baseline="step-100"), executor=InProcessExecutor())
    assert scored.height == 1  # the baseline is not judged against itself
    runs = {r["checkpoint"]: r["id"] for r in exp.runs().iter_rows(named=True)}
    candidate, base = runs["step-200"], runs["step-100"]
    calls = exp.judge_calls(candidate)
    assert calls.height == 2 * N and Counter(calls["position"]) == {"AB": N, "BA": N}
    assert set(calls["other_run_id"]) == {base}
    samples = _samples(hub, candidate)
    theirs = _samples(hub, base)
    expected: Counter[str] = Counter()
    for key, mine in samples.items():
        a, b = mine["scores"]["exact_match"], theirs[key]["scores"]["exact_match"]
        if "?" in (mine["output"], theirs[key]["output"]):
            expected["unparsed"] += 1
            assert "judge.win" not in mine["scores"]
        elif a and b:
            expected["tie"] += 1
            assert mine["scores"]["judge.win"] == 0.5
        elif not a and not b:  # the judge always says [[A]]: the orders disagree
            expected["inconsistent"] += 1
            assert mine["scores"]["judge.win"] == 0.5  # counted as a tie
        else:
            expected["win" if a else "loss"] += 1
            assert mine["scores"]["judge.win"] == (1.0 if a else 0.0)
    metrics = hub.metrics(candidate)
    assert metrics["judge.wins"] == expected["win"] and metrics["judge.losses"] == expected["loss"]
    assert (
        metrics["judge.ties"] == expected["tie"] and metrics["judge.inconsistent"] == expected["inconsistent"]
    )
    assert metrics["judge.unparsed"] == 2 * expected["unparsed"]  # two unreadable calls per pair
    parsed_pairs = N - expected["unparsed"]
    assert metrics["judge.position_consistency"] == pytest.approx(1 - expected["inconsistent"] / parsed_pairs)
    by_key = {(r["sample_key"], r["position"]): r for r in calls.iter_rows(named=True)}
    ab = by_key[("doc-1", "AB")]["prompt"]
    ba = by_key[("doc-1", "BA")]["prompt"]
    mine_answer, their_answer = samples["doc-1"]["output"], theirs["doc-1"]["output"]
    assert (
        f"Assistant A's Answer]\n{mine_answer}\n" in ab and f"Assistant B's Answer]\n{their_answer}\n" in ab
    )
    assert (
        f"Assistant A's Answer]\n{their_answer}\n" in ba and f"Assistant B's Answer]\n{mine_answer}\n" in ba
    )


def test_judge_refusals_name_what_is_wrong(hub: Any, tmp_path: Path) -> None:
    exp = _experiment(hub)
    judge = register_judge(hub, tmp_path)
    with pytest.raises(InvalidValue, match="a pairwise judge needs a baseline"):
        exp.score(Judge(judge, mode="pairwise"), executor=InProcessExecutor())
    with pytest.raises(
        InvalidValue, match=r"needs \{difficulty\}, which sample 'doc-0' of run \d+ does not have"
    ):
        exp.score(
            Judge(judge, template="Is {answer} right at {difficulty}? [[n]]"), executor=InProcessExecutor()
        )
    with pytest.raises(InvalidValue, match="judge checkpoint 'v9' of model 'det-judge' is not registered"):
        exp.score(Judge("det-judge/v9"), executor=InProcessExecutor())
    with pytest.raises(InvalidValue, match="baseline 'step-900' names 0 runs"):
        exp.score(Judge(judge, mode="pairwise", baseline="step-900"), executor=InProcessExecutor())
    assert exp.scorings().height == 0  # nothing started for any of them


def _padded(config: int, j: int) -> tuple[str, float]:
    """As outcome_with_unknowns, the second config's answers padded with 0-3 spaces (the test judge
    strips them): answers of one meaning and of different lengths, for length bias to measure."""
    answer, score = outcome_with_unknowns(config, j)
    return (answer + " " * (j % 4) if config == 1 else answer), score


def _sign(verdict: str) -> int:
    return {"A": 1, "B": -1}.get(verdict, 0)  # anything else the parser keeps is MT-Bench's tie


def test_how_far_to_trust_a_pairwise_judge_is_counted_correlated_and_compared_with_people(
    hub: Any, tmp_path: Path
) -> None:
    """Position consistency by counting, length bias against scipy's spearmanr over both orders, and
    agreement with a person's preferences against scikit-learn's cohen_kappa_score."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    from evalhub.scorers import answer_of

    exp = _experiment(hub, outcome=_padded)
    judge = register_judge(hub, tmp_path)
    exp.score(Judge(judge, mode="pairwise", baseline="step-100"), executor=InProcessExecutor())
    runs = {r["checkpoint"]: r["id"] for r in exp.runs().iter_rows(named=True)}
    candidate, base = runs["step-200"], runs["step-100"]
    before = exp.judge_reliability()
    assert before.height == 1 and before["kappa_people"][0] is None
    assert before["people"][0] == 0 and "no person labelled" in before["kappa_reason"][0]
    # a person states a preference on every pair, disagreeing with the right answer now and then
    samples, theirs = _samples(hub, candidate), _samples(hub, base)
    hub.annotation_queue(exp.id, "pref", {"kind": "pairwise"}, run_ids=[candidate, base])
    alice = hub.queue("pref", person="alice")
    preference = {}
    for i, item in enumerate(alice.items()):
        key = item["sample_key"]
        a, b = samples[key]["scores"]["exact_match"], theirs[key]["scores"]["exact_match"]
        value = 0.5 if a == b else float(a > b)
        if i % 5 == 0:
            value = 1.0 - value if value != 0.5 else 1.0
        preference[key] = value
        first_is_run = item["order"] == "AB"
        alice.label(item, "tie" if value == 0.5 else "A" if (value == 1.0) == first_is_run else "B")
    row = exp.judge_reliability().row(0, named=True)
    assert (row["run_id"], row["baseline_run_id"], row["mode"]) == (candidate, base, "pairwise")
    calls = exp.judge_calls(candidate)
    verdicts = {(r["sample_key"], r["position"]): r["verdict"] for r in calls.iter_rows(named=True)}
    pairs = [(verdicts[(k, "AB")], verdicts[(k, "BA")]) for k in samples]
    parsed = [(ab, ba) for ab, ba in pairs if ab is not None and ba is not None]
    consistent = sum(_sign(ab) == -_sign(ba) for ab, ba in parsed)
    assert row["position_consistency"] == pytest.approx(consistent / len(parsed))
    assert row["consistency_low"] < row["position_consistency"] < row["consistency_high"]
    shown, difference = [], []
    for (key, position), verdict in verdicts.items():
        if verdict is None:
            continue
        d = len(answer_of(samples[key])) - len(answer_of(theirs[key]))
        shown.append(_sign(verdict))
        difference.append(d if position == "AB" else -d)
    want = spearmanr(difference, shown)
    assert row["length_bias"] == pytest.approx(want.statistic) and row["length_bias_p"] == pytest.approx(
        want.pvalue
    )
    assert hub.metrics(candidate)["judge.length_bias"] == pytest.approx(want.statistic)  # beside its scores
    wins = {k: s["scores"].get("judge.win") for k, s in samples.items()}
    both = [k for k in preference if wins[k] is not None]
    name = {0.0: "baseline", 0.5: "tie", 1.0: "run"}  # scikit-learn takes no float categories
    kappa = cohen_kappa_score([name[wins[k]] for k in both], [name[preference[k]] for k in both])
    assert row["people"] == 1 and row["kappa_n"] == len(both)
    assert row["kappa_people"] == pytest.approx(kappa)


def test_a_pointwise_judges_length_bias_and_agreement_with_a_persons_ratings(
    hub: Any, tmp_path: Path
) -> None:
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    from evalhub.scorers import answer_of

    exp = _experiment(hub, outcome=_padded)
    judge = register_judge(hub, tmp_path)
    exp.score(Judge(judge), executor=InProcessExecutor())
    run = int(exp.runs()["id"][0])
    hub.annotation_queue(exp.id, "rating", {"kind": "scale", "min": 1, "max": 10}, run_ids=[run])
    alice = hub.queue("rating", person="alice")
    samples = _samples(hub, run)
    ratings = {}
    for i, item in enumerate(alice.items()):
        judged = samples[item["sample_key"]]["scores"].get("judge.score")
        ratings[item["sample_key"]] = rating = 5 if judged is None else int(judged) - (i % 3 == 0)
        alice.label(item, rating)
    reliability = exp.judge_reliability()
    assert reliability.height == 2 and set(reliability["mode"]) == {"single"}
    for row in reliability.iter_rows(named=True):
        judged = {k: s["scores"]["judge.score"] for k, s in _samples(hub, row["run_id"]).items()
                  if "judge.score" in s["scores"]}  # fmt: skip
        mine = _samples(hub, row["run_id"])
        want = spearmanr([len(answer_of(mine[k])) for k in judged], list(judged.values()))
        assert row["length_bias"] == pytest.approx(want.statistic)
        assert row["position_consistency"] is None  # one order: nothing to swap
        if row["run_id"] != run:
            assert row["kappa_people"] is None and row["people"] == 0
            continue
        keys = [k for k in ratings if k in judged]
        kappa = cohen_kappa_score([judged[k] for k in keys], [ratings[k] for k in keys], weights="quadratic",
                                  labels=list(range(1, 11)))  # fmt: skip
        assert row["kappa_n"] == len(keys) and row["kappa_people"] == pytest.approx(kappa)


@pytest.mark.ray
@pytest.mark.slow
def test_the_tiny_model_judges_on_ray(hub: Any) -> None:
    """The judge is a real checkpoint (the tiny model, hf runtime) in a Ray worker: its answers are not
    verdicts, so every score is null and every raw answer kept and counted."""
    from _tinymodel import tiny_path

    from evalhub.execution.executor import RayExecutor

    exp = _experiment(hub, steps=(100,))
    hub.register_model("tiny-judge", family="tiny-gpt", runtime="hf")
    hub.register_checkpoint("tiny-judge", "step-150", uri=str(tiny_path()))
    executor = RayExecutor(num_cpus=1)
    try:
        scored = exp.score(Judge("tiny-judge/step-150", max_new_tokens=8, batch_size=8), executor=executor)
    finally:
        executor.shutdown()
    run = exp.runs()["id"][0]
    calls = exp.judge_calls(run)
    assert calls.height == N and calls["raw_output"].null_count() == 0
    unparsed = calls["verdict"].null_count()
    assert hub.metrics(run)["judge.unparsed"] == unparsed
    assert scored["status"].to_list() == ["completed"]
    judge_run = hub.run(int(hub.client.get(f"/scorings/{scored['scoring_id'][0]}")["judge_run_id"]))
    assert judge_run["worker"]["ray_node_id"] is not None and judge_run["runtime"] == "hf"
