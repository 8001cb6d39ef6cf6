"""Upgrades from a real database written by release 0.1.0 (schema 0003, tests/fixtures/release-0.1.0):
the server takes it to the newest schema on start, on SQLite and MariaDB, and every object written by
the old release reads back through today's API; a run left ``running`` by the old release is reaped
once its grace is over, like any run whose worker went silent."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _servers import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER

from evalhub.client import Client
from evalhub.hub import Hub

FIXTURES = Path(__file__).parent / "fixtures" / "release-0.1.0"
LEASE = 2.0


def _check(server: Any) -> None:
    from evalhub_server.migrate import head_revision

    hub = Hub(Client(server.url, project="legacy"))
    assert hub.client.get("/health")["schema"] == head_revision()
    assert hub.families()["name"].to_list() == ["tiny-gpt"]
    assert hub.checkpoints(model="tiny-gpt")["name"].to_list() == ["step-100", "step-200"]
    assert hub.model("tiny-gpt")["default_params"] == {"dtype": "float32"}
    assert hub.task("lmeval-gsm8k")["engine_config"] == {"task": "gsm8k"}
    train = hub.runs(type="training").row(0, named=True)
    assert train["status"] == "completed"
    keys = {k["key"]: k["count"] for k in hub.series_keys(train["id"]).iter_rows(named=True)}
    assert keys == {"loss": 3000, "grad_norm": 3000}
    loss = hub.series(train["id"], "loss", max_points=None)
    assert loss.height == 3000 and loss["value"][0] == 2.0
    assert hub.series(train["id"], "loss", max_points=100).height <= 100  # the old rollups still serve
    assert hub.metrics(train["id"]) == {"final_loss": 0.01}
    exp = hub.experiments().row(0, named=True)
    runs = {r["name"]: r for r in hub.runs(experiment_id=exp["id"]).iter_rows(named=True)}
    done = runs["tiny-gpt/step-100/hf/lmeval-gsm8k"]
    assert done["status"] == "completed" and runs["tiny-gpt/step-200/hf/lmeval-gsm8k"]["status"] == "failed"
    assert hub.samples(done["id"]).height == 20
    assert hub.artifacts(done["id"])["name"].to_list() == [
        "results.json"
    ]  # its bytes stayed with the old server
    page = hub.experiment(exp["id"]).samples(task="lmeval-gsm8k")
    assert page.height == 20
    # the old release's "running" run had no lease: it got one that lapses after the server's grace
    stuck = runs["running-one"]["id"]
    deadline = time.monotonic() + LEASE * 3 + 30
    while hub.run(stuck)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (hub.run(stuck)["status"], hub.run(stuck)["attempt"]) == ("queued", 2)
    # and today's writes work on the upgraded database
    run = hub.init_run("after-upgrade", system_metrics=False)
    run.log({"x": float("nan")}, step=1)
    run.finish()
    assert hub.run(run.id)["status"] == "completed"


def test_a_release_010_sqlite_database_upgrades(server_for: Callable[..., Any], tmp_path: Path) -> None:
    db = tmp_path / "old" / "evalhub.db"
    db.parent.mkdir()
    with gzip.open(FIXTURES / "evalhub-0003.db.gz", "rb") as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    _check(server_for(f"sqlite:///{db}", extra_args=["--lease", str(LEASE)]))


@pytest.mark.mysql
def test_a_release_010_mariadb_database_upgrades(mysql_url: str, server_for: Callable[..., Any]) -> None:
    name = mysql_url.rsplit("/", 1)[1].split("?")[0]
    dump = gzip.decompress((FIXTURES / "mariadb-0003.sql.gz").read_bytes())
    args = ["mariadb", "-h", MYSQL_HOST, "-P", str(MYSQL_PORT), "-u", MYSQL_USER, name]
    if MYSQL_PASSWORD:
        args.insert(1, f"-p{MYSQL_PASSWORD}")
    if shutil.which("mariadb") is None:
        pytest.skip("the mariadb command-line client is not installed")
    subprocess.run(args, input=dump, check=True, timeout=120)
    _check(server_for(mysql_url, extra_args=["--lease", str(LEASE)]))
