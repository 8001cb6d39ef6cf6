"""Scorings on the server: a rescoring's scores sit beside a run's own, its metrics among the run's,
its judge calls with their samples; a new scoring under a name replaces that name's scores; the columns
read; and the refusals (a running run, a key outside the scorer's name, a finished scoring)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from _servers import ServerProcess


class Api:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"X-Evalhub-Project": f"p{uuid.uuid4().hex[:10]}"}, timeout=60
        )

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        assert r.status_code == expect, r.text
        return r.json()


@pytest.fixture
def api(any_server: ServerProcess) -> Any:
    a = Api(any_server.url)
    yield a
    a.http.close()


def _run(api: Api, n: int = 4, finish: bool = True) -> int:
    api.call("POST", "/api/families", 201, json={"name": "f"})
    api.call("POST", "/api/models", 201, json={"name": "m", "family": "f", "runtime": "hf"})
    api.call("POST", "/api/checkpoints", 201, json={"name": "c", "model": "m", "uri": "/w"})
    exp = api.call(
        "POST",
        "/api/experiments",
        201,
        json={"name": "e", "runs": [{"name": "r", "model": "m", "checkpoint": "c", "task": "t"}]},
    )
    run = int(exp["runs"][0]["id"])
    samples = [
        {
            "sample_key": f"k{i}",
            "index": i,
            "prompt": "q" * (i + 1),
            "output": f"{i}",
            "reference": f"{i % 2}",
            "scores": {"exact_match": float(i % 2 == i), "bleu": "NaN" if i == 3 else 0.5},
            "primary_score": float(i % 2 == i),
            "extra": {"doc": {"subject": "alg" if i < 2 else "geo", "level": i}},
        }
        for i in range(n)
    ]
    events = [
        {"seq": 1, "type": "status", "status": "running"},
        {"seq": 2, "type": "samples", "samples": samples},
        {"seq": 3, "type": "metrics", "values": {"exact_match": 0.5}},
    ]
    if finish:
        events.append({"seq": 4, "type": "status", "status": "completed"})
    api.call("POST", f"/api/runs/{run}/events", json={"stream": "s", "events": events})
    return run


def test_a_scoring_writes_beside_the_runs_own_scores(api: Api) -> None:
    run = _run(api)
    sc = api.call("POST", "/api/scorings", 201,
                  json={"run_id": run, "name": "judge", "kind": "judge", "version": "3", "config": {"mode": "single"},
                        "judge": {"model": "m", "checkpoint": "c", "runtime": "python"}, "client_key": "ck"})  # fmt: skip
    assert sc["status"] == "running" and sc["experiment_id"] is not None and sc["judge"]["model"] == "m"
    again = api.call("POST", "/api/scorings", 200,
                     json={"run_id": run, "name": "judge", "kind": "judge", "version": "3", "client_key": "ck"})  # fmt: skip
    assert again["id"] == sc["id"]
    calls = [
        {"position": "single", "prompt": "judge k0", "raw_output": "good [[8]]", "verdict": "8", "score": 8.0,
         "rationale": "good", "judge": "m/c"},
    ]  # fmt: skip
    items = [
        {"sample_key": "k0", "scores": {"judge.score": 8.0}, "calls": calls},
        {"sample_key": "k1", "scores": {}, "calls": [{"position": "single", "raw_output": "no idea"}]},
        {"sample_key": "nope", "scores": {"judge.score": 1.0}},
    ]
    answer = api.call("POST", f"/api/scorings/{sc['id']}/results", json={"items": items})
    assert answer == {"applied": 1, "calls": 2, "missing": ["nope"]}
    # the same batch again is stored once
    api.call("POST", f"/api/scorings/{sc['id']}/results", json={"items": items})
    done = api.call("POST", f"/api/scorings/{sc['id']}/finish",
                    json={"metrics": {"judge.score": 8.0, "judge.score_stderr": 0.0, "t:judge.score": 8.0},
                          "higher_is_better": {"judge.score": True}, "counts": {"scored": 1, "unparsed": 1}})  # fmt: skip
    assert done["status"] == "completed" and done["counts"]["unparsed"] == 1
    assert done["metrics"] == {"judge.score": 8.0, "judge.score_stderr": 0.0, "t:judge.score": 8.0}
    samples = api.call("GET", f"/api/runs/{run}/samples")["items"]
    k0 = next(s for s in samples if s["sample_key"] == "k0")
    assert k0["scores"] == {"exact_match": 1.0, "bleu": 0.5, "judge.score": 8.0}
    k3 = next(s for s in samples if s["sample_key"] == "k3")
    assert k3["scores"]["bleu"] == "NaN" and "judge.score" not in k3["scores"]
    compare = api.call("GET", f"/api/experiments/{sc['experiment_id']}/compare")
    assert compare["runs"][0]["metrics"]["judge.score"] == 8.0
    assert compare["higher_is_better"]["judge.score"] is True
    stored = api.call("GET", f"/api/runs/{run}/judge-calls")
    assert stored["total"] == 2
    first = stored["items"][0]
    assert (first["sample_key"], first["verdict"], first["score"], first["scorer"]) == (
        "k0",
        "8",
        8.0,
        "judge",
    )
    unparsed = api.call("GET", f"/api/runs/{run}/judge-calls", params={"sample_key": "k1"})["items"][0]
    assert unparsed["verdict"] is None and unparsed["score"] is None and unparsed["raw_output"] == "no idea"
    listed = api.call("GET", "/api/scorings", params={"experiment_id": sc["experiment_id"]})
    assert [s["id"] for s in listed["items"]] == [sc["id"]]


def test_a_new_scoring_under_a_name_replaces_its_scores(api: Api) -> None:
    run = _run(api)
    first = api.call(
        "POST", "/api/scorings", 201, json={"run_id": run, "name": "em", "kind": "match", "version": "1"}
    )
    api.call("POST", f"/api/scorings/{first['id']}/results",
             json={"items": [{"sample_key": f"k{i}", "scores": {"em.old": 1.0}} for i in range(4)]})  # fmt: skip
    api.call("POST", f"/api/scorings/{first['id']}/finish", json={"metrics": {"em.old": 1.0}})
    second = api.call(
        "POST", "/api/scorings", 201, json={"run_id": run, "name": "em", "kind": "match", "version": "2"}
    )
    api.call("POST", f"/api/scorings/{second['id']}/results",
             json={"items": [{"sample_key": "k0", "scores": {"em.new": 0.0}}]})  # fmt: skip
    api.call("POST", f"/api/scorings/{second['id']}/finish", json={"metrics": {"em.new": 0.0}})
    scores = {s["sample_key"]: s["scores"] for s in api.call("GET", f"/api/runs/{run}/samples")["items"]}
    assert scores["k0"] == {"exact_match": 1.0, "bleu": 0.5, "em.new": 0.0}
    assert "em.old" not in scores["k1"]
    metrics = api.call("GET", f"/api/runs/{run}/metrics")["metrics"]
    assert "em.old" not in metrics and metrics["em.new"] == 0.0
    history = api.call("GET", "/api/scorings", params={"run_id": run, "name": "em"})["items"]
    assert [h["version"] for h in history] == ["1", "2"]
    assert history[0]["metrics"] == {} and history[1]["metrics"] == {"em.new": 0.0}


def test_refusals_name_what_is_wrong(api: Api) -> None:
    running = _run(api, finish=False)
    err = api.call(
        "POST", "/api/scorings", 409, json={"run_id": running, "name": "em", "kind": "match", "version": "1"}
    )
    assert "running" in err["error"]["message"]
    bad_name = api.call(
        "POST", "/api/scorings", 422, json={"run_id": running, "name": "1x", "kind": "match", "version": "1"}
    )
    assert bad_name["error"]["field"] == "body.name"
    api.call("POST", f"/api/runs/{running}/events",
             json={"stream": "s", "events": [{"seq": 9, "type": "status", "status": "completed"}]})  # fmt: skip
    sc = api.call(
        "POST", "/api/scorings", 201, json={"run_id": running, "name": "em", "kind": "match", "version": "1"}
    )
    wrong = api.call("POST", f"/api/scorings/{sc['id']}/results", 422,
                     json={"items": [{"sample_key": "k0", "scores": {"exact_match": 0.0}}]})  # fmt: skip
    assert "em.<metric>" in wrong["error"]["message"] and "exact_match" in wrong["error"]["message"]
    api.call("POST", f"/api/scorings/{sc['id']}/finish", 422, json={"metrics": {"acc": 1.0}})
    api.call("POST", f"/api/scorings/{sc['id']}/finish", json={"status": "failed", "error": "boom"})
    late = api.call("POST", f"/api/scorings/{sc['id']}/results", 409,
                    json={"items": [{"sample_key": "k0", "scores": {"em.x": 0.0}}]})  # fmt: skip
    assert "failed" in late["error"]["message"]
    assert api.call("GET", f"/api/scorings/{sc['id']}")["error"] == "boom"
    api.call("GET", "/api/scorings/99999999", 404)


def test_columns_read_scores_documents_and_lengths_in_pages(api: Api) -> None:
    run = _run(api, n=5)
    fields = ["score:exact_match", "score:bleu", "score:missing", "doc:subject", "doc:level", "prompt_chars",
              "output_chars", "task", "primary_score"]  # fmt: skip
    first = api.call("GET", f"/api/runs/{run}/columns", params={"fields": fields, "limit": 3})
    assert first["keys"] == ["k0", "k1", "k2"] and first["next"] == "k2"
    assert first["columns"]["doc:subject"] == ["alg", "alg", "geo"]
    assert first["columns"]["doc:level"] == [0, 1, 2]
    assert first["columns"]["prompt_chars"] == [1, 2, 3]
    assert first["columns"]["score:missing"] == [None, None, None]
    rest = api.call("GET", f"/api/runs/{run}/columns", params={"fields": fields, "after": "k2"})
    assert rest["keys"] == ["k3", "k4"] and rest["next"] is None
    assert rest["columns"]["score:bleu"] == ["NaN", 0.5]
    bad = api.call("GET", f"/api/runs/{run}/columns", 422, params={"fields": ["words"]})
    assert "unknown field 'words'" in bad["error"]["message"]
    api.call("GET", f"/api/runs/{run}/columns", 422, params={"fields": ['score:a"b']})
