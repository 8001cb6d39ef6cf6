"""Paired statistics in the comparison, checked against direct computations: McNemar's exact test via
scipy's binomtest on the discordant pairs, the bootstrap against a plain numpy resample with the same
seed, Holm by hand; the baseline named in several ways; a metric without per-sample scores untested."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from _widgetdata import create_experiment, post_events, register_tiny
from scipy.stats import binomtest

from evalhub.errors import InvalidValue

STEPS = (100, 200, 300)
N = 200


@pytest.fixture
def scored(hub: Any) -> dict[str, Any]:
    """Three runs of one task answering the same 200 items: 0/1 ``acc`` and a continuous ``bleu``."""
    register_tiny(hub, STEPS)
    exp = create_experiment(hub, name="paired", steps=STEPS)
    rng = random.Random(7)
    truth: dict[int, dict[str, list[float]]] = {}
    for i, run in enumerate(exp["runs"]):
        p = (0.5, 0.6, 0.8)[i]
        acc = [1.0 if rng.random() < p else 0.0 for _ in range(N)]
        bleu = [max(0.0, rng.gauss(20 + 5 * i, 8)) for _ in range(N)]
        truth[run["id"]] = {"acc": acc, "bleu": bleu}
        samples = [
            {"sample_key": f"item-{j:04d}", "index": j, "output": str(j), "scores": {"acc": acc[j], "bleu": bleu[j]},
             "primary_score": acc[j]}
            for j in range(N)
        ]  # fmt: skip
        post_events(hub, run["id"], [
            {"type": "status", "status": "running"},
            {"type": "metrics", "values": {"acc": float(np.mean(acc)), "bleu": float(np.mean(bleu)), "latency_p50_ms": 3.0 + i}},
            {"type": "samples", "samples": samples},
            {"type": "status", "status": "completed"},
        ])  # fmt: skip
    return {"exp": exp, "truth": truth}


def test_0_1_metrics_get_mcnemar_and_the_rest_a_paired_bootstrap(hub: Any, scored: dict[str, Any]) -> None:
    exp, truth = hub.experiment(scored["exp"]["id"]), scored["truth"]
    base_id, *others = (r["id"] for r in scored["exp"]["runs"])
    table = exp.compare(baseline="step-100", seed=11, resamples=2000)
    rows = {r["run_id"]: r for r in table.iter_rows(named=True)}
    assert rows[base_id]["acc_delta"] is None and rows[base_id]["baseline"] == base_id
    p_values = []
    for run_id in others:
        row = rows[run_id]
        b, c = np.array(truth[base_id]["acc"]), np.array(truth[run_id]["acc"])
        better, worse = int(((c == 1) & (b == 0)).sum()), int(((c == 0) & (b == 1)).sum())
        assert row["acc_test"] == "mcnemar"
        assert row["acc_p_value"] == pytest.approx(binomtest(better, better + worse, 0.5).pvalue)
        assert row["acc_delta"] == pytest.approx(c.mean() - b.mean())
        assert row["acc_delta_low"] < row["acc_delta"] < row["acc_delta_high"]
        p_values.append(row["acc_p_value"])
        # the bootstrap: resample the items' differences with numpy, the same seed and draw
        diff = np.array(truth[run_id]["bleu"]) - np.array(truth[base_id]["bleu"])
        rng = np.random.default_rng(11)
        means = np.array([diff[rng.integers(0, N, size=N)].mean() for _ in range(2000)])
        assert row["bleu_test"] == "bootstrap"
        assert row["bleu_delta"] == pytest.approx(diff.mean())
        assert row["bleu_delta_low"] == pytest.approx(np.quantile(means, 0.025), abs=1e-9)
        assert row["bleu_delta_high"] == pytest.approx(np.quantile(means, 0.975), abs=1e-9)
        assert "latency_p50_ms_delta" not in row  # no per-sample scores: no test
    order = np.argsort(p_values)
    holm = np.empty(2)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (2 - rank) * p_values[i]))
        holm[i] = running
    assert [rows[r]["acc_p_holm"] for r in others] == pytest.approx(list(holm))


def test_the_baseline_is_named_by_checkpoint_run_id_or_model_slash_checkpoint(
    hub: Any, scored: dict[str, Any]
) -> None:
    exp = hub.experiment(scored["exp"]["id"])
    base_id = scored["exp"]["runs"][0]["id"]
    by_name = exp.compare(baseline="step-100", resamples=200)["acc_delta"].to_list()
    assert exp.compare(baseline=base_id, resamples=200)["acc_delta"].to_list() == by_name
    assert exp.compare(baseline="tiny-gpt/step-100", resamples=200)["acc_delta"].to_list() == by_name
    with pytest.raises(InvalidValue, match="none of the experiment's runs"):
        exp.compare(baseline="step-999")
    with pytest.raises(InvalidValue, match="names 3 runs"):
        exp.compare(baseline="tiny-gpt")


def test_items_only_one_run_answered_are_left_out(hub: Any, scored: dict[str, Any]) -> None:
    exp_id = scored["exp"]["id"]
    extra = scored["exp"]["runs"][2]["id"]
    post_events(hub, extra, [{"type": "samples", "samples": [{"sample_key": "only-here", "scores": {"acc": 1.0}}]}],
                start_seq=10)  # fmt: skip
    table = hub.experiment(exp_id).compare(baseline="step-100", resamples=200)
    truth = scored["truth"]
    base_id = scored["exp"]["runs"][0]["id"]
    row = table.filter(table["run_id"] == extra).row(0, named=True)
    assert row["acc_delta"] == pytest.approx(np.mean(truth[extra]["acc"]) - np.mean(truth[base_id]["acc"]))
