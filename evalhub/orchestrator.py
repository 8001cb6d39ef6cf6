"""From a spec to runs: validate, resolve names against the registry, expand, submit once, execute.

>>> exp = run_experiment(hub, '''
... name: tiny-progress
... models: [{model: tiny-gpt, checkpoints: [step-100, step-200, step-300]}]
... tasks: [arith-add, arith-mc]
... config: {limit: 50}
... ''')
>>> exp.compare()

Every name is checked before anything is created: an unknown model, checkpoint, runtime, task or
benchmark is refused with a :class:`~evalhub.errors.SpecError` naming the line, the field and the
closest registered names. The experiment and all its runs are created in one request carrying a
``client_key``, so a retried submission never creates them twice.
"""

from __future__ import annotations

import difflib
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalhub.adapters import RUNTIMES as ADAPTERS
from evalhub.adapters.base import CheckpointRef
from evalhub.client import client_of
from evalhub.engines import check_pairing
from evalhub.errors import EvalhubError, NotFound, SpecError
from evalhub.experiment import apply_scorers, score_by_spec
from evalhub.services.registry import Registry
from evalhub.spec import ExperimentSpec, RunConfig, line_of, parse_spec

if TYPE_CHECKING:
    from evalhub.execution.executor import Job
    from evalhub.experiment import Experiment

log = logging.getLogger("evalhub.orchestrator")

RUNTIMES = tuple(ADAPTERS)  # the one list: evalhub.adapters.RUNTIMES


@dataclass
class PlannedRun:
    """One run of the product models x checkpoints x runtimes x tasks, resolved against the registry."""

    name: str
    model: dict[str, Any]
    checkpoint: dict[str, Any]
    runtime: str
    task: dict[str, Any]
    config: dict[str, Any]
    max_attempts: int = 3
    tags: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # the spec's params over default_params

    def checkpoint_ref(self) -> CheckpointRef:
        """What a worker needs to load this run's weights."""
        return CheckpointRef(
            model=str(self.model["name"]),
            name=str(self.checkpoint["name"]),
            uri=str(self.checkpoint.get("uri") or ""),
            runtime=self.runtime,
            adapter=self.model.get("adapter"),
            code_uri=self.model.get("code_uri"),
            params={**(self.model.get("default_params") or {}), **self.params},
            step=self.checkpoint.get("step"),
        )

    def run_create(self) -> dict[str, Any]:
        """The ``RunCreate`` body of docs/rest-api.md."""
        return {
            "name": self.name,
            "type": "offline_eval",
            "model": self.model["name"],
            "checkpoint": self.checkpoint["name"],
            "runtime": self.runtime,
            "task": self.task["name"],
            "config": self.config,
            "tags": {**self.tags, "params": self.params} if self.params else self.tags,
            "max_attempts": self.max_attempts,
        }


@dataclass
class Plan:
    """A validated spec: its effective config and its runs."""

    spec: ExperimentSpec
    spec_yaml: str
    config: RunConfig
    runs: list[PlannedRun]


def _unknown(kind: str, name: str, known: list[str], text: str, loc: list[Any], hint: str = "") -> SpecError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        msg = f"unknown {kind} {name!r}; did you mean {' or '.join(repr(c) for c in close)}?"
    elif known:
        shown = ", ".join(repr(k) for k in known[:10]) + (", …" if len(known) > 10 else "")
        msg = f"unknown {kind} {name!r}; registered: {shown}"
    else:
        msg = f"unknown {kind} {name!r}; none is registered"
    if hint:
        msg += f" ({hint})"
    return SpecError(msg, line=line_of(text, loc), field=_dotted(loc))


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _names(registry: Registry, kind: str, **filters: Any) -> list[str]:
    return [str(item["name"]) for item in registry.client.paged(f"/{kind}", **filters)]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def effective_config(spec: ExperimentSpec, benchmark: dict[str, Any] | None, text: str) -> RunConfig:
    """The spec's config over the benchmark's (what the spec sets wins)."""
    from pydantic import ValidationError

    if not benchmark or not benchmark.get("config"):
        return spec.config
    bench_cfg = dict(benchmark["config"])
    generation = bench_cfg.get("generation")
    if isinstance(generation, dict) and "max_gen_toks" in generation:  # lm-eval spelling in a benchmark
        generation = dict(generation)
        generation.setdefault("max_new_tokens", generation.pop("max_gen_toks"))
        generation.pop("do_sample", None)
        bench_cfg["generation"] = generation
    merged = _merge(bench_cfg, spec.config.model_dump(exclude_unset=True))
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SpecError(
            f"benchmark {benchmark.get('name')!r} has an invalid config at {loc}: {err['msg']}",
            line=line_of(text, ["benchmark"]),
            field="benchmark",
        ) from None


def plan(source: Any, spec: Any) -> Plan:
    """Validate ``spec`` (YAML text, path, dict or :class:`ExperimentSpec`) against the registry and expand it.

    ``source`` is a :class:`~evalhub.client.Client` (or anything with one, such as a Hub)."""
    registry = Registry(client_of(source))
    parsed, text = parse_spec(spec)
    benchmark = None
    if parsed.benchmark:
        try:
            benchmark = registry.benchmark(parsed.benchmark)
        except NotFound:
            raise _unknown(
                "benchmark", parsed.benchmark, _names(registry, "benchmarks"), text, ["benchmark"]
            ) from None
    config = effective_config(parsed, benchmark, text)
    task_names = list(dict.fromkeys([*parsed.tasks, *((benchmark or {}).get("tasks") or [])]))
    tasks: dict[str, dict[str, Any]] = {}
    known_tasks: list[str] | None = None
    for name in task_names:
        try:
            tasks[name] = registry.task(name)
        except NotFound:
            known_tasks = known_tasks if known_tasks is not None else _names(registry, "tasks")
            index = parsed.tasks.index(name) if name in parsed.tasks else None
            loc: list[Any] = ["tasks", index] if index is not None else ["benchmark"]
            raise _unknown(
                "task",
                name,
                known_tasks,
                text,
                loc,
                hint=f"an lm-eval task is registered with hub.register_task({name!r}, lm_eval_task={name!r})",
            ) from None
    _check_metric_plugins(config, text)
    run_config = _run_config(config)
    runs: dict[str, PlannedRun] = {}
    known_models: list[str] | None = None
    for i, entry in enumerate(parsed.models):
        try:
            model = registry.model(entry.model)
        except NotFound:
            known_models = known_models if known_models is not None else _names(registry, "models")
            raise _unknown("model", entry.model, known_models, text, ["models", i, "model"]) from None
        checkpoints = list(registry.client.paged("/checkpoints", model=model["name"]))
        by_name = {str(c["name"]): c for c in checkpoints}
        if entry.checkpoints == "all":
            if not checkpoints:
                raise SpecError(
                    f"model {entry.model!r} has no registered checkpoints",
                    line=line_of(text, ["models", i, "model"]),
                    field=f"models[{i}].checkpoints",
                )
            chosen = checkpoints
        else:
            chosen = []
            for j, name in enumerate(entry.checkpoints):
                if name not in by_name:
                    raise _unknown(
                        f"checkpoint of model {entry.model!r}",
                        name,
                        list(by_name),
                        text,
                        ["models", i, "checkpoints", j],
                    )
                chosen.append(by_name[name])
        runtimes = entry.runtimes or [str(model.get("runtime") or "hf")]
        for j, runtime in enumerate(runtimes):
            if runtime not in RUNTIMES:
                raise _unknown("runtime", runtime, list(RUNTIMES), text, ["models", i, "runtimes", j])
        for j, runtime in enumerate(runtimes):
            for task in tasks.values():
                problem = check_pairing(task, runtime)
                if problem:
                    loc = ["models", i, "runtimes", j] if entry.runtimes else ["models", i, "model"]
                    raise SpecError(problem, line=line_of(text, loc), field=_dotted(loc))
        for task in tasks.values():
            if task.get("engine") == "t2i":
                from evalhub.engines.t2i import check_task

                try:
                    check_task(task)
                except EvalhubError as exc:
                    raise SpecError(str(exc), line=line_of(text, ["tasks"]), field="tasks") from None
        for ckpt in chosen:
            for runtime in runtimes:
                for task_name, task in tasks.items():
                    name = f"{model['name']}/{ckpt['name']}/{runtime}/{task_name}"
                    runs.setdefault(
                        name,
                        PlannedRun(
                            name=name,
                            model=model,
                            checkpoint=ckpt,
                            runtime=runtime,
                            task=task,
                            config=run_config,
                            max_attempts=config.max_attempts,
                            tags={"step": ckpt.get("step"), "uri": ckpt.get("uri")},
                            params=dict(entry.params),
                        ),
                    )
    if config.apply_chat_template:
        _check_chat_templates(list(runs.values()), text)
    _check_image_checkpoints(parsed, list(runs.values()), text)
    return Plan(parsed, text, config, list(runs.values()))


def _check_metric_plugins(config: RunConfig, text: str) -> None:
    """Every ``config.metric_plugins`` entry builds here (a name the evalhub.metrics entry points know,
    an importable module:Class, kwargs it takes), else a SpecError at its line."""
    from evalhub.errors import InvalidValue
    from evalhub.metric_plugins import resolve

    for i, entry in enumerate(config.metric_plugins):
        try:
            resolve(entry)
        except InvalidValue as exc:
            loc = ["config", "metric_plugins", i]
            raise SpecError(str(exc), line=line_of(text, loc), field=_dotted(loc)) from None


def _check_image_checkpoints(parsed: ExperimentSpec, runs: list[PlannedRun], text: str) -> None:
    """A diffusers checkpoint that isn't a pipeline, or a size it can't produce: refused before any run
    exists (where its folder is on this machine; a worker refuses the others when it loads them)."""
    from evalhub.engines.t2i import check_checkpoint

    for run in runs:
        if run.runtime != "diffusers" or run.task.get("engine") != "t2i":
            continue
        try:
            check_checkpoint(run.task, run.checkpoint_ref(), run.config)
        except EvalhubError as exc:
            i = next((j for j, m in enumerate(parsed.models) if m.model == run.model["name"]), 0)
            raise SpecError(str(exc), line=line_of(text, ["models", i, "model"]), field=f"models[{i}]") from None


def _check_chat_templates(runs: list[PlannedRun], text: str) -> None:
    """``config.apply_chat_template`` with a checkpoint whose tokenizer has none: refused before any run
    exists (where its folder is on this machine; a worker refuses the others when it loads them)."""
    from evalhub.adapters.hf import has_chat_template

    for run in runs:
        uri = str(run.checkpoint.get("uri") or "")
        if run.runtime in ("hf", "vllm") and has_chat_template(uri) is False:
            raise SpecError(
                f"apply_chat_template is set, but the tokenizer of {run.model['name']}/"
                f"{run.checkpoint['name']} ({uri}) has no chat template; set it to false or use a "
                "checkpoint whose tokenizer has one",
                line=line_of(text, ["config", "apply_chat_template"]),
                field="config.apply_chat_template",
            )


def _run_config(config: RunConfig) -> dict[str, Any]:
    """The per-run config: what the worker needs, and what provenance records."""
    return {
        "limit": config.limit,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "generation": config.generation.as_gen_kwargs(),
        "num_fewshot": config.num_fewshot,
        "apply_chat_template": config.apply_chat_template,
        "fewshot_as_multiturn": config.fewshot_as_multiturn,
        "system_instruction": config.system_instruction,
        "include_path": config.include_path,
        "max_attempts": config.max_attempts,
        "engine": "lm_eval",
        **({"metric_plugins": config.metric_plugins} if config.metric_plugins else {}),
    }


def submit(source: Any, the_plan: Plan, client_key: str | None = None) -> tuple[dict[str, Any], list[Job]]:
    """Create the experiment and its runs, in pages of at most 1,000 runs; the jobs to hand to an
    executor (the runs still ``queued``).

    The first page goes with the experiment (``POST /experiments``, under ``client_key``); the others
    follow as ``POST /experiments/{id}/runs``. Every page is idempotent (the same ``client_key`` answers
    the same experiment, a run name it has already is not created again), so a submission that failed
    half-way is completed by submitting the same plan again with the same ``client_key``.
    """
    from evalhub.execution.executor import Job
    from evalhub.protocol import MAX_RUNS_PER_REQUEST as PAGE

    client = client_of(source)
    creates = [run.run_create() for run in the_plan.runs]
    body = {
        "name": the_plan.spec.name,
        "spec": the_plan.spec.model_dump(mode="json"),
        "spec_yaml": the_plan.spec_yaml,
        "config": the_plan.config.model_dump(mode="json"),
        "client_key": client_key or str(uuid.uuid4()),
        "runs": creates[:PAGE],
    }
    experiment: dict[str, Any] = client.post("/experiments", body)
    exp_id = int(experiment["id"])
    rows = {str(r["name"]): r for r in experiment.get("runs") or []}
    missing = [c for c in creates[:PAGE] if c["name"] not in rows]  # a resubmission's first answer
    pages = [missing] if missing else []
    pages += [creates[i : i + PAGE] for i in range(PAGE, len(creates), PAGE)]
    for page in pages:
        answer = client.post(f"/experiments/{exp_id}/runs", {"runs": page})
        rows.update((str(r["name"]), r) for r in answer.get("runs") or [])
    jobs = []
    for planned in the_plan.runs:
        row = rows.get(planned.name)
        if row is None or row.get("status") != "queued":
            continue  # a resubmission of finished work: nothing to do for it
        jobs.append(
            Job(
                run_id=int(row["id"]),
                checkpoint=planned.checkpoint_ref(),
                task=planned.task,
                config=planned.config,
                max_attempts=planned.max_attempts,
            )
        )
    return experiment, jobs


def run_experiment(
    hub: Any,
    spec: Any,
    wait: bool = True,
    executor: Any = None,
    progress: bool = True,
    client_key: str | None = None,
) -> Experiment:
    """Validate, submit and execute an experiment; return its handle.

    ``executor`` defaults to :func:`~evalhub.execution.default_executor`: a
    :class:`~evalhub.execution.ClusterExecutor` hands the experiment to a scheduler that lives on the
    Ray cluster (``RAY_ADDRESS``, else evalhub's local cluster, which outlives this process): this
    process may exit or be killed, its kernel restarted, and the runs go on; ``hub.experiment(id)``
    reattaches from any process. With ``wait=False`` the call returns once the scheduler has them.

    A :class:`~evalhub.execution.RayExecutor` (given, or ``EVALHUB_EXECUTOR=process``) drives the runs
    from a thread of this process instead (with ``wait=False`` in the background); its death stops
    the experiment (the server re-queues the runs it held). Every experiment of the process shares
    one Ray connection, so several run side by side either way. A spec's ``scorers`` are applied once
    the runs end: on the cluster by the experiment's scheduler (a call that waits returns once it has
    scored them too), or by the driver thread here.
    """
    from evalhub.experiment import Experiment

    the_plan = plan(hub, spec)
    experiment, jobs = submit(hub, the_plan, client_key=client_key)
    exp = Experiment(hub, int(experiment["id"]), experiment)
    from evalhub.execution.executor import default_executor, schedules_on_cluster

    if executor is None:
        executor = default_executor()
    exp.executor = executor
    resources = the_plan.config.resources.model_dump()
    runtime_env = the_plan.config.runtime_env
    if schedules_on_cluster(executor):  # a scheduler on the cluster: nothing runs in this process
        if jobs:
            handover(hub, exp, executor, jobs, resources, runtime_env)
        if wait:
            exp.wait(progress=progress)
            if the_plan.spec.scorers:
                exp.wait_scheduler()
        return exp

    def drive() -> None:
        try:
            execute(executor, hub, exp.id, jobs, resources, runtime_env)
            apply_scorers(exp, the_plan.spec.scorers, executor)
        except BaseException as exc:  # surfaced by exp.wait()
            log.exception("evalhub: the driver of experiment %s failed", exp.id)
            exp._driver_error = exc
            _fail_unfinished(hub, jobs, f"the driver stopped: {exc}")

    if jobs:
        if wait and hasattr(executor, "start"):
            try:
                executor.start()  # a Ray that cannot start is an error here, not in a thread
            except Exception as exc:
                _fail_unfinished(hub, jobs, f"the executor did not start: {exc}")
                raise
        thread = threading.Thread(target=drive, name=f"evalhub-driver-{exp.id}", daemon=True)
        exp._driver = thread
        thread.start()
    if wait:
        exp.wait(progress=progress)
    return exp


def execute(
    executor: Any,
    hub: Any,
    experiment_id: int,
    jobs: list[Job],
    resources: dict[str, Any],
    runtime_env: dict[str, Any] | None = None,
) -> Any:
    """``executor.execute`` of the jobs; ``runtime_env`` passed only when there is one (an executor of
    one's own need not know the keyword without one)."""
    if runtime_env:
        return executor.execute(hub, experiment_id, jobs, resources, runtime_env=runtime_env)
    return executor.execute(hub, experiment_id, jobs, resources)


def handover(
    hub: Any,
    exp: Experiment,
    executor: Any,
    jobs: list[Job],
    resources: dict[str, Any],
    runtime_env: dict[str, Any] | None = None,
    growing: bool = False,
) -> None:
    """Give the experiment's queued runs to the scheduler on the cluster (:class:`ClusterExecutor`);
    what it refuses (more GPUs than any node has, files too big to ship, a cluster that does not
    answer) fails the runs with the reason and raises here. ``growing``: ``jobs`` were added to an
    experiment whose scheduler may still run its earlier runs (it takes these too)."""
    try:
        if getattr(executor, "after_runs", False) is None:
            executor.after_runs = score_by_spec  # the spec's scorers, applied on the cluster
        ticket = executor.prepare(hub, jobs, resources, runtime_env)
        executor.launch(hub, exp.id, ticket, growing=growing)
    except Exception as exc:
        _fail_unfinished(hub, jobs, f"the cluster did not take the experiment: {exc}")
        raise


def _fail_unfinished(hub: Any, jobs: list[Job], error: str) -> None:
    """Runs the driver can no longer execute end ``failed`` with the reason, never stay queued.

    The server's state machine decides: a run that finished or was cancelled meanwhile stays so."""
    from evalhub.errors import EvalhubError
    from evalhub.protocol import ACTIVE

    for job in jobs:
        try:
            client = client_of(hub)
            if client.get(f"/runs/{job.run_id}").get("status") in ACTIVE:
                client.post(f"/runs/{job.run_id}/status", {"status": "failed", "error": error})
        except EvalhubError:  # finished meanwhile, or the server is away (it reaps leases itself)
            pass


__all__ = ["Plan", "PlannedRun", "apply_scorers", "effective_config", "plan", "run_experiment", "submit"]
