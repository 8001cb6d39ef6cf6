"""Schedules against a real server (SQLite and MariaDB): kept, listed, claimed tick by tick with a
compare-and-set, missed ticks run once, a keeper's crash between claim and report never runs a tick
twice. Each tick here is submitted as a real experiment on the server (planned and submitted, not
executed: the keeper on a Ray cluster is tested in tests/test_cluster_scheduler.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _evalsetup import register_plugin, write_plugins

from evalhub.errors import Conflict, InvalidValue, NotFound, SpecError
from evalhub.execution.schedules import client_key, period_s, run_due, tick_after, tick_spec


@pytest.fixture
def project(db_url: str, server_for: Any, tmp_path: Path) -> Any:
    import evalhub
    from evalhub import tiny

    server = server_for(db_url)
    hub = evalhub.connect(server.url, project="sched")
    tiny.write_tasks(tmp_path, n=10)
    tiny.register_tasks(hub, tmp_path)
    register_plugin(hub, write_plugins(tmp_path / "plugins"), "fast", "Slow", delay=0.0)
    yield hub
    hub.close()


SPEC = {"name": "nightly", "models": [{"model": "fast"}], "tasks": ["arith-add"], "config": {"limit": 3}}


def submitter(hub: Any, made: list[tuple[int, float]]) -> Any:
    """A tick as a real experiment on the server, under the tick's client key (not executed)."""
    from evalhub.orchestrator import plan, submit

    def run(schedule: dict[str, Any], tick: float) -> int:
        experiment, _ = submit(
            hub, plan(hub, tick_spec(hub.client, schedule, tick)), client_key(schedule, tick)
        )
        made.append((int(experiment["id"]), tick))
        return int(experiment["id"])

    return run


def test_periods_and_the_next_tick_on_the_grid() -> None:
    assert period_s("90s") == 90 and period_s("15m") == 900 and period_s("6h") == 21600 and period_s(30) == 30
    with pytest.raises(InvalidValue, match="not a period"):
        period_s("every tuesday")
    with pytest.raises(InvalidValue, match="shorter than a second"):
        period_s(0.5)
    s = {"every_s": 10.0, "next_at": 100.0}
    assert tick_after(s, 100.0) == 110.0 and tick_after(s, 99.0) == 100.0 and tick_after(s, 1234.5) == 1240.0
    cron = {"cron": "*/5 * * * *", "next_at": 0.0}
    assert tick_after(cron, 1_700_000_000.0) == 1_700_000_100.0  # 22:15:00 UTC after 22:13:20
    assert tick_after(cron, 1_700_000_100.0) == 1_700_000_400.0  # later than now, never now
    with pytest.raises(InvalidValue, match="not a cron expression"):
        tick_after({"cron": "every day", "next_at": 0.0}, 0.0)


def test_a_schedule_is_kept_listed_and_refused_when_bad(project: Any) -> None:
    hub = project
    made = hub.schedule(SPEC, every="1h", keep=False)
    assert made["name"] == "nightly" and made["every_s"] == 3600 and made["ticks_run"] == 0
    assert made["spec"]["tasks"] == ["arith-add"]
    frame = hub.schedules()
    assert frame["name"].to_list() == ["nightly"] and "spec" not in frame.columns
    with pytest.raises(Conflict, match="already has a schedule named 'nightly'"):
        hub.schedule(SPEC, every="1h", keep=False)
    with pytest.raises(SpecError, match="nope"):  # validated against the registry now, not at a tick
        hub.schedule({**SPEC, "name": "bad", "models": [{"model": "nope"}]}, every=60, keep=False)
    with pytest.raises(InvalidValue, match="one of every="):
        hub.schedule(SPEC, name="none", keep=False)
    with pytest.raises(InvalidValue, match="one of every="):
        hub.schedule(SPEC, name="both", every=60, cron="* * * * *", keep=False)
    r = httpx.post(f"{hub.url}/api/schedules", headers={"X-Evalhub-Project": "sched"},
                   json={"name": "x", "spec": {}, "every_s": 60, "cron": "* * * * *", "next_at": 1})  # fmt: skip
    assert r.status_code == 422 and "exactly one of every_s, cron and on_checkpoint" in r.text
    hub.unschedule("nightly")
    assert hub.schedules().height == 0


def test_each_tick_runs_once_missed_ticks_once_and_a_crashed_claim_never_twice(project: Any) -> None:
    hub = project
    made: list[tuple[int, float]] = []
    submit = submitter(hub, made)
    # ten ticks went by with no keeper (the server's clock decides what is due): one run, for the first
    t0 = time.time() - 95.0  # 5 s before the next tick is due: room for a loaded machine
    sid = hub.schedule(SPEC, every=10, start_at=t0, keep=False)["id"]
    ran = run_due(hub.client, submit)
    assert [r["tick"] for r in ran] == [t0] and len(made) == 1
    after = hub.schedules_api.get(sid)
    assert (
        after["next_at"] == t0 + 100 and after["ticks_run"] == 1 and after["last_experiment_id"] == made[0][0]
    )
    exp = hub.experiment(made[0][0]).info()
    assert exp["name"].startswith("nightly @ ") and sum(exp["counts"].values()) == 1
    assert run_due(hub.client, submit) == []  # the next tick is not due yet

    # a keeper that claimed the next tick and submitted it, then died before reporting it
    time.sleep(max(0.0, t0 + 100 - time.time()) + 0.2)
    tick = t0 + 100
    hub.client.post(f"/schedules/{sid}/claim", {"tick": tick, "next_at": t0 + 110})
    first = submit(hub.schedules_api.get(sid), tick)
    ran = run_due(hub.client, submit)  # the next keeper finds the tick pending and submits it again
    assert [(r["tick"], r["experiment_id"]) for r in ran] == [(tick, first)]  # the same experiment
    state = hub.schedules_api.get(sid)
    assert state["pending_tick"] is None and state["ticks_run"] == 2 and state["last_experiment_id"] == first
    assert state["next_at"] == t0 + 110
    experiments = hub.client.get("/experiments", limit=100)["items"]
    assert len([e for e in experiments if e["name"].startswith("nightly @ ")]) == 2


def test_two_keepers_claiming_one_tick_one_wins(project: Any) -> None:
    hub = project
    t0 = time.time() - 1
    sid = hub.schedule(SPEC, name="race", every=60, start_at=t0, keep=False)["id"]
    answers: list[int] = []
    barrier = threading.Barrier(6)

    def claim() -> None:
        with httpx.Client(base_url=f"{hub.url}/api", headers={"X-Evalhub-Project": "sched"}) as c:
            barrier.wait()
            answers.append(
                c.post(f"/schedules/{sid}/claim", json={"tick": t0, "next_at": t0 + 60}).status_code
            )

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(answers) == [200] + [409] * 5
    with pytest.raises(Conflict, match="not the pending tick"):
        hub.client.post(f"/schedules/{sid}/done", {"tick": t0 + 60, "experiment_id": 1})
    with pytest.raises(Conflict, match="not due yet"):
        later = hub.schedule(SPEC, name="later", every=60, start_at=time.time() + 3600, keep=False)
        hub.client.post(
            f"/schedules/{later['id']}/claim", {"tick": later["next_at"], "next_at": later["next_at"] + 60}
        )


def test_a_trigger_runs_each_new_checkpoint_once_into_one_growing_experiment(project: Any) -> None:
    hub = project
    made: list[tuple[int, float]] = []
    submit = submitter(hub, made)
    trigger = hub.schedule({"tasks": ["arith-add"], "config": {"limit": 2}}, on_checkpoint="fast", keep=False)
    assert trigger["on_checkpoint"] == "fast" and trigger["name"] == "fast-checkpoints"
    with pytest.raises(NotFound):
        hub.schedule("arith-add", on_checkpoint="no-such-model", keep=False)
    assert run_due(hub.client, submit) == []  # v1 was there before the trigger: not new
    for name in ("v2", "v3"):
        hub.register_checkpoint(model="fast", name=name, uri=f"/weights/{name}")
    first = run_due(hub.client, submit)
    assert len(first) == 1 and len(made) == 1  # v2; v3 waits while v2's runs are queued
    exp_id = first[0]["experiment_id"]
    assert run_due(hub.client, submit) == []
    hub.client.post(f"/experiments/{exp_id}/cancel")  # v2's runs end (here: cancelled, not executed)
    second = run_due(hub.client, submit)
    assert [r["experiment_id"] for r in second] == [exp_id]  # v3 joins the same experiment
    runs = hub.runs(experiment_id=exp_id)
    assert runs.height == 2
    state = hub.schedules_api.get(trigger["id"])
    assert state["ticks_run"] == 2 and state["pending_tick"] is None
    assert state["next_at"] == hub.checkpoint("fast", "v3")["id"]
    hub.client.post(f"/experiments/{exp_id}/cancel")
    assert run_due(hub.client, submit) == []  # nothing new


def test_the_cli_lists_removes_and_refuses_with_one_line(project: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    hub = project
    hub.schedule(SPEC, every="6h", keep=False)
    env = {**__import__("os").environ, "EVALHUB_URL": hub.url, "EVALHUB_PROJECT": "sched"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "evalhub.cli", "schedule", *args], capture_output=True,
                              text=True, env=env, timeout=120, check=False)  # fmt: skip

    listed = cli("list")
    assert listed.returncode == 0 and "nightly" in listed.stdout and "every 21600s" in listed.stdout, listed
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "name": "other"}))
    both = cli("add", str(spec), "--every", "1h", "--cron", "0 3 * * *")
    assert both.returncode == 1 and both.stderr.strip().startswith("error: give one of"), both
    assert "Traceback" not in both.stderr
    removed = cli("remove", "nightly")
    assert removed.returncode == 0, removed
    assert cli("list").stdout.strip() == "no schedules"
    gone = cli("remove", "nightly")
    assert gone.returncode == 1 and "no schedule named 'nightly'" in gone.stderr
