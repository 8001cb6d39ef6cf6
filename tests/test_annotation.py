"""The annotation client (hub.annotation_queue, AnnotationQueue) on a real server without auth, where a
label names its person: labels, undo, progress, the labels frame, and kappa between people checked
against scikit-learn's cohen_kappa_score (weighted for a scale)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from _widgetdata import finished_experiment

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_kappa_between_people_on_a_scale_is_sklearns_weighted_kappa(hub: Any) -> None:
    exp = finished_experiment(hub, n=12, steps=(100, 200))
    queue = hub.annotation_queue(exp["id"], "quality", {"kind": "scale", "min": 1, "max": 5})
    alice, bob = hub.queue("quality", person="alice"), hub.queue(queue.id, person="bob")
    items = alice.items()
    assert len(items) == 24
    rng = random.Random(3)
    a = [rng.randint(1, 5) for _ in items]
    b = [min(5, max(1, x + rng.choice([-1, 0, 0, 1]))) for x in a]
    for item, x, y in zip(items, a, b, strict=True):
        alice.label(item, x)
        bob.label(item, y)
    bob.label(items[0], 5)
    bob.undo(items[0])  # bob's first item is unlabelled: kappa is over the 23 both labelled
    k = alice.kappa("alice", "bob")
    want = sklearn_metrics.cohen_kappa_score(a[1:], b[1:], weights="quadratic", labels=[1, 2, 3, 4, 5])
    assert k.n == 23 and k.dropped == 1 and k.weights == "quadratic"
    assert k.kappa == pytest.approx(want, abs=1e-12)
    plain = sklearn_metrics.cohen_kappa_score(a[1:], b[1:], labels=[1, 2, 3, 4, 5])
    assert alice.kappa("alice", "bob", weights=None).kappa == pytest.approx(plain, abs=1e-12)
    frame = alice.agreement()
    assert frame.select("a", "b", "n").rows() == [("alice", "bob", 23)]
    assert frame["kappa"][0] == pytest.approx(want, abs=1e-12)
    progress = alice.progress()
    assert progress["people"] == [{"person": "alice", "labelled": 24, "total": 24},
                                  {"person": "bob", "labelled": 23, "total": 24}]  # fmt: skip
    labels = alice.labels()
    assert labels.height == 47 and set(labels["person"]) == {"alice", "bob"}

    # the labels are the runs' per-sample scores by person
    def scores(item: dict[str, Any]) -> dict[str, Any]:
        found = hub.client.paged(f"/runs/{item['run_id']}/samples")
        return next(s["scores"] for s in found if s["sample_key"] == item["sample_key"])

    assert scores(items[1])["quality.alice"] == a[1] and scores(items[1])["quality.bob"] == b[1]
    assert "quality.bob" not in scores(items[0]) and scores(items[0])["quality.alice"] == a[0]


def test_kappa_on_a_pairwise_queue_is_over_the_runs_not_the_order_shown(hub: Any) -> None:
    exp = finished_experiment(hub, n=16, steps=(100, 200))
    runs = [r["id"] for r in exp["runs"]]
    hub.annotation_queue(exp["id"], "pref", {"kind": "pairwise"}, run_ids=runs)
    alice, bob = hub.queue("pref", person="alice"), hub.queue("pref", person="bob")
    truth = {}
    for i, (ia, ib) in enumerate(zip(alice.items(), bob.items(), strict=True)):
        assert ia["id"] == ib["id"]
        better = "run" if i % 3 else "other"  # both prefer the same run; they were shown different orders
        truth[ia["id"]] = better
        for api, item in ((alice, ia), (bob, ib)):
            first_is_run = item["order"] == "AB"
            api.label(item, "A" if (better == "run") == first_is_run else "B")
    k = alice.kappa("alice", "bob")
    assert k.n == 16 and k.kappa == pytest.approx(1.0)
    assert any(a["order"] != b["order"] for a, b in zip(alice.items(), bob.items(), strict=True))


def test_free_text_has_no_kappa_and_an_empty_filter_is_refused(hub: Any) -> None:
    from evalhub.errors import EvalhubError, InvalidInput

    exp = finished_experiment(hub, n=4, steps=(100,))
    queue = hub.annotation_queue(exp["id"], "notes", {"kind": "text"})
    queue.person = "alice"
    assert queue.label(queue.items()[0], "too short")["text"] == "too short"
    with pytest.raises(EvalhubError, match="free text"):
        queue.agreement()
    with pytest.raises(InvalidInput, match=r"would be empty.*filter 'mixed'"):
        hub.annotation_queue(exp["id"], "none", {"kind": "text"}, filter="mixed")  # one run: never mixed
