"""Correct and remove, through the Python API against real servers (SQLite and MariaDB): PATCH of
descriptions, tags and metadata; DELETE that archives (hidden, restorable), purges, cascades, or is
refused naming the referrers; tokens that are listed, revoked and expire; every raw point of a series."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from evalhub.client import Client
from evalhub.errors import Conflict, NotFound, Unauthorized
from evalhub.hub import Hub

ADMIN = "admin-secret"


@pytest.fixture
def hub(any_server: Any) -> Hub:
    return Hub(Client(any_server.url, project=f"c{uuid.uuid4().hex[:8]}"))


def _registered(hub: Hub) -> dict[str, Any]:
    hub.register_family("fam", modality="llm")
    hub.register_model("m", family="fam", runtime="hf")
    ckpt = hub.register_checkpoint("m", "c1", uri="/w/c1", step=1)
    exp = hub.client.post(
        "/experiments",
        {
            "name": "e",
            "runs": [{"name": "r", "type": "offline_eval", "model": "m", "checkpoint": "c1", "task": "t"}],
        },
    )
    return {"checkpoint": ckpt["id"], "experiment": exp["id"], "run": exp["runs"][0]["id"]}


def test_patch_sets_a_description_and_merges_tags_and_metadata(hub: Hub) -> None:
    hub.register_family("fam", modality="llm", metadata={"owner": "me", "keep": 1})
    got = hub.patch("families", "fam", description="our family", tags={"team": "a", "stage": "dev"})
    assert got["description"] == "our family" and got["tags"] == {"team": "a", "stage": "dev"}
    got = hub.patch("families", "fam", tags={"stage": None, "new": True}, metadata={"owner": "you"})
    assert got["tags"] == {"team": "a", "new": True}  # a key set to None is removed
    assert got["metadata"] == {"owner": "you", "keep": 1} and got["description"] == "our family"
    run = hub.init_run("train", system_metrics=False)
    run.finish()
    assert hub.patch("runs", run.id, tags={"lr": 0.1})["tags"] == {"lr": 0.1}
    assert hub.run(run.id)["tags"] == {"lr": 0.1}


def test_a_referenced_checkpoint_is_refused_naming_the_runs_unless_cascading(hub: Hub) -> None:
    ids = _registered(hub)
    with pytest.raises(Conflict) as refused:
        hub.delete("checkpoints", ids["checkpoint"])
    assert f"runs {ids['run']}" in str(refused.value) and "cascade" in str(refused.value)
    gone = hub.delete("checkpoints", ids["checkpoint"], cascade=True)
    assert gone["cascaded"] == {"runs": [ids["run"]]} and not gone["purged"]
    assert hub.checkpoints(model="m").height == 0 and hub.runs(experiment_id=ids["experiment"]).height == 0
    assert hub.registry.archived("checkpoints")["name"].to_list() == ["c1"]
    back = hub.restore("checkpoints", ids["checkpoint"])
    assert back["archived_at"] is None
    assert hub.runs(experiment_id=ids["experiment"])["id"].to_list() == [ids["run"]]  # restored with it


def test_deleting_an_experiment_archives_its_runs_and_a_purge_removes_everything(hub: Hub) -> None:
    ids = _registered(hub)
    hub.client.post(
        f"/runs/{ids['run']}/events",
        {"stream": "s", "events": [
            {"seq": 1, "type": "series", "points": [{"key": "loss", "step": 1, "value": 1.0}]},
            {"seq": 2, "type": "samples", "samples": [{"sample_key": "k", "output": "o", "primary_score": 1.0}]},
        ]},
    )  # fmt: skip
    hub.delete("experiments", ids["experiment"])
    assert ids["experiment"] not in hub.experiments()["id"].to_list()
    assert hub.experiment(ids["experiment"]).info()["archived_at"] is not None
    hub.restore("experiments", ids["experiment"])
    assert hub.runs(experiment_id=ids["experiment"]).height == 1
    purged = hub.delete("experiments", ids["experiment"], purge=True)
    assert purged["purged"] and purged["cascaded"] == {"runs": [ids["run"]]}
    with pytest.raises(NotFound):
        hub.run(ids["run"])
    with pytest.raises(NotFound):
        hub.experiment(ids["experiment"]).info()
    # the checkpoint lost its last referrer: it may go now, for good
    assert hub.delete("checkpoints", ids["checkpoint"], purge=True)["purged"]


def test_an_archived_name_is_not_reused_silently(hub: Hub) -> None:
    hub.register_family("fam", modality="llm")
    hub.delete("families", "fam")
    with pytest.raises(Conflict, match="archived"):
        hub.register_family("fam", modality="llm")
    hub.delete("families", "fam", purge=True)
    assert hub.register_family("fam", modality="llm")["name"] == "fam"


def test_every_raw_point_of_a_long_series_comes_back(hub: Hub, tmp_path: Any) -> None:
    """200,000 points (several raw pages), some steps repeated and some values non-finite."""
    run = hub.init_run("long", system_metrics=False)
    expected = []
    for step in range(200_000):
        value = math.nan if step % 50_000 == 7 else (math.inf if step == 123_456 else step * 0.5)
        run.log({"x": value}, step=step)
        expected.append((step, value))
    run.log({"x": -1.0}, step=100_000)  # a second point at one step, across a page boundary's neighbourhood
    expected.append((100_000, -1.0))
    delivery = run.finish(timeout=300)
    assert delivery.dropped == 0
    frame = hub.series(run.id, "x", max_points=None)
    assert frame.height == 200_001
    assert frame["step"].to_list() == sorted(s for s, _ in expected)
    got = sorted(
        zip(frame["step"].to_list(), frame["value"].to_list(), strict=True), key=lambda p: (p[0], str(p[1]))
    )
    want = sorted(expected, key=lambda p: (p[0], str(p[1])))
    assert all(
        a[0] == b[0] and (a[1] == b[1] or (math.isnan(a[1]) and math.isnan(b[1])))
        for a, b in zip(got, want, strict=True)
    )
    window = hub.series(run.id, "x", max_points=None, min_step=99_999, max_step=100_001)
    assert window["step"].to_list() == [99_999, 100_000, 100_000, 100_001]
    path = hub.export_series(run.id, "x", tmp_path / "x.parquet")
    import polars as pl

    assert pl.read_parquet(path).height == 200_001
    assert (
        hub.series(run.id, "x", max_points=20_000)["step"].len() <= 20_000
    )  # bounded reads stay the default


def test_tokens_are_listed_revoked_and_expire(db_url: str, server_for: Callable[..., Any]) -> None:
    server = server_for(db_url, auth="token", admin_token=ADMIN)
    admin = Client(server.url, token=ADMIN)
    admin.post("/projects", {"name": "team"})
    ci = admin.post("/projects/team/tokens", {"name": "ci"})["token"]
    short = admin.post("/projects/team/tokens", {"name": "short", "expires_in_days": 2 / 86400})["token"]
    assert Hub(Client(server.url, token=ci)).families().height == 0
    listed = {t["name"]: t for t in admin.get("/projects/team/tokens")["items"]}
    assert set(listed) == {"ci", "short"} and listed["short"]["expires_at"] and not listed["ci"]["revoked_at"]
    assert "token" not in listed["ci"]  # shown once, at creation
    admin.request("DELETE", "/projects/team/tokens/ci")
    deadline = time.monotonic() + 15  # every server process drops its cached answer within seconds
    while True:
        try:
            Client(server.url, token=ci, retries=0).get("/families")
        except Unauthorized as exc:
            assert "revoked" in str(exc) and "'ci'" in str(exc)
            break
        assert time.monotonic() < deadline, "a revoked token still works"
        time.sleep(0.5)
    time.sleep(2.5)
    with pytest.raises(Unauthorized, match="expired"):
        Client(server.url, token=short, retries=0).get("/families")
    assert (
        httpx.get(f"{server.url}/api/families", headers={"Authorization": "Bearer wrong"}).status_code == 401
    )


def test_patches_at_once_from_four_clients_lose_no_key(db_url: str, server_for: Callable[..., Any]) -> None:
    """A merge PATCH reads the stored metadata and writes it back: several at once must not drop each
    other's keys (a cluster scheduler's beat and a user's tags, say), on SQLite and MariaDB."""
    from concurrent.futures import ThreadPoolExecutor

    server = server_for(db_url)
    hub = Hub(Client(server.url, project=f"p{uuid.uuid4().hex[:8]}"))
    run = hub.init_run("patched", system_metrics=False)
    run.finish()
    exp = hub.client.post("/experiments", {"name": f"e{uuid.uuid4().hex[:6]}", "spec": {}, "config": {},
                                           "client_key": uuid.uuid4().hex, "runs": []})  # fmt: skip
    hub.register_family("fam", modality="llm")

    def patch(side: str) -> None:
        client = Client(server.url, project=hub.project)
        for i in range(30):
            client.request("PATCH", f"/runs/{run.id}", json_body={"metadata": {f"{side}{i}": i}})
            client.request("PATCH", f"/experiments/{exp['id']}", json_body={"metadata": {f"{side}{i}": i}})
            client.request("PATCH", "/families/fam", json_body={"metadata": {f"{side}{i}": i}})
        client.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(patch, "abcd"))
    want = {f"{side}{i}": i for side in "abcd" for i in range(30)}
    assert hub.client.get(f"/runs/{run.id}")["metadata"] == want
    assert hub.client.get(f"/experiments/{exp['id']}")["metadata"] == want
    assert hub.client.get("/families/fam")["metadata"] == want
