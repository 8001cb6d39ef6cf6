"""The scheduler that lives on the cluster: one detached, named actor per experiment, running the
loop of :mod:`evalhub.execution.driver` over the run states the server owns.

Nothing of it lives in the process that submitted the experiment, so a closed notebook, a restarted
kernel or a killed ``evalhub run`` stops nothing. It is named ``evalhub-scheduler-<server>-<id>`` in
the ``evalhub`` namespace: submitting or resuming an experiment whose scheduler still runs finds that
one. Ray restarts it when its process dies (``max_restarts=-1``, with the same arguments); the new
one rebuilds the experiment's jobs from the server, declares lost the attempts its predecessor's
workers held (they died with it) and goes on. When no run is queued or running any more, it ends
itself (without a restart), after what the submission asked for once the runs end (``after_runs``:
the spec's ``scorers`` applied to the finished runs; state ``scoring`` meanwhile).

While it lives it beats: every :data:`BEAT_S` seconds it writes a counter into the experiment's
metadata (``evalhub_scheduler``), so a process waiting on the experiment anywhere
(:meth:`evalhub.experiment.Experiment.wait`, ``evalhub attach``) can tell a scheduler that is gone
(the cluster stopped, its node died) from a slow one, and say so instead of waiting forever.

On a loopback tracking server (the embedded one) it runs on the node of the process that submitted
(the one that can reach the server); elsewhere anywhere.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

from evalhub.execution.cluster import NAMESPACE

log = logging.getLogger("evalhub.execution")

PREFIX = "evalhub-scheduler-"
BEAT_S = 5.0  # how often the scheduler says, through the server, that it lives


def server_digest(url: str, project: str) -> str:
    """A short name of a tracking server and project, for the names of actors that serve them."""
    return hashlib.sha256(f"{url.rstrip('/')}\0{project}".encode()).hexdigest()[:12]


def scheduler_name(url: str, project: str, experiment_id: int) -> str:
    """The actor name of an experiment's scheduler (unique per server, project and experiment)."""
    return f"{PREFIX}{server_digest(url, project)}-{int(experiment_id)}"


class Scheduler:
    """The actor (see the module docstring); ``config`` is what :class:`ClusterExecutor` prepared."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.started = time.time()
        self.state = "starting"
        self.error: str | None = None
        self.driver: Any = None
        self.beats = 0
        self._beat_lock = threading.Lock()
        self._beat_client: Any = None
        self._more = False  # runs were added since the round in progress read the experiment
        self._more_lock = threading.Lock()
        threading.Thread(target=self._run, name="evalhub-scheduler", daemon=True).start()
        threading.Thread(target=self._beat, name="evalhub-scheduler-beat", daemon=True).start()

    def ping(self) -> dict[str, Any]:
        """What it is doing: ``state`` (starting, running, done), workers, runs in flight."""
        driver = self.driver
        workers = 0 if driver is None else sum(len(g.workers) for g in driver.groups.values())
        return {
            "experiment_id": self.config["experiment_id"],
            "state": self.state,
            "error": self.error,
            "started": self.started,
            "workers": workers,
            "in_flight": sorted(driver.in_flight) if driver is not None else [],
        }

    def take(self, config: dict[str, Any]) -> bool:
        """Runs were added to the experiment (a growing one: :mod:`evalhub.checkpoint_evals`): take them
        too, with the files of ``config``'s bundle, in a round after the one in progress. False when
        this scheduler is done (it ends: the caller starts a new one)."""
        from evalhub.execution.bundle import merged

        with self._more_lock:
            if self.state == "done":
                return False
            self.config = {**self.config, "bundle": merged(self.config.get("bundle"), config.get("bundle"))}
            self._more = True
            return True

    def _client(self) -> Any:
        """A client of the experiment's tracking server, as the submission named it."""
        from evalhub.client import Client

        c = self.config
        return Client.unattended(c["url"], token=c.get("token"), project=c.get("project"))

    def _driver(self) -> Any:
        import ray

        from evalhub.execution.driver import Driver, _Group

        c = self.config
        client = self._client()
        actor = ray.remote(_worker_class())
        bundle = c.get("bundle") or {}
        uris = sorted({f["uri"] for f in (bundle.get("files") or {}).values()})
        user_env = dict(c.get("runtime_env") or {})
        env_vars = {**(user_env.get("env_vars") or {}), **(c.get("env") or {})}
        runtime_env = {**user_env, "env_vars": env_vars}
        if uris:
            runtime_env["py_modules"] = [*(user_env.get("py_modules") or []), *uris]
        context = {"bundle": bundle, "relay": c.get("relay") or {}}

        def factory(group: _Group) -> Any:
            options = {**group.shape.options(), "max_restarts": 0, "runtime_env": runtime_env}
            return actor.options(**options).remote(
                client.url,
                client.token,
                client.project,
                _asdict(group.checkpoint),
                c.get("env") or {},
                context,
            )

        return Driver(client, int(c["experiment_id"]), dict(c.get("resources") or {}), factory,
                      poll_interval=float(c.get("poll_interval") or 1.0),
                      cancel_grace_s=float(c.get("cancel_grace_s") or 60.0), adopt_running=True)  # fmt: skip

    def _run(self) -> None:
        while True:
            try:
                with self._more_lock:
                    self._more = False
                self.driver = self._driver()
                self.state = "running"
                self.driver.run()
                self.state = "scoring"
                self._score()
                with self._more_lock:
                    if self._more:  # runs were added meanwhile: a round of their own takes them
                        continue
                    self.state = "done"
                break
            except Exception as exc:  # a bug or a long outage: log it and start the loop over
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("evalhub: the scheduler of experiment %s failed; starting over",
                              self.config.get("experiment_id"))  # fmt: skip
                time.sleep(5.0)
        self._send_beat()  # the last beat says done
        self._end()

    def _score(self) -> None:
        """What the submitting side asked for once the runs end (``after_runs(client, experiment_id)``:
        the spec's scorers, from :func:`evalhub.orchestrator.score_by_spec`). A failure is logged and
        recorded in ``error``; the runs stay as they are."""
        after = self.config.get("after_runs")
        if not callable(after):
            return
        experiment_id = int(self.config["experiment_id"])
        try:
            after(self._client(), experiment_id)
        except Exception as exc:
            self.error = f"after the runs: {type(exc).__name__}: {exc}"
            log.exception("evalhub: the scheduler of experiment %s failed after its runs", experiment_id)

    def _beat(self) -> None:
        """Write a rising counter into the experiment's metadata while the loop runs (a waiting
        process compares counters, never clocks: the machines' clocks need not agree)."""
        while self.state != "done":
            self._send_beat()
            time.sleep(BEAT_S)

    def _send_beat(self) -> None:
        """One beat (the last says ``done``: sent by the loop itself before the actor ends)."""
        c = self.config
        with self._beat_lock:
            if self._beat_client is None:
                self._beat_client = self._client()
            self.beats += 1
            mark = {"beat": self.beats, "started": self.started, "state": self.state, "every_s": BEAT_S}
            try:
                self._beat_client.request(
                    "PATCH",
                    f"/experiments/{int(c['experiment_id'])}",
                    json_body={"metadata": {"evalhub_scheduler": mark}},
                )
            except Exception as exc:  # the server away for a moment: the next beat tries again
                log.info(
                    "evalhub: the scheduler of experiment %s could not beat: %s", c["experiment_id"], exc
                )

    def _end(self) -> None:
        import ray

        try:
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
        except Exception:  # pragma: no cover - the actor is going away anyway
            pass


def _worker_class() -> type:
    from evalhub.execution.worker import Worker

    return Worker


def _asdict(ref: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(ref)


def start_scheduler(config: dict[str, Any], growing: bool = False) -> Any:
    """Start (or find) the scheduler of ``config["experiment_id"]`` on the connected cluster; returns
    its handle once it answers. ``growing``: runs were just added to an experiment whose scheduler may
    be running; that one takes them (:meth:`Scheduler.take`), or a new one starts if it is done."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = scheduler_name(config["url"], config.get("project") or "default", config["experiment_id"])
    bundle = config.get("bundle") or {}
    uris = sorted({f["uri"] for f in (bundle.get("files") or {}).values()})
    options: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "lifetime": "detached",
                               "get_if_exists": True, "max_restarts": -1, "num_cpus": 0,
                               "max_concurrency": 4}  # fmt: skip
    if uris:  # it holds the packages: they stay on the cluster while it lives
        options["runtime_env"] = {"py_modules": uris}
    route = config.get("relay") or {}
    if route.get("loopback") and config.get("node_id"):
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(config["node_id"], soft=False)
    deadline = time.monotonic() + 60
    while True:
        actor = ray.remote(Scheduler).options(**options).remote(config)
        try:
            if ray.get(actor.ping.remote(), timeout=180).get("state") != "done" and (
                not growing or ray.get(actor.take.remote(config), timeout=180)
            ):
                return actor
        except ray.exceptions.RayActorError:  # it ended between the lookup and the ping
            pass
        # the experiment's previous scheduler, done and about to end: new runs need a new one
        if time.monotonic() > deadline:
            raise TimeoutError(f"the scheduler {name} that ended did not go within 60 s")
        time.sleep(0.5)


def find_scheduler(url: str, project: str, experiment_id: int) -> Any | None:
    """The running scheduler of an experiment, or None (call while connected to the cluster)."""
    import ray

    try:
        return ray.get_actor(scheduler_name(url, project, experiment_id), namespace=NAMESPACE)
    except ValueError:
        return None


__all__ = ["BEAT_S", "PREFIX", "Scheduler", "find_scheduler", "scheduler_name", "start_scheduler"]
