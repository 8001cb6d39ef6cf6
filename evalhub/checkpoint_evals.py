"""Evaluations that run themselves: each checkpoint a training run logs with ``evaluate=`` is evaluated
as soon as it is written, and its runs are appended to one growing checkpoint-progress experiment per
training run and spec, so the eval curve grows beside the training loss while training goes on.

``evaluate`` is the experiment without its model: a task or benchmark name, a dict (``tasks`` or
``benchmark``, ``config``, optionally ``name``), YAML text or a path to a YAML file. The model and
checkpoint are the ones logged. Training never waits for them. Where they run is the executor's
(:func:`~evalhub.execution.default_executor` when none is given):

- a :class:`~evalhub.execution.ClusterExecutor` (the default) hands each checkpoint's runs to the
  experiment's scheduler on the Ray cluster: the one still evaluating earlier checkpoints takes them
  in a round after its current one, or a new one starts. The training process may end or die: the
  evaluations go on.
- a :class:`~evalhub.execution.RayExecutor` (``EVALHUB_EXECUTOR=process``) drives each checkpoint's
  runs from a thread of this process; at exit the process waits for those still going (a process
  killed meanwhile leaves them to the server, which re-queues what its workers held: ``evalhub resume
  <experiment>`` goes on).

>>> run = hub.init_run("train-7", model="tiny-gpt", type="training")
>>> run.log_checkpoint("out/step-100", step=100, evaluate={"tasks": ["arith-add"], "config": {"limit": 50}})
>>> run.evaluations.compare()       # a row per checkpoint evaluated so far
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalhub.client import client_of
from evalhub.errors import EvalhubError, InvalidValue, NotFound
from evalhub.experiment import Experiment
from evalhub.services.registry import Registry

log = logging.getLogger("evalhub.execution")

_OWNED = ("models",)
"""Keys of a spec that ``evaluate=`` may not set: the checkpoint logged is the model evaluated."""


def spec_fragment(source: Any, evaluate: Any) -> dict[str, Any]:
    """``evaluate`` as a spec without its models (a dict): a name is a benchmark if one is registered
    by that name, else a task; YAML text and ``.yaml`` paths are read; an :class:`ExperimentSpec` is
    taken apart."""
    import yaml

    from evalhub.spec import ExperimentSpec

    if isinstance(evaluate, ExperimentSpec):
        fragment: Any = evaluate.model_dump(mode="json", exclude_defaults=True)
        fragment.pop("models", None)
    elif isinstance(evaluate, Mapping):
        fragment = dict(evaluate)
    elif isinstance(evaluate, str | os.PathLike):
        text = os.fspath(evaluate)
        if isinstance(evaluate, os.PathLike) or ("\n" not in text and text.endswith((".yaml", ".yml"))):
            path = Path(text).expanduser()
            if not path.is_file():
                raise InvalidValue(f"evaluate={text!r}: no such spec file")
            text = path.read_text()
        if "\n" in text or ":" in text:
            try:
                fragment = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise InvalidValue(f"evaluate= is not valid YAML: {exc}") from None
        else:
            name = text.strip()
            if not name:
                raise InvalidValue("evaluate= names no task or benchmark")
            try:
                Registry(client_of(source)).benchmark(name)
                fragment = {"benchmark": name}
            except NotFound:
                fragment = {"tasks": [name]}
    else:
        raise InvalidValue(
            f"evaluate= takes a task or benchmark name, a dict, YAML text or a spec file, "
            f"got {type(evaluate).__name__}"
        )
    if not isinstance(fragment, dict):
        raise InvalidValue(
            f"evaluate= must describe a mapping (tasks, config, ...), got {type(fragment).__name__}"
        )
    owned = [key for key in _OWNED if key in fragment]
    if owned:
        raise InvalidValue(
            f"evaluate= may not set {', '.join(owned)}: the checkpoint logged is the model evaluated"
        )
    if fragment.get("scorers"):
        raise InvalidValue(
            "evaluate= does not apply scorers: score the experiment when you want, run.evaluations.score(...)"
        )
    return fragment


class CheckpointEvaluations:
    """The checkpoint-progress experiment of one training run and spec, and the threads driving it.

    Made by :meth:`evalhub.tracking.Run.log_checkpoint`; one per distinct ``evaluate`` of a run."""

    def __init__(
        self, source: Any, run_id: int, run_name: str, fragment: dict[str, Any], executor: Any = None
    ) -> None:
        self.source = source
        self.client = client_of(source)
        self.run_id = int(run_id)
        self.fragment = fragment
        self.name = str(fragment.get("name") or f"{run_name or f'run-{run_id}'} evals")
        self.key = f"evalhub-checkpoint-evals:{self.run_id}:{self.name}"
        self.executor = executor
        self.experiment: Experiment | None = None
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def add(self, model: str, checkpoint: str) -> list[int]:
        """Plan and submit the runs of ``model/checkpoint`` into the experiment (created with the first)
        and start driving them; the new runs' ids. A spec the registry refuses is a
        :class:`~evalhub.errors.SpecError` here, before any run exists."""
        from evalhub.orchestrator import plan, submit

        spec = {**self.fragment, "name": self.name, "models": [{"model": model, "checkpoints": [checkpoint]}]}
        the_plan = plan(self.client, spec)
        with self._lock:
            answer, jobs = submit(self.client, the_plan, client_key=self.key)
            if self.experiment is None:
                self.experiment = Experiment(self.source, int(answer["id"]), answer)
                self.client.request(
                    "PATCH",
                    f"/experiments/{self.experiment.id}",
                    json_body={"metadata": {"evalhub_checkpoint_evals": {"training_run": self.run_id}}},
                )
            if not jobs:
                return []
            from evalhub.execution.executor import default_executor, schedules_on_cluster
            from evalhub.orchestrator import handover

            executor = self.executor
            if executor is None:
                executor = self.executor = default_executor()
            resources = the_plan.config.resources.model_dump()
            self.experiment.executor = executor
            if schedules_on_cluster(executor):  # the experiment's scheduler on the cluster takes them
                handover(self.source, self.experiment, executor, jobs, resources, the_plan.config.runtime_env,
                         growing=True)  # fmt: skip
                return [job.run_id for job in jobs]
            executor.start()  # Ray up (or a clear error) here, not in the thread
            _wait_at_exit_once()
            thread = threading.Thread(
                target=self._drive,
                args=(executor, jobs, resources, the_plan.config.runtime_env),
                name=f"evalhub-checkpoint-evals-{self.experiment.id}-{checkpoint}",
                daemon=True,
            )
            self.threads.append(thread)
            self.experiment._driver = thread
            _PENDING.add(self)
            thread.start()
        return [job.run_id for job in jobs]

    def _drive(self, executor: Any, jobs: list[Any], resources: dict[str, Any], runtime_env: Any) -> None:
        from evalhub.orchestrator import _fail_unfinished, execute

        assert self.experiment is not None
        try:
            execute(executor, self.source, self.experiment.id, jobs, resources, runtime_env)
        except BaseException as exc:
            log.exception("evalhub: the evaluation of checkpoints of run %s failed", self.run_id)
            self.errors.append(exc)
            self.experiment._driver_error = exc
            _fail_unfinished(self.source, jobs, f"the driver stopped: {exc}")

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def wait(self, timeout: float | None = None) -> Experiment | None:
        """Block until every checkpoint submitted so far is evaluated; the experiment."""
        if self.experiment is not None and not self.threads:  # on the cluster: the server's state
            return self.experiment.wait(timeout=timeout)
        for thread in list(self.threads):
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"the evaluations of run {self.run_id}'s checkpoints are still running")
        if self.errors:
            raise EvalhubError(f"evaluating checkpoints of run {self.run_id} failed: {self.errors[-1]}")
        return self.experiment


_PENDING: set[CheckpointEvaluations] = set()
_HOOKED = False


def _wait_at_exit_once() -> None:
    """Hook :func:`_wait_at_exit` once, after Ray is up: exit hooks run last-registered first, so it
    runs before Ray's own shutdown and this process's release of Ray."""
    global _HOOKED
    if not _HOOKED:
        _HOOKED = True
        atexit.register(_wait_at_exit)


def _wait_at_exit() -> None:
    """At exit, the evaluations still going finish first (Ray is still up: registered after it)."""
    for evals in list(_PENDING):
        if not evals.running():
            continue
        exp = evals.experiment
        print(
            f"evalhub: waiting for the evaluations of run {evals.run_id}'s checkpoints"
            f" (experiment {exp.id if exp else '?'}); Ctrl-C leaves them queued for `evalhub resume`",
            file=sys.stderr,
        )
        try:
            evals.wait()
        except KeyboardInterrupt:
            return
        except EvalhubError as exc:
            print(f"evalhub: {exc}", file=sys.stderr)


__all__ = ["CheckpointEvaluations", "spec_fragment"]
