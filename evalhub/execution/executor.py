"""The executors: how an experiment's runs get to Ray.

- :class:`ClusterExecutor` (the default) hands the experiment to a scheduler that lives on the cluster
  (:mod:`evalhub.execution.scheduler`, a detached actor): closing the notebook, restarting its kernel
  or killing ``evalhub run`` stops nothing, and ``hub.experiment(id)`` reattaches from any process.
  Without an address it uses evalhub's own local cluster (:mod:`evalhub.execution.cluster`), which
  outlives the process that started it and stops once idle.
- :class:`RayExecutor` (``EVALHUB_EXECUTOR=process``, ``evalhub run --in-process``, or given) drives the
  runs from a thread of the calling process (the loop of :mod:`evalhub.execution.driver`); when that
  process dies, its runs are re-queued by the server's reaper for the next driver. The test suite
  uses it where a test is not about the cluster: each test has an evalhub home of its own, and a
  local cluster per home would outlive every test.

:func:`default_executor` is the one choice between them.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.client import client_of
from evalhub.errors import ClusterError, EvalhubError
from evalhub.execution.connection import RayOptions, ray_connection
from evalhub.execution.driver import PASSED_ENV, Driver, Job, short

if TYPE_CHECKING:
    from evalhub.execution.driver import _Group

log = logging.getLogger("evalhub.execution")


class RayExecutor:
    """Runs jobs on Ray: a local cluster by default, ``address`` (or ``RAY_ADDRESS``) joins a real one.

    The process's Ray connection is shared (:mod:`evalhub.execution.connection`): any number of
    experiments run side by side, and none shuts Ray down under another.

    >>> exp = hub.run_experiment(spec, executor=RayExecutor(address="ray://head:10001"))
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        address_source: str | None = None,
        num_cpus: int | None = None,
        include_dashboard: bool | None = None,
        poll_interval: float = 1.0,
        cancel_grace_s: float = 60.0,
        init_kwargs: dict[str, Any] | None = None,
        init_attempts: int = 3,
        start_nice: int | None = None,
    ) -> None:
        self.options = RayOptions(
            address=address or None,
            address_source=address_source or ("the address given to RayExecutor" if address else None),
            num_cpus=num_cpus,
            include_dashboard=include_dashboard,
            init_kwargs=dict(init_kwargs or {}),
            init_attempts=max(1, init_attempts),
            start_nice=start_nice,
        )
        self.poll_interval = poll_interval
        self.cancel_grace_s = cancel_grace_s
        self._actor_class: Any = None
        self._held = 0
        self._executing = 0  # execute() calls under way
        self._lock = threading.Lock()

    @property
    def address(self) -> str | None:
        return self.options.address

    @property
    def dashboard_url(self) -> str | None:
        """The Ray dashboard of the cluster this process is connected to, if it has one."""
        return ray_connection().dashboard_url

    # -- Ray --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start or join Ray now (raises a clear error if it cannot); held until :meth:`shutdown` or the
        end of the last :meth:`execute` under way (several may run at once, one per thread)."""
        with self._lock:
            if self._held == 0:
                ray_connection().acquire(self.options)
                self._held = 1

    def _release(self) -> None:
        with self._lock:
            if self._held:
                self._held = 0
                ray_connection().release()

    def shutdown(self) -> None:
        """Let go of Ray; a local cluster this process started stops once no experiment holds it."""
        self._release()
        connection = ray_connection()
        if connection.users == 0 and connection.started_here:
            connection.shutdown()

    def _actor(self) -> Any:
        if self._actor_class is None:
            import ray

            from evalhub.execution.worker import Worker

            self._actor_class = ray.remote(Worker)
        return self._actor_class

    def execute(
        self,
        hub: Any,
        experiment_id: int,
        jobs: list[Job],
        resources: dict[str, Any] | None = None,
        stop: threading.Event | None = None,
        runtime_env: dict[str, Any] | None = None,
    ) -> dict[int, str]:
        """Drive every job until none of its runs is queued or running on the server; returns the
        server's ``{run_id: status}`` at the end.

        ``stop`` (an event) ends the loop early: workers are killed and the runs they held are
        reported lost (the server re-queues or fails them). ``runtime_env`` (a spec's
        ``config.runtime_env``) is each worker's Ray runtime_env.
        """
        with self._lock:  # several experiments may share this executor: Ray is held while any runs
            if self._held == 0:
                ray_connection().acquire(self.options)
                self._held = 1
            self._executing += 1
        try:
            client = client_of(hub)
            env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
            actor = self._actor()
            from evalhub._embedded import home as evalhub_home

            user_env = _ship_runtime_env(runtime_env or {}, evalhub_home() / "bundles")

            def factory(group: _Group) -> Any:
                options = {**group.shape.options(), "max_restarts": 0}
                if user_env:
                    options["runtime_env"] = user_env
                return actor.options(**options).remote(
                    client.url, client.token, client.project, asdict(group.checkpoint), env, {}
                )

            driver = Driver(client, experiment_id, resources or {}, factory, jobs=jobs,
                            poll_interval=self.poll_interval, cancel_grace_s=self.cancel_grace_s, stop=stop)  # fmt: skip
            return driver.run()
        finally:
            with self._lock:  # the last execute() out lets go (a start() before it is handed over)
                self._executing -= 1
                if self._executing == 0 and self._held:
                    self._held = 0
                    ray_connection().release()


class ClusterExecutor:
    """Hands an experiment to a scheduler on the Ray cluster (the default: :func:`default_executor`).

    ``address`` (else ``RAY_ADDRESS``) joins a running cluster; without one, evalhub's own local
    cluster is used (started if needed: :func:`evalhub.execution.cluster.ensure`). Submitting checks
    what the cluster can never do (a worker asking more GPUs or CPUs than any node has: refused with
    the reason), ships the local files the runs need (:mod:`evalhub.execution.bundle`), starts the
    relay when workers on other nodes cannot reach a loopback tracking server
    (:mod:`evalhub.execution.relay`), then starts the experiment's scheduler as a detached, named
    actor and returns: nothing of the experiment runs in this process.

    >>> exp = hub.run_experiment(spec, wait=False, executor=ClusterExecutor(address="127.0.0.1:6379"))
    >>> exp.id                                        # reattach later: hub.experiment(exp.id)
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        address_source: str | None = None,
        home: str | os.PathLike[str] | None = None,
        poll_interval: float = 1.0,
        cancel_grace_s: float = 60.0,
    ) -> None:
        # called by the scheduler once the runs end, as after_runs(client, experiment_id): the layers
        # above set it (orchestrator.score_by_spec applies the spec's scorers)
        self.after_runs: Any = None
        self.address = address or None
        self.address_source = address_source or ("the address given" if address else None)
        self.home = home
        self.poll_interval = poll_interval
        self.cancel_grace_s = cancel_grace_s
        self.embedded: dict[str, Any] | None = None
        self._held = False
        self._lock = threading.Lock()

    # -- Ray --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Join the cluster (the given address, ``RAY_ADDRESS``, else evalhub's local cluster)."""
        with self._lock:
            if self._held:
                return
            address, source = self.address, self.address_source
            if address is None and os.environ.get("RAY_ADDRESS"):
                address, source = os.environ["RAY_ADDRESS"], "the RAY_ADDRESS environment variable"
            if address is None:
                from evalhub.execution import cluster

                self.embedded = cluster.ensure(self.home)
                address = str(self.embedded["address"])
                source = f"evalhub's local Ray cluster ({Path(cluster.home(self.home)) / 'ray.json'})"
            ray_connection().acquire(RayOptions(address=address, address_source=source))
            self._held = True
            if self.embedded is not None:
                from evalhub.execution.cluster import start_keeper

                start_keeper(self.embedded)

    @property
    def dashboard_url(self) -> str | None:
        return ray_connection().dashboard_url

    def shutdown(self) -> None:
        """Let go of the cluster (it, and the experiments on it, keep running)."""
        with self._lock:
            if self._held:
                self._held = False
                ray_connection().release()

    # -- submission -------------------------------------------------------------------------------

    def prepare(self, source: Any, jobs: list[Job], resources: dict[str, Any],
                runtime_env: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """Check that the cluster can run ``jobs``, ship their local files and the relay they need;
        what :meth:`launch` hands the scheduler. Raises :class:`~evalhub.errors.ClusterError` with the
        reason for what the cluster can never do."""
        import ray

        from evalhub.execution import bundle, relay
        from evalhub.execution.placement import cluster_nodes, refusal, shape_of

        self.start()
        client = client_of(source)
        nodes = cluster_nodes()
        gpus = sum(float(n.get("GPU", 0)) for n in nodes)
        where = f"the Ray cluster at {ray_connection().address or self.address}"
        for job in jobs:
            shape = shape_of(resources, job.checkpoint.runtime, job.checkpoint.params, gpus)
            problem = refusal(shape, nodes, where)
            if problem:
                raise ClusterError(f"{job.checkpoint.model}/{job.checkpoint.name}: {problem}")
        paths: list[str] = []
        for job in jobs:
            paths += bundle.local_paths(job.task, job.config, job.checkpoint.code_uri)
        from evalhub._embedded import home as evalhub_home

        shipped = bundle.package(list(dict.fromkeys(paths)), evalhub_home(self.home) / "bundles")
        if shipped.kept and len(nodes) > 1:
            raise ClusterError(
                f"{shipped.kept[0]} is over {bundle.MAX_BYTES >> 20} MiB: too big to ship to every node of "
                f"{where}; put it on storage every node sees, or register it with a URI"
            )
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        user_env = _ship_runtime_env(runtime_env or {}, evalhub_home(self.home) / "bundles")
        node_id = ray.get_runtime_context().get_node_id()
        how = relay.mode()
        route: dict[str, Any] = {"mode": how, "loopback": relay.loopback(client.url), "node_id": node_id}
        if how != "never" and (how == "always" or (route["loopback"] and len(nodes) > 1)):
            route.update(relay.start_relay(client.url, node_id))
        elif route["loopback"] and len(nodes) > 1:
            log.warning(
                "evalhub: the tracking server %s is on this machine's loopback and EVALHUB_RELAY=never: workers "
                "on the cluster's other nodes cannot report; use a shared server (evalhub server --host …)",
                client.url,
            )
        return {"bundle": shipped.as_dict(), "runtime_env": user_env, "relay": route, "env": env,
                "resources": dict(resources), "node_id": node_id}  # fmt: skip

    def launch(self, source: Any, experiment_id: int, ticket: dict[str, Any], growing: bool = False) -> None:
        """Start the experiment's scheduler on the cluster (or find the one still running; ``growing``:
        runs were added to the experiment, which that one then takes too)."""
        from evalhub.execution import bundle
        from evalhub.execution.scheduler import start_scheduler

        self.start()
        client = client_of(source)
        if growing:  # the experiment's record of its files keeps the earlier submissions' too
            metadata = client.get(f"/experiments/{int(experiment_id)}").get("metadata") or {}
            ticket = {**ticket, "bundle": bundle.merged(metadata.get("evalhub_bundle"), ticket["bundle"])}
        config = {"url": client.url, "token": client.token, "project": client.project,
                  "experiment_id": int(experiment_id), "poll_interval": self.poll_interval,
                  "cancel_grace_s": self.cancel_grace_s, "after_runs": self.after_runs, **ticket}  # fmt: skip
        try:
            client.request("PATCH", f"/experiments/{int(experiment_id)}",
                           json_body={"metadata": {"evalhub_bundle": ticket["bundle"]}})  # fmt: skip
        except EvalhubError as exc:  # only a resume from a machine without the files needs it
            log.info("evalhub: could not record the bundle of experiment %s: %s", experiment_id, exc)
        start_scheduler(config, growing=growing)

    def resume(self, source: Any, experiment_id: int) -> None:
        """Start a scheduler for an experiment whose runs were put back in the queue (``POST …/resume``):
        the files are shipped again from this machine where it has them, else the packages of the
        first submission are used."""
        from evalhub.execution import bundle
        from evalhub.execution.driver import jobs_from_server

        client = client_of(source)
        exp = client.get(f"/experiments/{int(experiment_id)}")
        config = exp.get("config") or {}
        jobs, _ = jobs_from_server(client, int(experiment_id))
        resources = dict(config.get("resources") or {})
        ticket = self.prepare(client, list(jobs.values()), resources, config.get("runtime_env"))
        ticket["bundle"] = bundle.merged((exp.get("metadata") or {}).get("evalhub_bundle"), ticket["bundle"])
        self.launch(client, int(experiment_id), ticket)


EXECUTORS = ("cluster", "process")


def schedules_on_cluster(executor: Any) -> bool:
    """Whether ``executor`` hands experiments to a scheduler on the cluster (a :class:`ClusterExecutor`
    or one of the same shape: ``prepare`` and ``launch``) rather than driving them from this process."""
    return hasattr(executor, "launch")


def default_executor(ray_address: str | None = None, *, address_source: str | None = None,
                     in_process: bool | None = None) -> ClusterExecutor | RayExecutor:  # fmt: skip
    """The executor of a submission that names none: a :class:`ClusterExecutor` (the experiment
    outlives the submitting process), or a :class:`RayExecutor` when ``in_process`` is true or,
    ``in_process`` unset, ``EVALHUB_EXECUTOR=process`` (``cluster`` is the default)."""
    if in_process is None:
        value = os.environ.get("EVALHUB_EXECUTOR", "cluster").strip().lower() or "cluster"
        if value not in EXECUTORS:
            raise EvalhubError(f"EVALHUB_EXECUTOR={value!r}: use one of {', '.join(EXECUTORS)}")
        in_process = value == "process"
    if in_process:
        return RayExecutor(address=ray_address, address_source=address_source)
    return ClusterExecutor(address=ray_address, address_source=address_source)


def _ship_runtime_env(runtime_env: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """A spec's ``config.runtime_env`` checked by Ray and with its local ``working_dir`` and
    ``py_modules`` uploaded (the scheduler on the cluster cannot read this machine's files)."""
    if not runtime_env:
        return {}
    try:
        from ray.runtime_env import RuntimeEnv

        RuntimeEnv(**runtime_env)
    except Exception as exc:
        raise ClusterError(f"config.runtime_env is not a valid Ray runtime_env: {short(exc)}") from exc
    env = dict(runtime_env)
    try:
        if env.get("working_dir"):
            from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

            env = upload_working_dir_if_needed(env, include_gitignore=True, scratch_dir=str(scratch))
        if env.get("py_modules"):
            from ray._private.runtime_env.py_modules import upload_py_modules_if_needed

            env = upload_py_modules_if_needed(env, include_gitignore=True, scratch_dir=str(scratch))
    except Exception as exc:
        raise ClusterError(f"config.runtime_env cannot be shipped to the cluster: {short(exc)}") from exc
    return env


__all__ = ["EXECUTORS", "ClusterExecutor", "Job", "RayExecutor", "default_executor", "schedules_on_cluster"]
