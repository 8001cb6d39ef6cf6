"""Experiments without caps: a comparison read in pages, and 10,000 runs planned, submitted in pages,
compared and cancelled against a real server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from evalhub._frames import comparison


def _experiment(hub: Any, n: int) -> dict[str, Any]:
    runs = [{"name": f"r{i:03d}", "type": "offline_eval", "task": "t"} for i in range(n)]
    exp: dict[str, Any] = hub.client.post("/experiments", {"name": "paged", "runs": runs})
    return exp


def test_the_comparison_pages_through_every_run(hub: Any) -> None:
    exp = _experiment(hub, 5)
    first = hub.client.get(f"/experiments/{exp['id']}/compare", limit=2)
    assert (first["total"], first["limit"], first["offset"]) == (5, 2, 0)
    assert [r["name"] for r in first["runs"]] == ["r000", "r001"]
    last = hub.client.get(f"/experiments/{exp['id']}/compare", limit=2, offset=4)
    assert [r["name"] for r in last["runs"]] == ["r004"]
    merged = comparison(hub.client, exp["id"], page=2)
    assert [r["name"] for r in merged["runs"]] == [f"r{i:03d}" for i in range(5)]
    assert merged["total"] == 5
    assert hub.compare(exp["id"]).height == 5


@pytest.mark.slow
def test_ten_thousand_runs_are_planned_submitted_in_pages_compared_and_cancelled(
    hub: Any, tmp_path: Path
) -> None:
    from evalhub.orchestrator import plan, submit

    data = tmp_path / "cheap.jsonl"
    data.write_text("".join(json.dumps({"q": f"{i}+1=", "a": str(i + 1)}) + "\n" for i in range(3)))
    hub.register_family("scale", modality="llm")
    hub.register_model("scale", family="scale", runtime="hf")
    for i in range(50):  # 50 checkpoints x 2 runtimes x 100 tasks (few registry writes: each is a commit)
        hub.register_checkpoint("scale", f"c{i:04d}", uri=str(tmp_path / f"c{i}"), step=i)
    names = [f"cheap-{j}" for j in range(100)]
    for name in names:
        hub.register_task(name, data=str(data), prompt="{{q}}", target="{{a}}")
    spec = (
        f"name: big\nmodels: [{{model: scale, runtimes: [hf, openai]}}]\ntasks: [{', '.join(names)}]\n"
        "config: {limit: 3}\n"
    )
    the_plan = plan(hub, spec)
    assert len(the_plan.runs) == 10_000
    key = uuid.uuid4().hex
    experiment, jobs = submit(hub, the_plan, client_key=key)
    assert len(jobs) == 10_000 and len({j.run_id for j in jobs}) == 10_000
    exp = hub.experiment(experiment["id"])
    assert exp.info()["counts"]["queued"] == 10_000
    # the same submission again (a retry after a failure half-way) creates nothing twice
    again, jobs_again = submit(hub, the_plan, client_key=key)
    assert again["id"] == experiment["id"] and {j.run_id for j in jobs_again} == {j.run_id for j in jobs}
    assert hub.client.get("/runs", experiment_id=exp.id, limit=1)["total"] == 10_000
    page = hub.client.get(f"/experiments/{exp.id}/compare", limit=1000, offset=9_000)
    assert page["total"] == 10_000 and len(page["runs"]) == 1000
    table = exp.compare()
    assert table.height == 10_000 and table["run_id"].n_unique() == 10_000
    assert set(table["status"]) == {"queued"}
    exp.cancel()
    assert exp.info()["counts"] == {
        "queued": 0,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 10_000,
    }
    assert set(exp.compare()["status"]) == {"cancelled"}


def test_a_page_of_runs_sent_twice_is_stored_once(hub: Any) -> None:
    exp = _experiment(hub, 1)
    page = [{"name": f"p{i}", "type": "offline_eval", "task": "t"} for i in range(3)]
    first = hub.client.post(f"/experiments/{exp['id']}/runs", {"runs": page})
    second = hub.client.post(f"/experiments/{exp['id']}/runs", {"runs": page})
    assert first["created"] == 3 and second["created"] == 0
    assert [r["id"] for r in first["runs"]] == [r["id"] for r in second["runs"]]
    assert hub.client.get("/runs", experiment_id=exp["id"], limit=1)["total"] == 4


def test_two_runs_of_one_name_in_a_request_are_refused(hub: Any) -> None:
    from evalhub.errors import InvalidInput

    exp = _experiment(hub, 1)
    twice = [{"name": "same", "type": "offline_eval", "task": "t"}] * 2
    with pytest.raises(InvalidInput, match="two runs are named 'same'"):
        hub.client.post(f"/experiments/{exp['id']}/runs", {"runs": twice})
    with pytest.raises(InvalidInput, match="two runs are named 'same'"):
        hub.client.post("/experiments", {"name": "e", "runs": twice})
