"""The loop that runs an experiment's runs on Ray, driven by the run states the server owns.

It keeps no status of its own. Each poll it reads the experiment's runs from the tracking server and
acts on them: ``queued`` runs go to workers of their checkpoint (one group per checkpoint and runtime;
a group gets several replicas of its worker when the cluster has room and its runs outnumber the
others', see :func:`evalhub.execution.placement.share`); a worker that dies is reported
(``POST /runs/{id}/lost``) and the server decides whether the run is re-queued as the next attempt or
fails; a checkpoint that cannot load (or whose worker cannot be placed, or whose ``runtime_env`` cannot
be built) fails its queued runs with the reason; a ``cancelled`` run's worker stops between batches
(it sees the cancel in its event answers) or is killed after ``cancel_grace_s``. The loop ends when
none of its runs is queued or running on the server.

Between polls it acts on what it knows: a worker that finished a run gets the next queued run of its
checkpoint at once (the server's answer to the next run's ``running`` says whether it was cancelled
meanwhile), so the overhead per run is a few round trips, not a poll interval.

Runs it drives come as :class:`Job`s (the in-process executor hands them over), or are read from the
server (the scheduler on the cluster, which may be restarted at any time: it then declares the
attempts the previous scheduler's workers held lost, since those workers died with it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from evalhub.adapters.base import CheckpointRef
from evalhub.errors import EvalhubError, NotFound, ServerError
from evalhub.execution.placement import WorkerShape, capacity, cluster_nodes, refusal, shape_of, share
from evalhub.protocol import TERMINAL

if TYPE_CHECKING:
    from evalhub.client import Client

log = logging.getLogger("evalhub.execution")

# passed to every worker so a cluster node runs offline exactly like the submitting process
PASSED_ENV = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "HF_DATASETS_CACHE",
    "EVALHUB_CACHE",
    "EVALHUB_HOME",
    "EVALHUB_WORKER_NICE",
)
PLACEMENT_TIMEOUT_S = float(os.environ.get("EVALHUB_PLACEMENT_TIMEOUT_S", "1800"))


@dataclass
class Job:
    """What a worker needs to run one run: its checkpoint, its task row and its config.

    The run's status and attempt live on the server, not here.
    """

    run_id: int
    checkpoint: CheckpointRef
    task: dict[str, Any]
    config: dict[str, Any]
    max_attempts: int = 3
    name: str = ""

    @property
    def group(self) -> tuple[str, str, str]:
        """Runs of one group share a worker: same checkpoint, same runtime."""
        return (self.checkpoint.model, self.checkpoint.name, self.checkpoint.runtime)

    def payload(self, attempt: int) -> dict[str, Any]:
        return {"run_id": self.run_id, "attempt": attempt, "task": self.task, "config": self.config}


def jobs_from_server(client: Client, experiment_id: int) -> tuple[dict[int, Job], dict[int, str]]:
    """The jobs of an experiment's runs rebuilt from the server (its runs, their models, checkpoints
    and tasks); and the runs that cannot be run, with why (a task or checkpoint deleted since)."""
    models: dict[str, dict[str, Any]] = {}
    checkpoints: dict[tuple[str, str], dict[str, Any]] = {}
    tasks: dict[str, dict[str, Any] | None] = {}
    jobs: dict[int, Job] = {}
    broken: dict[int, str] = {}
    for run in client.paged(f"/experiments/{experiment_id}/runs"):
        run_id, model, ckpt, task = int(run["id"]), run.get("model"), run.get("checkpoint"), run.get("task")
        if not (model and ckpt and task):
            broken[run_id] = "the run names no model, checkpoint or task: it cannot be evaluated"
            continue
        try:
            if model not in models:
                models[model] = client.get(f"/models/{model}")
                for row in client.paged("/checkpoints", model=model):
                    checkpoints[(model, str(row["name"]))] = row
            if task not in tasks:
                tasks[task] = client.get(f"/tasks/{task}")
        except NotFound as exc:
            tasks.setdefault(task, None)
            broken[run_id] = f"its model or task is gone from the registry: {exc}"
            continue
        row = checkpoints.get((model, ckpt))
        task_row = tasks.get(task)
        if row is None or task_row is None:
            broken[run_id] = f"checkpoint {model}/{ckpt} or task {task} is gone from the registry"
            continue
        mrow = models[model]
        params = ((run.get("tags") or {}).get("params")) or {}
        ref = CheckpointRef(
            model=str(model),
            name=str(ckpt),
            uri=str(row.get("uri") or ""),
            runtime=str(run.get("runtime") or mrow.get("runtime") or "hf"),
            adapter=mrow.get("adapter"),
            code_uri=mrow.get("code_uri"),
            params={**(mrow.get("default_params") or {}), **params},
            step=row.get("step"),
        )
        jobs[run_id] = Job(run_id, ref, task_row, dict(run.get("config") or {}),
                           int(run.get("max_attempts") or 3), str(run.get("name") or ""))  # fmt: skip
    return jobs, broken


@dataclass
class _Worker:
    """One replica of a group's worker: an actor, and what it is doing."""

    group: _Group
    actor: Any
    ready: bool = False  # constructed on a node
    loaded: bool = False
    busy: int | None = None  # the run it evaluates now
    since: float = field(default_factory=time.monotonic)


@dataclass
class _Group:
    """The runs of one checkpoint and runtime, and the workers that host it."""

    key: tuple[str, str, str]
    checkpoint: CheckpointRef
    shape: WorkerShape
    runs: list[int] = field(default_factory=list)
    workers: list[_Worker] = field(default_factory=list)
    load_deaths: int = 0
    failed: str | None = None  # the checkpoint cannot be loaded: why


@dataclass
class _Slot:
    """A call in flight on a worker: becoming ready, its load, or one attempt of a run."""

    worker: _Worker
    kind: str  # "ready" | "load" | "run"
    run_id: int | None = None
    attempt: int = 0
    since: float = field(default_factory=time.monotonic)
    cancel_seen: float | None = None


def short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return (text[:limit] + "…") if len(text) > limit else text or type(exc).__name__


WorkerFactory = Callable[["_Group"], Any]
"""Makes the actor of one worker of a group (its resources, runtime_env and constructor arguments)."""


class Driver:
    """One experiment's loop over its runs (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        experiment_id: int,
        resources: dict[str, Any],
        factory: WorkerFactory,
        *,
        jobs: list[Job] | None = None,
        poll_interval: float = 1.0,
        cancel_grace_s: float = 60.0,
        stop: threading.Event | None = None,
        adopt_running: bool = False,
        placement_timeout_s: float = PLACEMENT_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.resources = resources
        self.factory = factory
        self.poll_interval = poll_interval
        self.cancel_grace_s = cancel_grace_s
        self.stop = stop
        self.adopt_running = adopt_running
        self.placement_timeout_s = placement_timeout_s
        self.jobs: dict[int, Job] = {}
        self.broken: dict[int, str] = {}
        self.given = jobs
        self.groups: dict[tuple[str, str, str], _Group] = {}
        self.slots: dict[Any, _Slot] = {}  # ObjectRef -> what it is
        self.runs: dict[int, dict[str, Any]] = {}  # the server's latest word on each run
        self.in_flight: set[int] = set()
        self.nodes: list[dict[str, float]] = []
        self.nodes_at = 0.0

    # -- the runs -------------------------------------------------------------------------------

    def load(self) -> None:
        """The jobs: those handed over, else rebuilt from the server (retried while it is away)."""
        if self.given is not None:
            self.jobs = {j.run_id: j for j in self.given}
        else:
            while True:
                try:
                    self.jobs, self.broken = jobs_from_server(self.client, self.experiment_id)
                    break
                except EvalhubError as exc:
                    if self.stop is not None and self.stop.is_set():
                        return
                    log.warning(
                        "evalhub: reading experiment %s failed (%s); retrying", self.experiment_id, exc
                    )
                    time.sleep(2.0)
        gpus = sum(float(n.get("GPU", 0)) for n in self.cluster())
        for job in self.jobs.values():
            group = self.groups.get(job.group)
            if group is None:
                shape = shape_of(self.resources, job.checkpoint.runtime, job.checkpoint.params, gpus)
                group = self.groups[job.group] = _Group(job.group, job.checkpoint, shape)
            group.runs.append(job.run_id)

    def cluster(self) -> list[dict[str, float]]:
        """The live nodes' resources (read at most every 10 s)."""
        if not self.nodes or time.monotonic() - self.nodes_at > 10.0:
            try:
                self.nodes = cluster_nodes()
                self.nodes_at = time.monotonic()
            except Exception as exc:  # the GCS is busy: keep the last answer
                log.info("evalhub: reading the cluster's nodes failed: %s", exc)
        return self.nodes

    def poll(self) -> bool:
        """Read the experiment's runs; False when the server did not answer (try again later)."""
        try:
            rows = list(self.client.paged(f"/experiments/{self.experiment_id}/runs"))
        except EvalhubError as exc:
            log.info("evalhub: polling runs failed: %s", exc)
            return False
        self.runs = {
            int(r["id"]): r for r in rows if int(r["id"]) in self.jobs or int(r["id"]) in self.broken
        }
        return True

    def status(self, run_id: int) -> str | None:
        run = self.runs.get(run_id)
        return None if run is None else str(run.get("status"))

    def finished(self) -> bool:
        return (
            bool(self.runs)
            and all(self.status(i) in TERMINAL for i in self.jobs)
            and not self.slots
            and all(self.status(i) in TERMINAL for i in self.broken)
        )

    def queued(self, group: _Group) -> list[int]:
        return [i for i in group.runs if self.status(i) == "queued" and i not in self.in_flight]

    def report_lost(self, run_id: int, attempt: int, reason: str) -> None:
        try:
            run = self.client.post(f"/runs/{run_id}/lost", {"attempt": attempt, "reason": reason})
            self.runs[run_id] = run
        except EvalhubError as exc:  # the server will reap the lease anyway
            log.warning("evalhub: could not report run %s attempt %s lost: %s", run_id, attempt, exc)

    def fail(self, run_id: int, error: str) -> None:
        """Say that a queued or running run cannot be executed (the state machine may refuse: fine)."""
        try:
            self.runs[run_id] = self.client.post(
                f"/runs/{run_id}/status", {"status": "failed", "error": error}
            )
        except ServerError as exc:  # 409: it moved on meanwhile (cancelled, finished)
            log.info("evalhub: run %s: failing it was refused: %s", run_id, exc)
        except EvalhubError as exc:
            log.warning("evalhub: run %s: could not fail it: %s", run_id, exc)

    def fail_group(self, group: _Group, error: str) -> None:
        group.failed = error
        for run_id in group.runs:
            if self.status(run_id) == "queued" and run_id not in self.in_flight:
                self.fail(run_id, error)

    def adopt(self) -> None:
        """At a (re)start on the cluster: attempts still ``running`` were held by workers of a previous
        scheduler, which died with it; the server re-queues them (or fails them, attempts spent)."""
        for run_id, run in list(self.runs.items()):
            if run.get("status") == "running":
                self.report_lost(run_id, int(run.get("attempt") or 1), "the experiment's scheduler restarted")

    # -- workers --------------------------------------------------------------------------------

    def launch(self, group: _Group) -> None:
        worker = _Worker(group, self.factory(group))
        group.workers.append(worker)
        self.slots[worker.actor.ready.remote()] = _Slot(worker, "ready")

    def retire(self, worker: _Worker) -> None:
        import ray

        try:
            ray.kill(worker.actor, no_restart=True)
        except Exception:  # already gone
            pass
        if worker in worker.group.workers:
            worker.group.workers.remove(worker)
        if worker.busy is not None:
            self.in_flight.discard(worker.busy)
        for ref, slot in list(self.slots.items()):
            if slot.worker is worker:
                del self.slots[ref]

    def dispatch(self) -> None:
        """Size each group's workers to its queued runs within the cluster's room, then give every idle
        loaded worker its next queued run."""
        nodes = self.cluster()
        by_shape: dict[WorkerShape, list[_Group]] = {}
        for group in self.groups.values():
            if group.failed is None:
                by_shape.setdefault(group.shape, []).append(group)
        for shape, groups in by_shape.items():
            problem = refusal(shape, nodes) if nodes else None
            if problem:
                for group in groups:
                    self.fail_group(group, problem)
                continue
            slots = max(1, capacity(shape, nodes, self.resources.get("max_workers"))) if nodes else 1
            queued = {g.key: len(self.queued(g)) for g in groups}
            busy = {g.key: sum(1 for w in g.workers if w.busy is not None) for g in groups}
            want = share(queued, busy, slots)
            for group in groups:
                idle = [w for w in group.workers if w.busy is None and w.loaded]
                target = want.get(group.key, 0)
                while len(group.workers) > target and idle:
                    self.retire(idle.pop())  # free its resources for another checkpoint
                while len(group.workers) < target and sum(len(g.workers) for g in groups) < slots:
                    self.launch(group)
        for group in self.groups.values():
            if group.failed is not None:
                continue
            for worker in group.workers:
                if not worker.loaded or worker.busy is not None:
                    continue
                todo = self.queued(group)
                if not todo:
                    break
                self.start_run(worker, todo[0])

    def start_run(self, worker: _Worker, run_id: int) -> None:
        attempt = int(self.runs[run_id].get("attempt") or 1)
        worker.busy = run_id
        self.in_flight.add(run_id)
        ref = worker.actor.evaluate.remote(self.jobs[run_id].payload(attempt))
        self.slots[ref] = _Slot(worker, "run", run_id, attempt)

    def watch(self) -> None:
        """A cancelled run's worker stops between batches, else it is killed after the grace; a worker
        that no node takes within the placement timeout fails its group's queued runs."""
        now = time.monotonic()
        for slot in list(self.slots.values()):
            if slot.kind == "ready" and now - slot.since > self.placement_timeout_s:
                group = slot.worker.group
                self.retire(slot.worker)
                self.fail_group(
                    group,
                    f"no node of the cluster took a worker ({group.shape.describe()}) within "
                    f"{self.placement_timeout_s:.0f}s: every node is busy or too small",
                )
            if slot.kind != "run" or slot.run_id is None or self.status(slot.run_id) != "cancelled":
                continue
            if slot.cancel_seen is None:
                slot.cancel_seen = now
            elif now - slot.cancel_seen > self.cancel_grace_s:
                self.retire(slot.worker)

    def settle(self, ref: Any) -> None:
        """A call came back (or its worker died): act on it."""
        import ray

        slot = self.slots.pop(ref, None)
        if slot is None:
            return
        worker, group = slot.worker, slot.worker.group
        if slot.run_id is not None:
            self.in_flight.discard(slot.run_id)
        try:
            answer = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            reason = short(exc)
            env_error = (
                isinstance(exc, ray.exceptions.RuntimeEnvSetupError) or "runtime_env" in reason.lower()
            )
            self.retire(worker)
            if slot.kind != "run":
                group.load_deaths += 1
                limit = max((self.jobs[i].max_attempts for i in group.runs), default=1)
                if env_error:
                    self.fail_group(group, f"the worker's runtime_env could not be built: {reason}")
                elif group.load_deaths >= limit:
                    self.fail_group(
                        group, f"the worker died {group.load_deaths} times while loading: {reason}"
                    )
                return
            log.warning("evalhub: worker of run %s died (%s)", slot.run_id, reason)
            assert slot.run_id is not None
            self.report_lost(slot.run_id, slot.attempt, f"the worker died: {reason}")
            return
        except ray.exceptions.RayError as exc:  # a runtime_env that cannot be built, a bug in the worker
            self.retire(worker)
            if slot.kind != "run":
                what = "the worker's runtime_env could not be built" if isinstance(
                    exc, ray.exceptions.RuntimeEnvSetupError) else "the worker failed"  # fmt: skip
                self.fail_group(group, f"{what}: {short(exc)}")
            else:
                assert slot.run_id is not None
                self.fail(slot.run_id, short(exc))
            return
        if slot.kind == "ready":
            worker.ready = True
            self.slots[worker.actor.load.remote()] = _Slot(worker, "load")
            return
        if slot.kind == "load":
            if not answer.get("ok"):
                self.retire(worker)
                self.fail_group(group, str(answer.get("error")))
            else:
                worker.loaded = True
            return
        worker.busy = None
        assert slot.run_id is not None
        if answer.get("status") in TERMINAL and slot.run_id in self.runs:
            self.runs[slot.run_id] = {**self.runs[slot.run_id], "status": answer["status"]}
        if not answer.get("delivered", False):
            # the attempt ended without the server hearing its end: let the server decide
            self.report_lost(slot.run_id, slot.attempt,
                             str(answer.get("error") or "the attempt ended without reporting its end"))  # fmt: skip

    # -- the loop -------------------------------------------------------------------------------

    def interval(self) -> float:
        """Seconds between full reads of the runs: longer for a big experiment (pages of 1,000)."""
        return max(self.poll_interval, len(self.jobs) / 4000.0)

    def run(self) -> dict[int, str]:
        import ray

        self.load()
        for run_id, reason in self.broken.items():
            self.fail(run_id, reason)
        last_poll = 0.0
        adopted = not self.adopt_running
        try:
            while True:
                if self.stop is not None and self.stop.is_set():
                    break
                if time.monotonic() - last_poll >= self.interval() or not self.runs:
                    last_poll = time.monotonic()
                    if self.poll():
                        if not adopted:
                            self.adopt()
                            adopted = True
                        if self.finished():
                            break
                        self.watch()
                        self.dispatch()
                if not self.slots:
                    time.sleep(self.poll_interval)
                    continue
                ready, _ = ray.wait(list(self.slots), num_returns=1, timeout=self.poll_interval)
                for ref in ready:
                    self.settle(ref)
                if ready:
                    self.dispatch()
        finally:
            for slot in list(self.slots.values()):
                if slot.kind == "run" and slot.run_id is not None:
                    self.report_lost(slot.run_id, slot.attempt, "the driver stopped")
            for group in self.groups.values():
                for worker in list(group.workers):
                    self.retire(worker)
        return {i: str(self.status(i)) for i in self.jobs}


def worker_args(
    client: Client, group: _Group, env: dict[str, str], context: dict[str, Any]
) -> tuple[Any, ...]:
    """The constructor arguments of :class:`~evalhub.execution.worker.Worker` for a group."""
    return (client.url, client.token, client.project, asdict(group.checkpoint), env, context)


__all__ = ["PASSED_ENV", "Driver", "Job", "jobs_from_server", "short", "worker_args"]
