"""Evaluations that run by themselves: schedules kept by the server (:mod:`evalhub.protocol.schedules`),
run by a keeper that lives on the Ray cluster.

>>> hub.schedule("nightly.yaml", every="6h")           # or cron="0 3 * * *" (UTC)
>>> hub.schedules()                                    # next tick, last experiment, ticks run
>>> hub.unschedule("nightly")

The keeper is one detached, named actor per tracking server and project
(``evalhub-scheduler-schedules-<server>``; its name makes the embedded cluster count it as busy, so a
live schedule keeps that cluster from idling out). Every :data:`POLL_S` seconds it reads the
schedules and runs each due tick: it claims the tick on the server, submits the spec as an
experiment handed to the cluster scheduler (:class:`~evalhub.execution.executor.ClusterExecutor`),
under a client key made of the schedule and the tick, and reports the experiment. Ticks missed while
no keeper ran (the cluster down) become one run when it is back, never several; a tick claimed by a
keeper that died before reporting it is submitted again under the same key, which answers the
experiment already made: never twice. Ray restarts a keeper whose process dies; it ends itself when
the project has no schedule left.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from evalhub.errors import InvalidValue

log = logging.getLogger("evalhub.execution")

POLL_S = 2.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def period_s(every: float | str) -> float:
    """Seconds of ``every``: a number of seconds, or text such as ``"90s"``, ``"15m"``, ``"6h"``, ``"1d"``."""
    if isinstance(every, (int, float)) and not isinstance(every, bool):
        seconds = float(every)
    else:
        m = _PERIOD.match(str(every))
        if not m:
            raise InvalidValue(
                f"every={every!r} is not a period: give seconds or text such as '90s', '15m', '6h', '1d'"
            )
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 1:
        raise InvalidValue(f"every={every!r} is shorter than a second")
    return seconds


def _croniter(cron: str, start: float) -> Any:
    from evalhub._extras import needs_extra

    with needs_extra("notebook", "a cron schedule"):
        from croniter import croniter
    try:
        return croniter(cron, datetime.fromtimestamp(start, timezone.utc))
    except (ValueError, KeyError) as exc:
        raise InvalidValue(f"cron={cron!r} is not a cron expression (five fields, UTC): {exc}") from None


def first_tick(cron: str | None, start: float) -> float:
    """The first tick at or after ``start``: ``start`` itself for a period, the next cron time for cron."""
    if cron is None:
        return float(start)
    return float(_croniter(cron, start - 1e-6).get_next(float))


def tick_after(schedule: dict[str, Any], now: float) -> float:
    """The schedule's first tick later than ``now`` (on its grid: ``next_at`` plus whole periods)."""
    if schedule.get("cron"):
        return float(_croniter(str(schedule["cron"]), now).get_next(float))
    every, at = float(schedule["every_s"]), float(schedule["next_at"])
    ahead = at + math.floor((now - at) / every + 1) * every
    return ahead if ahead > now else ahead + every


def client_key(schedule: dict[str, Any], tick: float) -> str:
    """The client key of a tick's experiment: the same tick submitted again answers the same experiment
    (a trigger's ticks all go into its one experiment, each checkpoint's runs once)."""
    if schedule.get("on_checkpoint"):
        return f"schedule-{int(schedule['id'])}"
    return f"schedule-{int(schedule['id'])}-{tick!r}"


Submit = Callable[[dict[str, Any], float], int]
"""``submit(schedule, tick) -> experiment id``: what running a tick means (see :func:`cluster_submit`)."""


def run_due(
    client: Any, submit: Submit, now: float | None = None, schedules: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Run every tick of the project's schedules that is due (or pending from a keeper that died);
    returns what ran: ``{"schedule", "tick", "experiment_id"}`` per tick. Another keeper's tick (a
    409 on the claim) is left to it. A trigger's tick is its next new checkpoint (its id), taken once
    the trigger's experiment has finished the checkpoint before it. ``schedules`` is the list just
    read from the server, if the caller has it."""
    from evalhub.errors import Conflict

    ran = []
    for schedule in client.get("/schedules")["items"] if schedules is None else schedules:
        sid, at = int(schedule["id"]), time.time() if now is None else now
        pending = schedule.get("pending_tick")
        if pending is None:
            step = (
                _due_checkpoint(client, schedule)
                if schedule.get("on_checkpoint")
                else _due_time(schedule, at)
            )
            if step is None:
                continue
            pending, following = step
            try:
                client.post(f"/schedules/{sid}/claim", {"tick": pending, "next_at": following})
            except Conflict:
                continue
            schedule = {**schedule, "next_at": following, "pending_tick": pending}
        # a trigger's pending tick is the watermark it moved from; what it runs is the checkpoint moved to
        tick = float(schedule["next_at"]) if schedule.get("on_checkpoint") else float(pending)
        experiment_id = submit(schedule, tick)
        client.post(f"/schedules/{sid}/done", {"tick": pending, "experiment_id": experiment_id})
        ran.append({"schedule": schedule["name"], "tick": tick, "experiment_id": experiment_id})
        log.info(
            "evalhub: schedule %s ran its tick %s as experiment %s", schedule["name"], tick, experiment_id
        )
    return ran


def _due_time(schedule: dict[str, Any], now: float) -> tuple[float, float] | None:
    """(the due tick, the tick after now) of a period or cron schedule, or None when none is due."""
    tick = float(schedule["next_at"])
    return None if tick > now else (tick, tick_after(schedule, now))


def _due_checkpoint(client: Any, schedule: dict[str, Any]) -> tuple[float, float] | None:
    """(the trigger's watermark, the id of its next new checkpoint), or None: no new checkpoint, or
    the trigger's experiment still evaluates the one before (its runs queued or running)."""
    from evalhub.protocol import ACTIVE

    last = schedule.get("last_experiment_id")
    if last is not None:
        exp = client.get(f"/experiments/{int(last)}")
        if any((exp.get("counts") or {}).get(status) for status in ACTIVE):
            return None
        beat = (exp.get("metadata") or {}).get("evalhub_scheduler")
        if isinstance(beat, dict) and beat.get("state") != "done":
            return None  # its scheduler is still scoring or ending: the next checkpoint waits for it
    watermark = float(schedule["next_at"])
    newer = [int(c["id"]) for c in client.paged("/checkpoints", model=schedule["on_checkpoint"])
             if int(c["id"]) > watermark]  # fmt: skip
    return (watermark, float(min(newer))) if newer else None


def tick_spec(client: Any, schedule: dict[str, Any], tick: float) -> dict[str, Any]:
    """The spec of a tick's experiment: the schedule's, named after the schedule and the tick; a
    trigger's is its spec on the checkpoint ``tick`` (an id), named after the trigger (one experiment
    that grows by a checkpoint each tick)."""
    spec = dict(schedule["spec"])
    if schedule.get("on_checkpoint"):
        checkpoint = client.get(f"/checkpoints/{int(tick)}")
        spec["name"] = str(schedule["name"])
        spec["models"] = [{"model": schedule["on_checkpoint"], "checkpoints": [checkpoint["name"]]}]
        return spec
    when = datetime.fromtimestamp(tick, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    spec["name"] = f"{spec.get('name') or schedule['name']} @ {when}"
    return spec


def cluster_submit(source: Any, executor: Any) -> Submit:
    """Ticks as experiments handed to the cluster scheduler through ``executor`` (a ClusterExecutor);
    ``source`` is a Client (or anything with one)."""
    from evalhub.client import client_of
    from evalhub.orchestrator import run_experiment

    def submit(schedule: dict[str, Any], tick: float) -> int:
        exp = run_experiment(source, tick_spec(client_of(source), schedule, tick), wait=False, executor=executor,
                             client_key=client_key(schedule, tick))  # fmt: skip
        return int(exp.id)

    return submit


# -- the keeper on the cluster ------------------------------------------------------------------------


def keeper_name(url: str, project: str) -> str:
    from evalhub.execution.scheduler import PREFIX, server_digest

    return f"{PREFIX}schedules-{server_digest(url, project)}"


class ScheduleKeeper:
    """The actor (see the module docstring); ``config`` names the server, token and project."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.ran: list[dict[str, Any]] = []
        self.error: str | None = None
        threading.Thread(target=self._loop, name="evalhub-schedules", daemon=True).start()

    def ping(self) -> dict[str, Any]:
        return {"ran": list(self.ran), "error": self.error}

    def _loop(self) -> None:
        import ray

        from evalhub.client import Client
        from evalhub.execution.executor import ClusterExecutor

        c = self.config
        client = Client.unattended(c["url"], token=c.get("token"), project=c.get("project"))
        executor = ClusterExecutor(address=ray.get_runtime_context().gcs_address)
        submit = cluster_submit(client, executor)
        empty = 0
        while True:
            try:
                schedules = client.get("/schedules")["items"]
                if not schedules:
                    empty += 1
                    if empty >= 3:  # no schedule left (looked three times): end, without a restart
                        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                        return
                else:
                    empty = 0
                    self.ran.extend(run_due(client, submit, schedules=schedules))
                self.error = None
            except Exception as exc:  # the server away for a moment, a spec the registry refuses now
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("evalhub: the schedule keeper could not run its ticks: %s", self.error)
            time.sleep(float(c.get("poll_s") or POLL_S))


def start_keeper(url: str, token: str | None, project: str, poll_s: float = POLL_S) -> Any:
    """Start (or find) the keeper of a server's project on the connected cluster; its handle."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from evalhub.execution.cluster import NAMESPACE
    from evalhub.execution.relay import loopback

    options: dict[str, Any] = {"name": keeper_name(url, project), "namespace": NAMESPACE,
                               "lifetime": "detached", "get_if_exists": True, "max_restarts": -1,
                               "num_cpus": 0}  # fmt: skip
    if loopback(url):  # a loopback server answers on this node only
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False
        )
    config = {"url": url, "token": token, "project": project, "poll_s": poll_s}
    actor = ray.remote(ScheduleKeeper).options(**options).remote(config)
    ray.get(actor.ping.remote(), timeout=180)
    return actor


__all__ = [
    "POLL_S",
    "ScheduleKeeper",
    "client_key",
    "cluster_submit",
    "first_tick",
    "keeper_name",
    "period_s",
    "run_due",
    "start_keeper",
    "tick_after",
    "tick_spec",
]
