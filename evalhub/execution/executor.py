"""The Ray executor: worker actors per checkpoint, scheduled by the driver with ``ray.wait``.

One actor hosts one loaded checkpoint and evaluates every task of it in turn. A worker that dies takes
its run back to ``queued`` with ``attempt + 1`` on a fresh actor, up to ``max_attempts``; a checkpoint
that fails to load fails its runs (and only those); a cancelled run is dropped if still queued and stops
between batches if running (the worker sees the cancel in its event answers; the driver polls too).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalhub.adapters.base import CheckpointRef
from evalhub.errors import EvalhubError, ServerError

if TYPE_CHECKING:
    from evalhub.hub import Hub

log = logging.getLogger("evalhub.execution")

TERMINAL = frozenset({"completed", "failed", "cancelled"})
# passed to every worker so a cluster node runs offline exactly like the driver
_PASSED_ENV = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "HF_DATASETS_CACHE",
    "EVALHUB_CACHE",
    "EVALHUB_HOME",
    "EVALHUB_WORKER_NICE",
)


@dataclass
class Job:
    """One run to execute: its checkpoint, its task row and its config."""

    run_id: int
    checkpoint: CheckpointRef
    task: dict[str, Any]
    config: dict[str, Any]
    attempt: int = 1
    max_attempts: int = 3
    status: str = "queued"
    error: str | None = None

    @property
    def group(self) -> tuple[str, str, str]:
        """Runs of one group share a worker: same checkpoint, same runtime."""
        return (self.checkpoint.model, self.checkpoint.name, self.checkpoint.runtime)

    def payload(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "attempt": self.attempt, "task": self.task, "config": self.config}


@dataclass
class _Group:
    key: tuple[str, str, str]
    checkpoint: CheckpointRef
    queue: collections.deque[Job] = field(default_factory=collections.deque)
    load_deaths: int = 0


@dataclass
class _Slot:
    """A live actor: its group, what it is doing (``load`` or a job) and since when."""

    actor: Any
    group: _Group
    job: Job | None = None
    since: float = field(default_factory=time.monotonic)
    cancel_seen: float | None = None


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return (text[:limit] + "…") if len(text) > limit else text or type(exc).__name__


class RayExecutor:
    """Runs jobs on Ray: a local cluster by default, ``address`` (or ``RAY_ADDRESS``) joins a real one.

    >>> exp = hub.run_experiment(spec, executor=RayExecutor(address="ray://head:10001"))
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        include_dashboard: bool | None = None,
        poll_interval: float = 1.0,
        cancel_grace_s: float = 60.0,
        init_kwargs: dict[str, Any] | None = None,
        init_attempts: int = 3,
        start_nice: int | None = None,
    ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus = num_cpus
        if include_dashboard is None and os.environ.get("EVALHUB_RAY_DASHBOARD", "").lower() in (
            "0",
            "false",
            "no",
        ):
            include_dashboard = False
        self.include_dashboard = include_dashboard
        self.poll_interval = poll_interval
        self.cancel_grace_s = cancel_grace_s
        self.init_kwargs = dict(init_kwargs or {})
        self.init_attempts = max(1, init_attempts)
        if start_nice is None and os.environ.get("EVALHUB_RAY_START_NICE"):
            start_nice = int(os.environ["EVALHUB_RAY_START_NICE"])
        self.start_nice = start_nice
        self.dashboard_url: str | None = None
        self.started_ray = False
        self._actor_class: Any = None
        self._lock = threading.Lock()

    # -- Ray --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or join) Ray once; a Ray already initialised in this process is used as it is."""
        import ray

        with self._lock:
            if ray.is_initialized():
                return
            # on a busy machine the metrics agent can take longer than Ray's default wait to start
            os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                # a local cluster: Ray picks its own free ports (never Redis' 6379)
                if self.num_cpus is not None:
                    kwargs["num_cpus"] = self.num_cpus
                kwargs["include_dashboard"] = self.include_dashboard
            kwargs.update(self.init_kwargs)
            ctx = None
            for attempt in range(1, self.init_attempts + 1):
                try:
                    with _priority(self.start_nice if not self.address else None):
                        ctx = ray.init(**kwargs)
                    break
                except Exception as exc:
                    # Ray gives its node processes a fixed 30 s to come up; a machine busy with other
                    # work can miss that once: start over rather than fail the experiment
                    if ray.is_initialized():
                        ray.shutdown()
                    if attempt == self.init_attempts or self.address:
                        raise EvalhubError(
                            f"Ray did not start ({_short(exc)}); is the machine overloaded? "
                            "Set RAY_ADDRESS to use a running cluster (`ray start --head`)."
                        ) from exc
                    log.warning("evalhub: Ray start attempt %d failed (%s); retrying", attempt, _short(exc))
            self.started_ray = not self.address
            url = getattr(ctx, "dashboard_url", None)
            self.dashboard_url = f"http://{url}" if url and not str(url).startswith("http") else url
            if self.dashboard_url:
                log.info("evalhub: Ray dashboard at %s", self.dashboard_url)

    def shutdown(self) -> None:
        """Stop the local Ray this executor started (a joined cluster is left alone)."""
        import ray

        if self.started_ray and ray.is_initialized():
            ray.shutdown()
        self.started_ray = False

    def _actor(self) -> Any:
        if self._actor_class is None:
            import ray

            from evalhub.execution.worker import Worker

            self._actor_class = ray.remote(Worker)
        return self._actor_class

    def _capacity(self, resources: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """How many workers fit at once, and the options each actor is created with."""
        import ray

        cluster: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        gpus = float(cluster.get("GPU", 0))
        cpus = float(cluster.get("CPU", 1))
        per_gpu = float(resources.get("gpus_per_worker", 1) or 0)
        per_cpu = float(resources.get("cpus_per_worker", 1) or 0)
        options: dict[str, Any] = {"num_cpus": per_cpu, "max_restarts": 0}
        if gpus > 0 and per_gpu > 0:
            options["num_gpus"] = per_gpu
            fit = int(gpus // per_gpu)
        else:
            fit = int(cpus // per_cpu) if per_cpu > 0 else 4
        max_workers = resources.get("max_workers")
        if max_workers:
            fit = min(fit, int(max_workers)) if fit > 0 else int(max_workers)
        return max(1, fit), options

    # -- the driver loop --------------------------------------------------------------------------

    def execute(
        self,
        hub: Hub,
        experiment_id: int,
        jobs: list[Job],
        resources: dict[str, Any] | None = None,
        stop: threading.Event | None = None,
    ) -> dict[int, str]:
        """Run every job to a terminal status; returns ``{run_id: status}``.

        ``stop`` (an event) ends the loop early: running workers are killed, their runs left as they are.
        """
        import ray

        self.start()
        capacity, options = self._capacity(resources or {})
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        groups: dict[tuple[str, str, str], _Group] = {}
        for job in jobs:
            group = groups.setdefault(job.group, _Group(job.group, job.checkpoint))
            group.queue.append(job)
        waiting: collections.deque[_Group] = collections.deque(groups.values())
        slots: dict[Any, _Slot] = {}  # ObjectRef -> slot
        results: dict[int, str] = {}
        by_run = {job.run_id: job for job in jobs}
        last_poll = 0.0
        client = hub.client

        def finish(job: Job, status: str, error: str | None = None) -> None:
            job.status, job.error = status, error
            results[job.run_id] = status

        def post_status(job: Job, status: str, error: str | None = None) -> None:
            try:
                client.post(f"/runs/{job.run_id}/status", {"status": status, "error": error})
            except ServerError as exc:  # 409: the run moved on meanwhile (cancelled): say so, go on
                log.info("evalhub: run %s: status %s refused: %s", job.run_id, status, exc)

        def fail_group(group: _Group, error: str) -> None:
            while group.queue:
                job = group.queue.popleft()
                post_status(job, "failed", error)
                finish(job, "failed", error)

        def next_job(group: _Group) -> Job | None:
            while group.queue:
                job = group.queue.popleft()
                if job.status in TERMINAL:  # cancelled on the server while queued
                    results[job.run_id] = job.status
                    continue
                return job
            return None

        def launch(group: _Group) -> None:
            actor = (
                self._actor()
                .options(**options)
                .remote(hub.url, hub.token, hub.project, _ref_dict(group.checkpoint), env)
            )
            slots[actor.load.remote()] = _Slot(actor, group)

        def dispatch(slot: _Slot) -> None:
            job = next_job(slot.group)
            if job is None:
                ray.kill(slot.actor, no_restart=True)
                return
            slot.job, slot.since, slot.cancel_seen = job, time.monotonic(), None
            job.status = "running"
            slots[slot.actor.evaluate.remote(job.payload())] = slot

        def died(slot: _Slot, exc: BaseException) -> None:
            reason = _short(exc)
            job, group = slot.job, slot.group
            if job is None:  # died while loading
                group.load_deaths += 1
                if group.load_deaths >= max((j.max_attempts for j in group.queue), default=1):
                    fail_group(group, f"the worker died {group.load_deaths} times while loading: {reason}")
                else:
                    waiting.appendleft(group)
                return
            current = _server_status(client, job.run_id)
            if current in TERMINAL:  # it finished (or was cancelled) before the worker went away
                finish(job, current)
            elif job.attempt >= job.max_attempts:
                error = f"the worker died on each of {job.attempt} attempts; last: {reason}"
                post_status(job, "failed", error)
                finish(job, "failed", error)
            else:
                log.warning("evalhub: worker of run %s died (%s); retrying", job.run_id, reason)
                if current == "running":
                    post_status(job, "queued", None)
                job.attempt += 1
                job.status = "queued"
                group.queue.appendleft(job)
            if group.queue:
                waiting.appendleft(group)

        def poll_server() -> None:
            try:
                runs = list(client.paged(f"/experiments/{experiment_id}/runs"))
            except EvalhubError as exc:
                log.info("evalhub: polling runs failed: %s", exc)
                return
            now = time.monotonic()
            for run in runs:
                job = by_run.get(int(run["id"]))
                if job is None or run.get("status") != "cancelled":
                    continue
                if job.status == "queued":
                    finish(job, "cancelled")
            for ref, slot in list(slots.items()):
                job = slot.job
                if job is None or by_run_status(runs, job.run_id) != "cancelled":
                    continue
                if slot.cancel_seen is None:
                    slot.cancel_seen = now
                elif now - slot.cancel_seen > self.cancel_grace_s:
                    # the worker did not stop between batches in time: stop it the hard way
                    ray.kill(slot.actor, no_restart=True)
                    del slots[ref]
                    finish(job, "cancelled")
                    if slot.group.queue:
                        waiting.append(slot.group)

        poll_server()  # runs cancelled before the driver started are not started at all
        try:
            while waiting or slots:
                if stop is not None and stop.is_set():
                    break
                while waiting and len(slots) < capacity:
                    group = waiting.popleft()
                    if any(s.group is group for s in slots.values()):
                        continue  # its worker is alive and will take the requeued job
                    if any(j.status not in TERMINAL for j in group.queue):
                        launch(group)
                if not slots:
                    continue
                ready, _ = ray.wait(list(slots), num_returns=1, timeout=self.poll_interval)
                for ref in ready:
                    slot = slots.pop(ref)
                    try:
                        answer = ray.get(ref)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                        died(slot, exc)
                        continue
                    except ray.exceptions.RayError as exc:  # a bug in the worker code itself
                        if slot.job is not None:
                            post_status(slot.job, "failed", _short(exc))
                            finish(slot.job, "failed", _short(exc))
                        else:
                            fail_group(slot.group, _short(exc))
                        ray.kill(slot.actor, no_restart=True)
                        continue
                    if slot.job is None:  # the load finished
                        if not answer.get("ok"):
                            fail_group(slot.group, str(answer.get("error")))
                            ray.kill(slot.actor, no_restart=True)
                            continue
                    else:
                        finish(slot.job, str(answer.get("status")), answer.get("error"))
                    dispatch(slot)
                if time.monotonic() - last_poll >= self.poll_interval:
                    last_poll = time.monotonic()
                    poll_server()
        finally:
            for slot in slots.values():
                try:
                    ray.kill(slot.actor, no_restart=True)
                except Exception:  # already gone
                    pass
        return results


@contextlib.contextmanager
def _priority(nice: int | None) -> Iterator[None]:
    """Start Ray's node processes at another CPU priority (they inherit it), then restore the driver's.

    Ray's raylet gives its agents a fixed 15 s to come up; on a machine busy with other work they may
    not, and Ray aborts. A negative ``nice`` (root or CAP_SYS_NICE only) gets them through; worker
    processes go back to the driver's own priority as they start (``EVALHUB_WORKER_NICE``).
    """
    if nice is None:
        yield
        return
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError:
        log.info("evalhub: no permission to start Ray at nice %s; starting at %s", nice, before)
        yield
        return
    os.environ["EVALHUB_WORKER_NICE"] = str(before)
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


def by_run_status(runs: list[dict[str, Any]], run_id: int) -> str | None:
    for run in runs:
        if int(run["id"]) == run_id:
            return str(run.get("status"))
    return None


def _server_status(client: Any, run_id: int) -> str | None:
    try:
        return str(client.get(f"/runs/{run_id}")["status"])
    except EvalhubError:
        return None


def _ref_dict(ref: CheckpointRef) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(ref)


__all__ = ["Job", "RayExecutor"]
