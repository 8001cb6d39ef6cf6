"""Every endpoint of docs/rest-api.md against a real server, on SQLite and on MariaDB."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from evalhub_server.migrate import head_revision

if TYPE_CHECKING:
    from _servers import ServerProcess


class Api:
    """httpx against one server, in one project of its own."""

    def __init__(self, url: str, project: str | None = None) -> None:
        self.project = project or f"p{uuid.uuid4().hex[:10]}"
        self.http = httpx.Client(base_url=url, headers={"X-Evalhub-Project": self.project}, timeout=60)

    def get(self, path: str, expect: int = 200, **params: Any) -> Any:
        r = self.http.get(path, params=params)
        assert r.status_code == expect, r.text
        return r.json()

    def post(self, path: str, body: Any = None, status: int = 201) -> Any:
        r = self.http.post(path, json=body)
        assert r.status_code == status, r.text
        return r.json()

    def events(self, run_id: int, events: list[dict[str, Any]], stream: str = "s1") -> Any:
        return self.post(f"/api/runs/{run_id}/events", {"stream": stream, "events": events}, status=200)


@pytest.fixture
def api(any_server: ServerProcess) -> Any:
    a = Api(any_server.url)
    yield a
    a.http.close()


def registry(api: Api) -> None:
    api.post("/api/families", {"name": "tiny-gpt", "modality": "llm", "description": "tiny"})
    api.post(
        "/api/models", {"name": "tiny-hf", "family": "tiny-gpt", "runtime": "hf", "default_params": {"a": 1}}
    )
    for step in (300, 100, 200):
        api.post(
            "/api/checkpoints",
            {"model": "tiny-hf", "name": f"step-{step}", "uri": f"/w/{step}", "step": step},
        )


def experiment(
    api: Api, n_runs: int = 2, task: str = "arith", key: str | None = None, status: int = 201
) -> Any:
    registry(api) if not api.get("/api/families")["total"] else None
    runs = [
        {
            "name": f"r{i}",
            "type": "inference",
            "model": "tiny-hf",
            "checkpoint": f"step-{100 * (i + 1)}",
            "task": task,
        }
        for i in range(n_runs)
    ]
    return api.post(
        "/api/experiments",
        {"name": "exp", "spec": {"name": "exp"}, "spec_yaml": "name: exp\n", "client_key": key, "runs": runs},
        status=status,
    )


def test_health_names_backend_and_schema(api: Api, any_server: ServerProcess) -> None:
    h = api.get("/api/health")
    assert h["status"] == "ok" and h["auth"] is False and h["schema"] == head_revision()
    assert h["db"] == ("sqlite" if any_server.db_url.startswith("sqlite") else "mysql")


def test_family_round_trip_and_filter(api: Api) -> None:
    f = api.post("/api/families", {"name": "fam", "modality": "t2i", "metadata": {"k": [1, 2]}})
    assert f["project"] == api.project and f["metadata"] == {"k": [1, 2]} and f["created_at"].endswith("Z")
    assert api.get(f"/api/families/{f['id']}")["name"] == "fam"
    assert api.get("/api/families/fam")["modality"] == "t2i"
    assert api.get("/api/families", modality="llm")["total"] == 0
    assert api.get("/api/families", modality="t2i")["items"][0]["id"] == f["id"]


def test_duplicate_name_is_conflict(api: Api) -> None:
    api.post("/api/families", {"name": "dup"})
    err = api.post("/api/families", {"name": "dup"}, status=409)["error"]
    assert err["code"] == "conflict" and "dup" in err["message"]


def test_model_needs_a_known_family(api: Api) -> None:
    err = api.post("/api/models", {"name": "m", "family": "nope", "runtime": "hf"}, status=404)["error"]
    assert err["code"] == "not_found" and "nope" in err["message"] and err["field"] == "body.family"


def test_model_round_trip_and_filters(api: Api) -> None:
    registry(api)
    m = api.get("/api/models/tiny-hf")
    assert m["family"] == "tiny-gpt" and m["runtime"] == "hf" and m["default_params"] == {"a": 1}
    assert api.get(f"/api/models/{m['id']}")["name"] == "tiny-hf"
    assert api.get("/api/models", family="tiny-gpt", runtime="hf")["total"] == 1
    assert api.get("/api/models", runtime="vllm")["total"] == 0


def test_checkpoints_sorted_by_step_and_found_by_name(api: Api) -> None:
    registry(api)
    page = api.get("/api/checkpoints", model="tiny-hf")
    assert [c["step"] for c in page["items"]] == [100, 200, 300]
    one = api.get("/api/checkpoints", model="tiny-hf", name="step-200")["items"]
    assert len(one) == 1 and one[0]["uri"] == "/w/200" and one[0]["model"] == "tiny-hf"
    assert api.get(f"/api/checkpoints/{one[0]['id']}")["name"] == "step-200"


def test_checkpoint_names_are_unique_per_model(api: Api) -> None:
    registry(api)
    api.post("/api/checkpoints", {"model": "tiny-hf", "name": "step-100", "uri": "/x"}, status=409)
    api.post("/api/models", {"name": "other", "family": "tiny-gpt", "runtime": "vllm"})
    api.post("/api/checkpoints", {"model": "other", "name": "step-100", "uri": "/x"})


def test_dataset_task_benchmark_round_trip(api: Api) -> None:
    d = api.post(
        "/api/datasets",
        {"name": "arith", "version": "2", "uri": "/d.jsonl", "schema": {"q": "str"}, "num_rows": 12},
    )
    assert d["num_rows"] == 12 and d["schema"] == {"q": "str"}
    config = {
        "task": "arith-add",
        "dataset_path": "json",
        "metric_list": [{"metric": "exact_match"}],
        "doc_to_choice": None,
    }
    t = api.post(
        "/api/tasks",
        {
            "name": "arith-add",
            "type": "qa",
            "dataset": "arith",
            "engine_config": config,
            "metrics": ["exact_match"],
        },
    )
    assert t["engine_config"] == config and t["dataset"] == "arith" and t["engine"] == "lm_eval"
    assert api.get("/api/tasks", type="qa")["items"][0]["name"] == "arith-add"
    b = api.post(
        "/api/benchmarks", {"name": "bench", "tasks": ["arith-add", "gsm8k"], "config": {"limit": 5}}
    )
    assert api.get(f"/api/benchmarks/{b['id']}")["tasks"] == ["arith-add", "gsm8k"]
    assert api.get("/api/datasets/arith")["version"] == "2"


def test_run_resolves_checkpoint_and_step(api: Api) -> None:
    registry(api)
    run = api.post(
        "/api/runs",
        {"name": "r", "type": "offline_eval", "model": "tiny-hf", "checkpoint": "step-200", "task": "x"},
    )
    assert run["status"] == "queued" and run["step"] == 200 and run["checkpoint_id"] is not None
    assert run["attempt"] == 1 and run["progress"] == {"done": 0, "total": None}
    by_id = api.post("/api/runs", {"name": "r2", "checkpoint_id": run["checkpoint_id"]})
    assert by_id["model"] == "tiny-hf" and by_id["checkpoint"] == "step-200"


def test_run_with_unknown_model_or_checkpoint_is_404(api: Api) -> None:
    registry(api)
    api.post("/api/runs", {"name": "r", "model": "ghost"}, status=404)
    err = api.post("/api/runs", {"name": "r", "model": "tiny-hf", "checkpoint": "step-9"}, status=404)[
        "error"
    ]
    assert "step-9" in err["message"] and err["field"] == "body.checkpoint"
    api.post("/api/runs", {"name": "r", "checkpoint": "step-100"}, status=422)
    api.post("/api/runs", {"name": "r", "experiment_id": 999999}, status=404)


def test_experiment_with_runs_in_one_transaction(api: Api) -> None:
    exp = experiment(api, n_runs=3)
    assert [r["name"] for r in exp["runs"]] == ["r0", "r1", "r2"]
    assert exp["status"] == "queued" and exp["counts"]["queued"] == 3
    assert api.get(f"/api/experiments/{exp['id']}/runs")["total"] == 3
    # a bad run refuses the whole experiment: nothing is half-created
    bad = {"name": "bad", "runs": [{"name": "ok", "model": "tiny-hf"}, {"name": "no", "model": "ghost"}]}
    err = api.post("/api/experiments", bad, status=404)["error"]
    assert err["field"] == "body.runs.1.model"
    assert api.get("/api/experiments")["total"] == 1


def test_experiment_runs_filter_by_status(api: Api) -> None:
    exp = experiment(api, n_runs=3)
    first = exp["runs"][0]["id"]
    api.post(f"/api/runs/{first}/status", {"status": "running"}, 200)
    api.post(f"/api/runs/{first}/status", {"status": "failed", "error": "boom"}, 200)
    failed = api.get(f"/api/experiments/{exp['id']}/runs", status="failed")
    assert [r["id"] for r in failed["items"]] == [first] and failed["items"][0]["error"] == "boom"
    assert api.get(f"/api/experiments/{exp['id']}/runs", status="queued")["total"] == 2


def test_same_client_key_returns_the_first_experiment(api: Api) -> None:
    first = experiment(api, key="k-1")
    again = experiment(api, key="k-1", status=200)
    assert again["id"] == first["id"] and len(again["runs"]) == 2
    assert api.get("/api/runs")["total"] == 2


def test_experiment_status_is_derived(api: Api) -> None:
    exp = experiment(api, n_runs=2)
    a, b = (r["id"] for r in exp["runs"])
    api.post(f"/api/runs/{a}/status", {"status": "running"}, status=200)
    assert api.get(f"/api/experiments/{exp['id']}")["status"] == "running"
    api.post(f"/api/runs/{a}/status", {"status": "failed", "error": "boom"}, status=200)
    assert api.get(f"/api/experiments/{exp['id']}")["status"] == "queued"
    api.post(f"/api/runs/{b}/status", {"status": "running"}, status=200)
    api.post(f"/api/runs/{b}/status", {"status": "completed"}, status=200)
    got = api.get(f"/api/experiments/{exp['id']}")
    assert got["status"] == "failed" and got["counts"] == {
        "queued": 0, "running": 0, "completed": 1, "failed": 1, "cancelled": 0
    }  # fmt: skip
    assert api.get("/api/experiments", status="failed")["total"] == 1
    assert api.get("/api/experiments", status="running")["total"] == 0


def test_experiments_list_newest_first(api: Api) -> None:
    ids = [experiment(api)["id"] for _ in range(3)]
    assert [e["id"] for e in api.get("/api/experiments")["items"]] == ids[::-1]


def test_legal_status_transitions_and_requeue(api: Api) -> None:
    run = api.post("/api/runs", {"name": "r"})
    rid = run["id"]
    r = api.post(
        f"/api/runs/{rid}/status",
        {"status": "running", "worker": {"node": "n1", "pid": 7, "gpu": None}},
        status=200,
    )
    assert r["status"] == "running" and r["started_at"] and r["worker"]["node"] == "n1"
    err = api.post(f"/api/runs/{rid}/status", {"status": "queued"}, status=409)["error"]
    assert "'running' -> 'queued'" in err["message"]  # a re-queue is the server's decision, not a request
    r = api.post(f"/api/runs/{rid}/status", {"status": "completed"}, status=200)
    assert r["status"] == "completed" and r["ended_at"]


def test_illegal_transition_is_409_naming_both_states(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    err = api.post(f"/api/runs/{rid}/status", {"status": "completed"}, status=409)["error"]
    assert "queued" in err["message"] and "completed" in err["message"]
    api.post(f"/api/runs/{rid}/status", {"status": "cancelled"}, status=200)
    err = api.post(f"/api/runs/{rid}/status", {"status": "running"}, status=409)["error"]
    assert "cancelled" in err["message"] and "running" in err["message"]


def test_unknown_status_is_422(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    err = api.post(f"/api/runs/{rid}/status", {"status": "done"}, status=422)["error"]
    assert err["field"] == "body.status"


def test_cancel_experiment_cancels_queued_and_running_only(api: Api) -> None:
    exp = experiment(api, n_runs=3)
    a, b, _ = (r["id"] for r in exp["runs"])
    api.post(f"/api/runs/{a}/status", {"status": "running"}, status=200)
    api.post(f"/api/runs/{b}/status", {"status": "failed"}, status=200)
    got = api.post(f"/api/experiments/{exp['id']}/cancel", status=200)
    assert got["counts"]["cancelled"] == 2 and got["counts"]["failed"] == 1
    answer = api.events(a, [{"seq": 1, "type": "progress", "done": 1, "total": 2}])
    assert answer["run_status"] == "cancelled"


def test_cancel_run(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    assert api.post(f"/api/runs/{rid}/cancel", status=200)["status"] == "cancelled"
    assert api.post(f"/api/runs/{rid}/cancel", status=200)["status"] == "cancelled"
    done = api.post("/api/runs", {"name": "d"})["id"]
    api.post(f"/api/runs/{done}/status", {"status": "running"}, status=200)
    api.post(f"/api/runs/{done}/status", {"status": "completed"}, status=200)
    api.post(f"/api/runs/{done}/cancel", status=409)


ALL_EVENTS = [
    {
        "seq": 1,
        "type": "status",
        "status": "running",
        "worker": {"node": "n", "pid": 1, "gpu": None},
        "error": None,
    },
    {"seq": 2, "type": "progress", "done": 10, "total": 200},
    {
        "seq": 3,
        "type": "series",
        "points": [{"key": "loss", "step": 10, "value": 1.9, "wall_time": 1764165900.1}],
    },
    {"seq": 4, "type": "metrics", "values": {"exact_match": 0.42, "exact_match_stderr": 0.03}},
    {
        "seq": 5,
        "type": "samples",
        "samples": [
            {
                "sample_key": "k1",
                "index": 0,
                "prompt": "1+1=",
                "reference": "2",
                "output": "2",
                "scores": {"em": 1.0},
                "primary_score": 1.0,
                "latency_ms": 3.5,
                "tokens_in": 4,
                "tokens_out": 1,
                "extra": {"x": 1},
            },
        ],
    },
    {"seq": 6, "type": "log", "lines": [{"level": "info", "message": "hello", "wall_time": 1764165900.2}]},
    {"seq": 7, "type": "artifact", "name": "results.json", "uri": "file:///tmp/results.json"},
]


def test_every_event_type_is_applied(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    answer = api.events(rid, ALL_EVENTS)
    assert answer == {
        "applied": 7,
        "duplicates": 0,
        "rejected": [],
        "run_status": "running",
        "attempt": 1,
        "lease_s": 60.0,
    }
    run = api.get(f"/api/runs/{rid}")
    assert run["progress"] == {"done": 10, "total": 200} and run["worker"]["node"] == "n"
    assert api.get(f"/api/runs/{rid}/metrics")["metrics"] == {"exact_match": 0.42, "exact_match_stderr": 0.03}
    keys = api.get(f"/api/runs/{rid}/series/keys")["keys"]
    assert keys == [
        {"key": "loss", "count": 1, "last_step": 10, "last_value": 1.9, "min_step": 10, "max_step": 10}
    ]
    sample = api.get(f"/api/runs/{rid}/samples")["items"][0]
    assert sample["sample_key"] == "k1" and sample["scores"] == {"em": 1.0} and sample["extra"] == {"x": 1}
    assert api.get(f"/api/runs/{rid}/logs")["items"][0]["message"] == "hello"
    assert api.get(f"/api/runs/{rid}/artifacts")["items"][0]["uri"] == "file:///tmp/results.json"


def test_same_batch_twice_is_stored_once(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    batch = [
        {
            "seq": 1,
            "type": "series",
            "points": [{"key": "loss", "step": s, "value": float(s)} for s in range(50)],
        },
        {"seq": 2, "type": "log", "lines": [{"message": "x"}]},
    ]
    assert api.events(rid, batch)["applied"] == 2
    again = api.events(rid, batch)
    assert again["applied"] == 0 and again["duplicates"] == 2
    assert api.get(f"/api/runs/{rid}/series", key="loss")["total"] == 50
    assert api.get(f"/api/runs/{rid}/logs")["total"] == 1
    # a re-batch overlapping the old high-water mark applies only the new event
    more = [*batch, {"seq": 3, "type": "log", "lines": [{"message": "y"}]}]
    answer = api.events(rid, more)
    assert (answer["applied"], answer["duplicates"], answer["rejected"]) == (1, 2, [])
    assert answer["run_status"] == "queued"
    # another stream of the same run has its own sequence numbers
    assert api.events(rid, batch, stream="s2")["applied"] == 2


def test_illegal_status_event_is_rejected_and_the_rest_applies(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    answer = api.events(
        rid,
        [
            {"seq": 1, "type": "status", "status": "completed"},
            {"seq": 2, "type": "metrics", "values": {"acc": 0.5}},
        ],
    )
    assert (
        answer["applied"] == 1
        and answer["rejected"][0]["seq"] == 1
        and "queued" in answer["rejected"][0]["error"]
    )
    assert answer["run_status"] == "queued"
    assert api.get(f"/api/runs/{rid}/metrics")["metrics"] == {"acc": 0.5}
    # the stream is not jammed: the rejected seq is behind the high-water mark now
    assert api.events(rid, [{"seq": 3, "type": "status", "status": "running"}])["run_status"] == "running"


def test_metrics_and_samples_replace_by_key(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    api.events(rid, [{"seq": 1, "type": "metrics", "values": {"acc": 0.1}}])
    api.events(rid, [{"seq": 2, "type": "metrics", "values": {"acc": 0.9}}])
    assert api.get(f"/api/runs/{rid}/metrics")["metrics"] == {"acc": 0.9}
    s = {"sample_key": "k", "index": 0, "output": "a", "scores": {}}
    api.events(rid, [{"seq": 1, "type": "samples", "samples": [s]}], stream="attempt-1")
    api.events(rid, [{"seq": 1, "type": "samples", "samples": [{**s, "output": "b"}]}], stream="attempt-2")
    items = api.get(f"/api/runs/{rid}/samples")["items"]
    assert [i["output"] for i in items] == ["b"]


def test_out_of_order_steps_are_read_sorted(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    steps = [5, 1, 9, 3, 7]
    api.events(
        rid,
        [{"seq": 1, "type": "series", "points": [{"key": "l", "step": s, "value": s / 10} for s in steps]}],
    )
    api.events(rid, [{"seq": 2, "type": "series", "points": [{"key": "l", "step": 0, "value": 0.0}]}])
    got = api.get(f"/api/runs/{rid}/series", key="l")
    assert [p["step"] for p in got["points"]] == [0, 1, 3, 5, 7, 9] and got["downsampled"] is False
    assert all(p["min"] == p["max"] == p["value"] for p in got["points"])
    key = api.get(f"/api/runs/{rid}/series/keys")["keys"][0]
    assert (key["count"], key["last_step"], key["last_value"], key["min_step"], key["max_step"]) == (
        6,
        9,
        0.9,
        0,
        9,
    )


def _load_shuffled(api: Api, rid: int, raw: list[tuple[int, float]]) -> None:
    for i in range(0, len(raw), 2500):
        pts = [{"key": "loss", "step": s, "value": v} for s, v in raw[i : i + 2500]]
        api.events(rid, [{"seq": i + 1, "type": "series", "points": pts}])


def _raw_points(n: int = 10_000) -> list[tuple[int, float]]:
    import random

    rng = random.Random(7)
    raw = [(s, rng.uniform(-5, 5)) for s in range(0, 3 * n, 3)]  # steps 0..3n-3, every third
    raw += [(s, rng.uniform(-5, 5)) for s in range(0, 3 * n, 997)]  # a few steps written twice
    rng.shuffle(raw)
    return raw


def _check_buckets(
    points: list[dict[str, Any]], raw: list[tuple[int, float]], latest: dict[int, float]
) -> None:
    """Each returned point closes a bucket: the raw points after the previous one, up to its step."""
    prev = None
    for p in points:
        inside = [v for s, v in raw if (prev is None or s > prev) and s <= p["step"]]
        assert inside, p
        assert (p["min"], p["max"]) == (min(inside), max(inside))
        assert p["value"] == latest[p["step"]]
        prev = p["step"]
    assert prev == max(s for s, _ in raw)


def test_downsampled_buckets_match_the_raw_points(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    raw = _raw_points()
    _load_shuffled(api, rid, raw)
    latest: dict[int, float] = {}
    for i in range(0, len(raw), 2500):  # the point written last at a step is its value
        for s, v in raw[i : i + 2500]:
            latest[s] = v
    for n in (100, 1000, 7):
        got = api.get(f"/api/runs/{rid}/series", key="loss", max_points=n)
        assert got["total"] == len(raw) and got["downsampled"] is True
        assert n // 2 <= len(got["points"]) <= n
        assert [p["step"] for p in got["points"]] == sorted(p["step"] for p in got["points"])
        _check_buckets(got["points"], raw, latest)


def test_downsampled_step_range_uses_equal_buckets(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    raw = _raw_points(3000)
    _load_shuffled(api, rid, raw)
    latest: dict[int, float] = {}
    for s, v in raw:
        latest[s] = v
    lo, hi, n = 300, 8000, 50
    got = api.get(f"/api/runs/{rid}/series", key="loss", max_points=n, min_step=lo, max_step=hi)
    inside = [(s, v) for s, v in raw if lo <= s <= hi]
    assert got["total"] == len(inside) and got["downsampled"] is True
    buckets: dict[int, list[tuple[int, float]]] = {}
    for s, v in inside:
        buckets.setdefault((s - lo) * n // (hi - lo + 1), []).append((s, v))
    assert [(p["step"], p["min"], p["max"]) for p in got["points"]] == [
        (max(s for s, _ in b), min(v for _, v in b), max(v for _, v in b)) for _, b in sorted(buckets.items())
    ]


def test_series_step_range_and_max_points_limit(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    api.events(
        rid,
        [{"seq": 1, "type": "series", "points": [{"key": "l", "step": s, "value": 1.0} for s in range(100)]}],
    )
    got = api.get(f"/api/runs/{rid}/series", key="l", min_step=10, max_step=19)
    assert got["total"] == 10 and [p["step"] for p in got["points"]] == list(range(10, 20))
    assert api.get(f"/api/runs/{rid}/series", key="nope") == {
        "key": "nope",
        "total": 0,
        "downsampled": False,
        "points": [],
    }
    err = api.get(f"/api/runs/{rid}/series", expect=422, key="l", max_points=100_001)["error"]
    assert err["field"] == "query.max_points"


def test_series_of_several_runs(api: Api) -> None:
    ids = [api.post("/api/runs", {"name": f"r{i}"})["id"] for i in range(2)]
    for i, rid in enumerate(ids):
        api.events(
            rid,
            [
                {
                    "seq": 1,
                    "type": "series",
                    "points": [{"key": "l", "step": s, "value": s * i} for s in range(5)],
                }
            ],
        )
    got = api.get("/api/series", run_ids=",".join(map(str, ids)), key="l", max_points=3)["series"]
    assert [g["run_id"] for g in got] == ids and all(g["downsampled"] and len(g["points"]) == 3 for g in got)
    assert got[1]["points"][-1] == {
        "step": 4,
        "value": 4.0,
        "min": 4.0,
        "max": 4.0,
        "wall_time": got[1]["points"][-1]["wall_time"],
    }


def _samples(api: Api, rid: int, outputs: list[str], scores: list[float]) -> None:
    samples = [
        {"sample_key": f"k{i}", "index": i, "prompt": f"q{i}?", "reference": f"a{i}", "output": o, "scores": {"em": sc},
         "primary_score": sc}
        for i, (o, sc) in enumerate(zip(outputs, scores, strict=True))
    ]  # fmt: skip
    api.events(rid, [{"seq": 1, "type": "samples", "samples": samples}])


def test_aligned_samples_filters(api: Api) -> None:
    exp = experiment(api, n_runs=2)
    a, b = (r["id"] for r in exp["runs"])
    _samples(api, a, ["a0", "x", "x", "a3"], [1, 0, 0, 1])
    _samples(api, b, ["a0", "a1", "y", "zz"], [1, 1, 0, 0])
    path = f"/api/experiments/{exp['id']}/samples"
    every = api.get(path)
    assert every["task"] == "arith" and every["total"] == 4 and [r["run_id"] for r in every["runs"]] == [a, b]
    first = every["items"][0]
    assert first["prompt"] == "q0?" and first["outputs"][str(b)]["output"] == "a0"
    assert [i["sample_key"] for i in api.get(path, filter="disagree")["items"]] == ["k1", "k2", "k3"]
    assert [i["sample_key"] for i in api.get(path, filter="any_wrong")["items"]] == ["k1", "k2", "k3"]
    assert [i["sample_key"] for i in api.get(path, filter="all_wrong")["items"]] == ["k2"]
    assert [i["sample_key"] for i in api.get(path, q="zz")["items"]] == ["k3"]
    paged = api.get(path, limit=2, offset=1)
    assert paged["total"] == 4 and [i["sample_key"] for i in paged["items"]] == ["k1", "k2"]
    api.get(path, expect=422, filter="bogus")


def test_aligned_samples_need_task_when_several(api: Api) -> None:
    registry(api)
    runs = [{"name": "a", "task": "t1"}, {"name": "b", "task": "t2"}]
    exp = api.post("/api/experiments", {"name": "two", "runs": runs})
    err = api.get(f"/api/experiments/{exp['id']}/samples", expect=422)["error"]
    assert "t1" in err["message"] and err["field"] == "query.task"
    assert api.get(f"/api/experiments/{exp['id']}/samples", task="t2")["total"] == 0


def test_compare_has_a_row_per_run(api: Api) -> None:
    exp = experiment(api, n_runs=2)
    a, b = (r["id"] for r in exp["runs"])
    api.events(a, [{"seq": 1, "type": "metrics", "values": {"acc": 0.5}}])
    api.events(b, [{"seq": 1, "type": "metrics", "values": {"acc": 0.7, "f1": 0.1}}])
    got = api.get(f"/api/experiments/{exp['id']}/compare")
    assert got["metrics"] == ["acc", "f1"] and got["experiment_id"] == exp["id"]
    assert [(r["run_id"], r["step"], r["metrics"]) for r in got["runs"]] == [
        (a, 100, {"acc": 0.5}),
        (b, 200, {"acc": 0.7, "f1": 0.1}),
    ]


def test_runs_list_filters(api: Api) -> None:
    exp = experiment(api, n_runs=2)
    api.post("/api/runs", {"name": "train", "type": "training"})
    assert api.get("/api/runs", experiment_id=exp["id"])["total"] == 2
    assert api.get("/api/runs", type="training")["items"][0]["name"] == "train"
    assert api.get("/api/runs", status="queued", task="arith")["total"] == 2


def test_artifacts_put_list_get(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    data = b"\x00\x01binary" * 1000
    r = api.http.put(f"/api/runs/{rid}/artifacts/model.bin", content=data)
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["size"] == len(data) and len(meta["sha256"]) == 64 and meta["uri"].startswith("file://")
    assert api.http.get(f"/api/runs/{rid}/artifacts/model.bin").content == data
    assert api.get(f"/api/runs/{rid}/artifacts")["items"][0]["name"] == "model.bin"
    assert api.http.put(f"/api/runs/{rid}/artifacts/.hidden", content=b"x").status_code == 422
    assert api.http.get(f"/api/runs/{rid}/artifacts/ghost").status_code == 404


def test_logs_are_paged_oldest_first(api: Api) -> None:
    rid = api.post("/api/runs", {"name": "r"})["id"]
    api.events(rid, [{"seq": 1, "type": "log", "lines": [{"message": f"m{i}"} for i in range(5)]}])
    page = api.get(f"/api/runs/{rid}/logs", limit=2, offset=2)
    assert page["total"] == 5 and [x["message"] for x in page["items"]] == ["m2", "m3"]
