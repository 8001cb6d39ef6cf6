"""HEIM's rating rubric for generated images as annotation queues on a real server: one 1-5 scale queue
per criterion over a text-to-image experiment's images, two people rating, their ratings the runs'
per-sample scores beside the image metrics, and their agreement per criterion (scikit-learn's weighted
kappa as the oracle)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from _imagedata import image_experiment

from evalhub import t2i
from evalhub.errors import InvalidValue

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_two_people_rate_images_on_heims_rubric(hub: Any) -> None:
    exp = image_experiment(hub, n=8)
    queues = t2i.rating_queues(hub, exp["id"])
    assert list(queues) == ["alignment", "aesthetics", "originality"]
    assert queues["alignment"].schema["question"].startswith("How well does the image match")
    rng = random.Random(0)
    given: dict[str, dict[str, list[int]]] = {}
    for name, queue in queues.items():
        alice, bob = hub.queue(queue.id, person="alice"), hub.queue(queue.id, person="bob")
        items = alice.items()
        assert len(items) == 16 and all(
            i["answers"][0]["output"].endswith(".png") for i in items
        )  # 8 prompts x 2 runs
        a = [rng.randint(1, 5) for _ in items]
        b = [min(5, max(1, x + rng.choice([-1, 0, 1]))) for x in a]
        for item, x, y in zip(items, a, b, strict=True):
            alice.label(item, x)
            bob.label(item, y)
        given[name] = {"alice": a, "bob": b}
        want = sklearn_metrics.cohen_kappa_score(a, b, weights="quadratic", labels=[1, 2, 3, 4, 5])
        assert alice.kappa("alice", "bob").kappa == pytest.approx(want, abs=1e-12)
        assert alice.progress()["people"][0] == {"person": "alice", "labelled": 16, "total": 16}
    # the ratings sit beside the image metrics in each run's samples
    item = hub.queue(queues["aesthetics"].id, person="alice").items()[0]
    sample = next(
        s
        for s in hub.client.paged(f"/runs/{item['run_id']}/samples")
        if s["sample_key"] == item["sample_key"]
    )
    assert {"correct", "clip_score", "alignment.alice", "aesthetics.bob", "originality.alice"} <= set(
        sample["scores"]
    )
    assert sample["scores"]["aesthetics.alice"] == given["aesthetics"]["alice"][0]


def test_a_rubric_of_ones_own_and_unknown_criteria(hub: Any) -> None:
    exp = image_experiment(hub, n=3, steps=(100,))
    own = t2i.rating_queues(hub, exp["id"], {"count": "Are there as many shapes as the prompt says? 1-5"},
                            prefix="mine-")  # fmt: skip
    assert list(own) == ["count"] and own["count"].name == "mine-count"
    with pytest.raises(InvalidValue, match=r"unknown rubric criteria 'beauty': HEIM's are alignment"):
        t2i.rating_queues(hub, exp["id"], ["beauty"])


def test_the_annotator_shows_the_image_a_person_rates(hub: Any) -> None:
    import base64

    import evalhub

    exp = image_experiment(hub, n=2, steps=(100,))
    queue = t2i.rating_queues(hub, exp["id"], ["alignment"])["alignment"]
    widget = evalhub.annotate(queue, person="alice")
    answer = widget.item["answers"][0]
    want = hub.artifact(widget.item["run_id"], answer["output"])
    assert answer["image"] == "data:image/png;base64," + base64.b64encode(want).decode()
    widget.label(4)
    assert widget.item["answers"][0]["image"].startswith("data:image/png;base64,") and widget.position == 1
