"""The Annotator widget from Python: the messages its keys send (label, next/prev, skip, undo) move
through the queue, write labels, and update progress and kappa; it opens on the first item the
person has not labelled."""

from __future__ import annotations

from typing import Any

import pytest
from _widgetdata import finished_experiment

pytest.importorskip("anywidget")


def _press(widget: Any, **message: Any) -> None:
    widget._on_message(widget, message, [])
    assert widget.error == "", widget.error


def test_keys_label_move_skip_and_undo_and_kappa_follows(hub: Any) -> None:
    import evalhub

    exp = finished_experiment(hub, n=5, steps=(100, 200))
    queue = hub.annotation_queue(exp["id"], "rate", {"kind": "scale", "min": 1, "max": 3})
    alice = evalhub.annotate(queue.id, hub=hub, person="alice")
    bob = evalhub.annotate("rate", hub=hub, person="bob")
    assert alice.position == 0 and alice.item["prompt"].startswith("Question: what is 0 + 0?")
    for value in (1, 2, 3):
        _press(alice, type="label", answer=value)
    assert alice.position == 3 and alice.progress["people"] == [
        {"person": "alice", "labelled": 3, "total": 10}
    ]
    _press(alice, type="skip")
    _press(alice, type="prev")
    _press(alice, type="next")
    assert alice.position == 4 and alice.item["label"] is None
    _press(alice, type="undo")  # the label of item 3 goes; the widget is back on it
    assert alice.position == 2 and alice.item["label"] is None and "undid" in alice.status
    assert alice.progress["labelled"] == 2
    for value in (1, 2):
        _press(bob, type="label", answer=value)
    _press(alice, type="refresh")
    [pair] = alice.agreement
    assert (pair["a"], pair["b"], pair["n"]) == ("alice", "bob", 2) and pair["kappa"] == pytest.approx(1.0)
    assert "kappa alice-bob 1.000 (n=2)" in repr(alice)
    # a new widget for alice opens on her first open item
    assert evalhub.annotate(queue.id, hub=hub, person="alice").position == 2
    bad = alice
    bad._on_message(bad, {"type": "label", "answer": 7}, [])
    assert "scale is 1..3" in bad.error


def test_a_pair_a_choice_and_free_text_from_the_widget(hub: Any) -> None:
    import evalhub

    exp = finished_experiment(hub, n=3, steps=(100, 200))
    runs = [r["id"] for r in exp["runs"]]
    hub.annotation_queue(exp["id"], "pair", {"kind": "pairwise"}, run_ids=runs)
    pair = evalhub.annotate("pair", hub=hub, person="carol")
    shown = pair.item
    assert [a["slot"] for a in shown["answers"]] == ["A", "B"] and shown["order"] in ("AB", "BA")
    _press(pair, type="label", answer="A")  # key 1
    assert pair.position == 1
    label = hub.queue("pair").labels().row(0, named=True)
    assert label["order"] == shown["order"] and label["value"] == (1.0 if shown["order"] == "AB" else 0.0)

    hub.annotation_queue(exp["id"], "fit", {"kind": "choice", "options": ["off", "on"]}, run_ids=runs[:1])
    fit = evalhub.annotate("fit", hub=hub, person="carol")
    _press(fit, type="label", answer="on")  # key 2
    assert hub.queue("fit").labels()["choice"].to_list() == ["on"]

    hub.annotation_queue(exp["id"], "notes", {"kind": "text"}, run_ids=runs[:1])
    notes = evalhub.annotate("notes", hub=hub, person="carol")
    _press(notes, type="label", answer=None, text="right, but terse")  # typed, then Enter
    assert hub.queue("notes").labels()["text"].to_list() == ["right, but terse"]
    assert notes.agreement == [] and notes.progress["labelled"] == 1
