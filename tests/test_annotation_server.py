"""Annotation queues on a real server (SQLite and MariaDB, token auth): people's tokens, queues over an
experiment's samples (all, a filter, a seeded sample), labels of each schema stored as per-sample
scores by person, a pair's order per item and per person, undo, progress, and the refusals."""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _widgetdata import finished_experiment

ADMIN = "admin-secret"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def secured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One token-auth server per backend for this module (each test makes a project of its own)."""
    from _servers import ServerProcess, mysql_database

    folder = tmp_path_factory.mktemp(f"annotation-{request.param}")
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{folder / 'evalhub.db'}"
            if request.param == "sqlite"
            else stack.enter_context(mysql_database())
        )
        proc = ServerProcess(url, folder, auth="token", admin_token=ADMIN)
        proc.start()
        stack.callback(proc.stop)
        yield proc


@pytest.fixture
def project(secured: Any) -> Iterator[dict[str, Any]]:
    """A project with a finished two-run experiment (10 samples each), and tokens for alice, bob
    and the project itself."""
    from evalhub.hub import connect

    server = secured
    name = f"a{uuid.uuid4().hex[:8]}"
    admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
    assert admin.post("/api/projects", json={"name": name}).status_code == 201
    main = admin.post(f"/api/projects/{name}/tokens", json={"name": "main"}).json()["token"]
    people = {}
    for person in ("alice", "bob"):
        made = admin.post(f"/api/projects/{name}/people", json={"name": person})
        assert made.status_code == 201, made.text
        assert made.json()["person"] == person and made.json()["project"] == name
        people[person] = made.json()["token"]
    hub = connect(server.url, token=main, project=name)
    exp = finished_experiment(hub, n=10, steps=(100, 200))

    def as_(token: str) -> httpx.Client:
        return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    yield {"exp": exp, "runs": [r["id"] for r in exp["runs"]], "main": as_(main), "admin": admin,
           "alice": as_(people["alice"]), "bob": as_(people["bob"]), "name": name, "hub": hub}  # fmt: skip
    hub.close()


def _queue(api: httpx.Client, exp: dict[str, Any], name: str, **body: Any) -> dict[str, Any]:
    answer = api.post("/api/annotation-queues", json={"experiment_id": exp["id"], "name": name, **body})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _items(api: httpx.Client, queue: dict[str, Any]) -> list[dict[str, Any]]:
    answer = api.get(f"/api/annotation-queues/{queue['id']}/items", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def _label(api: httpx.Client, queue: dict[str, Any], item: dict[str, Any], **body: Any) -> httpx.Response:
    return api.put(f"/api/annotation-queues/{queue['id']}/items/{item['id']}/label", json=body)


def _scores(api: httpx.Client, run_id: int) -> dict[str, dict[str, Any]]:
    items = api.get(f"/api/runs/{run_id}/samples", params={"limit": 1000}).json()["items"]
    return {s["sample_key"]: s["scores"] for s in items}


def test_a_scale_queue_labels_become_scores_by_person_with_progress(project: dict[str, Any]) -> None:
    alice, bob, exp, runs = project["alice"], project["bob"], project["exp"], project["runs"]
    queue = _queue(project["main"], exp, "quality", schema={"kind": "scale", "min": 1, "max": 5})
    assert queue["progress"] == {"total": 20, "labelled": 0, "labels": 0, "people": []}
    assert queue["run_ids"] == runs and queue["task"] == "arith-add"
    items = _items(alice, queue)
    assert [(i["sample_key"], i["run_id"]) for i in items[:3]] == [
        ("doc-0", runs[0]),
        ("doc-0", runs[1]),
        ("doc-1", runs[0]),
    ]
    assert (
        items[0]["prompt"].startswith("Question: what is 0 + 0?")
        and items[0]["answers"][0]["slot"] == "answer"
    )
    for i, item in enumerate(items[:6]):
        assert _label(alice, queue, item, value=1 + i % 5).status_code == 200
    assert _label(bob, queue, items[0], value=2).status_code == 200
    label = _label(alice, queue, items[0], value=4)  # a later label replaces the first
    assert label.json()["person"] == "alice" and label.json()["value"] == 4.0
    scores = _scores(alice, runs[0])
    assert scores["doc-0"]["quality.alice"] == 4.0 and scores["doc-0"]["quality.bob"] == 2.0
    assert scores["doc-0"]["exact_match"] == 0.0  # the run's own scores stay beside
    progress = alice.get(f"/api/annotation-queues/{queue['id']}/progress").json()
    assert progress == {"total": 20, "labelled": 6, "labels": 7,
                        "people": [{"person": "alice", "labelled": 6, "total": 20},
                                   {"person": "bob", "labelled": 1, "total": 20}]}  # fmt: skip
    # each person sees their own label on the item
    assert _items(bob, queue)[0]["label"]["value"] == 2.0 and _items(alice, queue)[0]["label"]["value"] == 4.0
    # undo: the label and its score go
    undone = alice.delete(f"/api/annotation-queues/{queue['id']}/items/{items[0]['id']}/label")
    assert undone.status_code == 200 and undone.json()["value"] == 4.0
    assert "quality.alice" not in _scores(alice, runs[0])["doc-0"]
    assert _items(alice, queue)[0]["label"] is None
    labels = alice.get(f"/api/annotation-queues/{queue['id']}/labels").json()
    assert labels["total"] == 6 and {x["person"] for x in labels["items"]} == {"alice", "bob"}
    bad = _label(alice, queue, items[1], value=9)
    assert bad.status_code == 422 and "scale is 1..5" in bad.json()["error"]["message"]


def test_a_label_on_someone_elses_token_is_refused(project: dict[str, Any]) -> None:
    alice, exp = project["alice"], project["exp"]
    queue = _queue(project["main"], exp, "q2", schema={"kind": "scale", "min": 1, "max": 3})
    item = _items(alice, queue)[0]
    refused = _label(alice, queue, item, value=2, person="bob")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (
        error["code"] == "forbidden" and "this token is alice's: bob cannot label with it" in error["message"]
    )
    nobody = _label(project["main"], queue, item, value=2)  # a project token is no person's
    assert nobody.status_code == 403 and "no person's" in nobody.json()["error"]["message"]
    assert alice.get(f"/api/annotation-queues/{queue['id']}/labels").json()["total"] == 0
    assert _label(alice, queue, item, value=2, person="alice").status_code == 200


def test_a_queue_over_an_empty_filter_is_a_clear_error(project: dict[str, Any]) -> None:
    api, exp = project["main"], project["exp"]
    empty = api.post("/api/annotation-queues", json={
        "experiment_id": exp["id"], "name": "none", "schema": {"kind": "text"}, "q": "no such words"})  # fmt: skip
    assert empty.status_code == 422
    message = empty.json()["error"]["message"]
    assert (
        "would be empty" in message and "task 'arith-add'" in message and "search 'no such words'" in message
    )
    bad = api.post(
        "/api/annotation-queues", json={"experiment_id": exp["id"], "name": "x", "schema": {"kind": "scale"}}
    )
    assert bad.status_code == 422 and "min < max" in bad.json()["error"]["message"]
    pair = api.post("/api/annotation-queues", json={"experiment_id": exp["id"], "name": "p", "schema": {"kind": "pairwise"},
                                                    "run_ids": [project["runs"][0]]})  # fmt: skip
    assert pair.status_code == 422 and "compares two runs" in pair.json()["error"]["message"]
    _queue(api, exp, "dup", schema={"kind": "text"})
    again = api.post(
        "/api/annotation-queues", json={"experiment_id": exp["id"], "name": "dup", "schema": {"kind": "text"}}
    )
    assert again.status_code == 409


def test_a_filter_and_a_seeded_sample_choose_the_items(project: dict[str, Any]) -> None:
    api, exp, runs = project["main"], project["exp"], project["runs"]
    wrong = _queue(api, exp, "wrong", schema={"kind": "choice", "options": ["bad", "ok"]}, filter="all_wrong",
                   run_ids=[runs[0]])  # fmt: skip
    # config 0 is wrong on even docs, config 1 on multiples of 3: both wrong on doc-0 and doc-6
    assert [i["sample_key"] for i in _items(api, wrong)] == ["doc-0", "doc-6"]
    keys = [f"doc-{j}" for j in range(10)]
    drawn = _queue(api, exp, "drawn", schema={"kind": "text"}, sample=4, seed=7, run_ids=[runs[1]])
    assert [i["sample_key"] for i in _items(api, drawn)] == random.Random(7).sample(keys, 4)
    alice = project["alice"]
    item = _items(alice, wrong)[1]
    assert _label(alice, wrong, item, choice="ok").json()["value"] == 1.0
    assert _scores(alice, runs[0])["doc-6"]["wrong.alice"] == 1.0
    nope = _label(alice, wrong, item, choice="great")
    assert nope.status_code == 422 and "['bad', 'ok']" in nope.json()["error"]["message"]
    text = _label(alice, drawn, _items(alice, drawn)[0], text="fine, but terse")
    assert text.json()["text"] == "fine, but terse" and text.json()["value"] is None


def test_a_pair_is_shown_in_an_order_per_item_and_person_and_the_preference_is_the_runs(
    project: dict[str, Any],
) -> None:
    alice, bob, exp, runs = project["alice"], project["bob"], project["exp"], project["runs"]
    queue = _queue(project["main"], exp, "pref", schema={"kind": "pairwise"}, run_ids=runs)
    outputs = {r: {k: s for k, s in _samples(alice, r).items()} for r in runs}
    seen = {}
    for who, api in (("alice", alice), ("bob", bob)):
        items = _items(api, queue)
        assert len(items) == 10
        seen[who] = [i["order"] for i in items]
        for item in items:
            first = runs[0] if item["order"] == "AB" else runs[1]
            assert item["answers"][0]["output"] == outputs[first][item["sample_key"]]
    # the orders vary over items, and differ between people on some item
    assert set(seen["alice"]) == {"AB", "BA"} and seen["alice"] != seen["bob"]
    # alice always prefers the answer shown first: the score is 1 for the run when it was shown first
    for item in _items(alice, queue):
        label = _label(alice, queue, item, choice="A").json()
        assert label["order"] == item["order"] and label["value"] == (1.0 if item["order"] == "AB" else 0.0)
    scores = _scores(alice, runs[0])
    for item in _items(alice, queue):
        assert scores[item["sample_key"]]["pref.alice"] == (1.0 if item["order"] == "AB" else 0.0)
    tie = _label(bob, queue, _items(bob, queue)[0], choice="tie").json()
    assert tie["value"] == 0.5 and tie["choice"] == "tie"


def _samples(api: httpx.Client, run_id: int) -> dict[str, str]:
    items = api.get(f"/api/runs/{run_id}/samples", params={"limit": 1000}).json()["items"]
    return {s["sample_key"]: s["output"] for s in items}


def test_another_project_sees_no_queue(project: dict[str, Any]) -> None:
    queue = _queue(project["main"], project["exp"], "mine", schema={"kind": "text"})
    admin = project["admin"]
    other = f"o{uuid.uuid4().hex[:8]}"
    admin.post("/api/projects", json={"name": other})
    carol = admin.post(f"/api/projects/{other}/people", json={"name": "carol"}).json()["token"]
    api = httpx.Client(base_url=str(admin.base_url), headers={"Authorization": f"Bearer {carol}"})
    assert api.get(f"/api/annotation-queues/{queue['id']}").status_code == 404
    assert (
        api.put(f"/api/annotation-queues/{queue['id']}/items/1/label", json={"text": "x"}).status_code == 404
    )
    assert api.get("/api/annotation-queues").json()["total"] == 0


def test_the_same_label_twice_and_purges_take_queues_along(project: dict[str, Any]) -> None:
    api, alice, exp, runs = project["main"], project["alice"], project["exp"], project["runs"]
    queue = _queue(api, exp, "keep", schema={"kind": "scale", "min": 1, "max": 5})
    items = _items(alice, queue)
    for _ in range(2):  # the same value again (MySQL counts an unchanged row as not updated)
        assert _label(alice, queue, items[0], value=3).status_code == 200
    assert alice.get(f"/api/annotation-queues/{queue['id']}/labels").json()["total"] == 1
    _label(alice, queue, items[1], value=2)
    # purging one run takes its items (and their labels) out of the queue
    assert api.delete(f"/api/runs/{runs[1]}", params={"purge": "true"}).status_code == 200
    left = _items(alice, queue)
    assert len(left) == 10 and {i["run_id"] for i in left} == {runs[0]}
    assert alice.get(f"/api/annotation-queues/{queue['id']}/progress").json()["labels"] == 1
    # purging the experiment takes the queue along
    assert api.delete(f"/api/experiments/{exp['id']}", params={"purge": "true"}).status_code == 200
    assert api.get(f"/api/annotation-queues/{queue['id']}").status_code == 404


def test_one_person_asked_for_at_once_from_many_clients_is_made_once(project: dict[str, Any]) -> None:
    """Concurrent requests for the same person (as schemathesis's two workers sent): one 201, the
    others 409, never a 500 from the unique key."""
    from concurrent.futures import ThreadPoolExecutor

    admin, name = project["admin"], project["name"]

    def ask(person: str) -> int:
        return int(admin.post(f"/api/projects/{name}/people", json={"name": person}).status_code)

    for attempt in range(5):
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(ask, [f"carol{attempt}"] * 8))
        assert sorted(set(codes)) in ([201], [201, 409]) and codes.count(201) == 1, codes
