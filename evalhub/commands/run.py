"""``evalhub run SPEC.yaml``, ``evalhub attach|cancel|resume EXPERIMENT_ID`` and ``evalhub demo``.

``run`` exits 0 when every run completed, 1 when any failed (or was cancelled), 2 on a bad spec.
``run`` hands the experiment to a scheduler on the Ray cluster (killing the command stops nothing;
``attach`` follows it again from any machine that reaches the server); ``run --detach`` returns at
once with the experiment's id; ``run --in-process`` drives the runs from the command itself (Ctrl-C
cancels them), as ``EVALHUB_EXECUTOR=process`` does.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from evalhub.errors import SpecError


def _connect(url: str | None, token: str | None, project: str | None, home: str | None = None) -> Any:
    import evalhub

    return evalhub.connect(url, token=token, project=project, home=home)


def _executor(ray_address: str | None, on_cluster: bool | None, detach: bool) -> Any:
    """The executor of ``--on-cluster/--in-process`` (unset: :func:`default_executor`'s choice);
    ``--detach`` needs the cluster."""
    from evalhub.execution.executor import default_executor

    if detach:
        if on_cluster is False:
            raise click.UsageError("--detach hands the experiment to the cluster: it cannot be --in-process")
        on_cluster = True
    source = _address_source() if ray_address else None
    in_process = None if on_cluster is None else not on_cluster
    return default_executor(ray_address, address_source=source, in_process=in_process)


_WHERE = ("Schedule on the Ray cluster itself (the default: killing this command stops nothing), or drive "
          "the runs from this command (Ctrl-C cancels them; also EVALHUB_EXECUTOR=process).")  # fmt: skip


def _address_source() -> str:
    """Where ``--ray-address`` came from: the command line or ``RAY_ADDRESS`` (named in the error when
    nothing answers there)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.get_parameter_source("ray_address") == click.core.ParameterSource.ENVIRONMENT:
        return "the RAY_ADDRESS environment variable"
    return "--ray-address"


def _report(hub: Any, exp: Any) -> int:
    """Print the comparison and the failures; the exit code."""
    from evalhub.experiment import table_text

    table = exp.compare()
    scores = [c for c in table.columns if c not in _PERF and c not in _BASE]
    perf = [c for c in ("latency_p50_ms", "samples_per_s") if c in table.columns]
    click.echo(table_text(table, metrics=scores + perf))
    info = exp.info()
    failed = exp.failed_runs()
    for run in failed:
        click.echo(f"failed: {run.get('name')}: {run.get('error')}", err=True)
    counts = info.get("counts") or {}
    dashboard = getattr(exp.executor, "dashboard_url", None)
    if dashboard:
        click.echo(f"Ray dashboard: {dashboard}")
    click.echo(
        f"experiment {exp.id} {info.get('status')}: "
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        + f" ({hub.url})"
    )
    return 0 if info.get("status") == "completed" else 1


_BASE = {"run_id", "name", "model", "checkpoint", "step", "runtime", "task", "status"}
_PERF = {
    "latency_p50_ms",
    "latency_p95_ms",
    "samples_per_s",
    "requests_per_s",
    "tokens_per_s",
    "peak_rss_mb",
    "peak_gpu_mem_mb",
    "eval_wall_s",
}


def _wait(exp: Any, show: bool, cancel_on_interrupt: bool = True) -> None:
    try:
        exp.wait(progress=show)
    except KeyboardInterrupt:
        if not cancel_on_interrupt:  # its scheduler lives on the cluster: leave it running
            click.echo(f"\ninterrupted: experiment {exp.id} goes on; `evalhub attach {exp.id}` follows it, "
                       f"`evalhub cancel {exp.id}` stops it", err=True)  # fmt: skip
            raise
        click.echo(f"\ninterrupted: cancelling experiment {exp.id}", err=True)
        exp.cancel()
        exp.wait(timeout=120)
        raise


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url", envvar="EVALHUB_URL", help="Tracking server (default: the embedded one).")
@click.option("--token", envvar="EVALHUB_TOKEN", help="API token of the server.")
@click.option("--project", envvar="EVALHUB_PROJECT", help="Project (default: default).")
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster (default: a local one).")
@click.option("--on-cluster/--in-process", default=None, help=_WHERE)
@click.option("--detach", is_flag=True,
              help="Hand the experiment to the cluster and return at once with its id.")  # fmt: skip
@click.option("--no-progress", is_flag=True, help="No progress bar (CI logs).")
@click.pass_context
def run(
    ctx: click.Context,
    spec: Path,
    url: str | None,
    token: str | None,
    project: str | None,
    ray_address: str | None,
    on_cluster: bool | None,
    detach: bool,
    no_progress: bool,
) -> None:
    """Run the experiment of SPEC (YAML), show progress, print the comparison; exit 1 if a run failed."""
    from evalhub.orchestrator import run_experiment

    if not spec.is_file():
        click.echo(f"error: no spec file at {spec}", err=True)
        ctx.exit(2)
    from evalhub.execution.executor import schedules_on_cluster

    executor = _executor(ray_address, on_cluster, detach)
    scheduled = schedules_on_cluster(executor)
    hub = _connect(url, token, project)
    try:
        exp = run_experiment(hub, spec, wait=False, executor=executor, progress=False)
    except SpecError as exc:
        click.echo(f"error: {spec}: {exc}", err=True)
        ctx.exit(2)
    finally:
        if scheduled:
            executor.shutdown()  # the experiment lives on the cluster now
    click.echo(f"experiment {exp.id} '{exp.name}' submitted to {hub.url}")
    if detach:
        click.echo(f"running on the Ray cluster: `evalhub attach {exp.id}` follows it, "
                   f"`evalhub cancel {exp.id}` stops it")  # fmt: skip
        ctx.exit(0)
    try:
        _wait(exp, show=not no_progress, cancel_on_interrupt=not scheduled)
        code = _report(hub, exp)
    finally:
        exp.executor.shutdown()  # the local Ray this command started, now rather than at exit
    ctx.exit(code)


@click.command()
@click.argument("experiment_id", type=int)
@click.option("--url", envvar="EVALHUB_URL", help="Tracking server (default: the embedded one).")
@click.option("--token", envvar="EVALHUB_TOKEN")
@click.option("--project", envvar="EVALHUB_PROJECT")
@click.option("--no-progress", is_flag=True, help="No progress bar (CI logs).")
@click.pass_context
def attach(ctx: click.Context, experiment_id: int, url: str | None, token: str | None, project: str | None,
           no_progress: bool) -> None:  # fmt: skip
    """Follow a running experiment (from any process): progress, then the comparison; exit 1 if a run
    failed. Ctrl-C leaves it running."""
    hub = _connect(url, token, project)
    exp = hub.experiment(experiment_id)
    exp.info()  # an unknown id is an error here, not a wait
    _wait(exp, show=not no_progress, cancel_on_interrupt=False)
    ctx.exit(_report(hub, exp))


@click.command()
@click.argument("experiment_id", type=int)
@click.option("--url", envvar="EVALHUB_URL", help="Tracking server (default: the embedded one).")
@click.option("--token", envvar="EVALHUB_TOKEN")
@click.option("--project", envvar="EVALHUB_PROJECT")
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster (default: a local one).")
@click.option("--on-cluster/--in-process", default=None, help=_WHERE)
@click.option("--detach", is_flag=True, help="Return at once (on the cluster).")
@click.option("--no-progress", is_flag=True, help="No progress bar (CI logs).")
@click.pass_context
def resume(ctx: click.Context, experiment_id: int, url: str | None, token: str | None, project: str | None,
           ray_address: str | None, on_cluster: bool | None, detach: bool, no_progress: bool) -> None:  # fmt: skip
    """Continue an experiment: its failed and cancelled runs run again, completed ones are kept."""
    from evalhub.execution.executor import schedules_on_cluster

    executor = _executor(ray_address, on_cluster, detach)
    scheduled = schedules_on_cluster(executor)
    hub = _connect(url, token, project)
    exp = hub.experiment(experiment_id)
    exp.resume(executor=executor)
    counts = exp.info().get("counts") or {}
    shown = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    click.echo(f"experiment {experiment_id} resumed ({shown})")
    if detach:
        executor.shutdown()
        ctx.exit(0)
    try:
        _wait(exp, show=not no_progress, cancel_on_interrupt=not scheduled)
        code = _report(hub, exp)
    finally:
        executor.shutdown()
    ctx.exit(code)


@click.command()
@click.argument("experiment_id", type=int)
@click.option("--url", envvar="EVALHUB_URL", help="Tracking server (default: the embedded one).")
@click.option("--token", envvar="EVALHUB_TOKEN")
@click.option("--project", envvar="EVALHUB_PROJECT")
def cancel(experiment_id: int, url: str | None, token: str | None, project: str | None) -> None:
    """Cancel an experiment: queued runs are dropped, running ones stop between batches."""
    hub = _connect(url, token, project)
    exp = hub.experiment(experiment_id).cancel()
    counts = (exp.info().get("counts")) or {}
    click.echo(
        f"experiment {experiment_id} cancelled ({', '.join(f'{v} {k}' for k, v in counts.items() if v)})"
    )


DEMO_SPEC = """\
name: tiny-progress
models:
  - model: tiny-gpt
    checkpoints: {checkpoints}
tasks: [arith-add, arith-mc]
config:
  limit: {limit}
  seed: 1234
  batch_size: 32
  resources: {{max_workers: {workers}}}
"""


@click.command()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="evalhub home for this demo (default: EVALHUB_HOME or ~/.evalhub).",
)
@click.option("--steps", default=300, show_default=True, help="Training steps of the tiny model.")
@click.option("--limit", default=100, show_default=True, help="Items per task.")
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster (default: a local one).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def demo(
    ctx: click.Context, home: Path | None, steps: int, limit: int, ray_address: str | None, no_progress: bool
) -> None:
    """The whole story on embedded defaults: train a tiny model, evaluate its checkpoints, compare."""
    from evalhub import tiny
    from evalhub.orchestrator import run_experiment

    if steps < 3:
        raise click.BadParameter("at least 3 steps (three checkpoints)", param_hint="--steps")
    if home is not None:
        os.environ["EVALHUB_HOME"] = str(home.resolve())
    root = Path(os.environ.get("EVALHUB_HOME") or Path.home() / ".evalhub").expanduser().resolve()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    started = time.perf_counter()
    hub = _connect(None, None, None, home=str(root))
    click.echo(f"1/4 tracking server: {hub.url} (data under {root})")
    out = root / "tiny"
    save_every = max(1, steps // 3)
    click.echo(f"2/4 training the tiny model for {steps} steps on CPU (loss curve logged to the server)…")
    build = tiny.build(out, hub=hub, steps=steps, save_every=save_every, seed=0)
    click.echo(
        f"    trained in {build.train_seconds:.0f}s, final loss {build.final_loss:.3f}; "
        f"checkpoints: {', '.join(f'step-{s}' for s in sorted(build.checkpoints))}"
    )
    tiny.write_tasks(out, n=max(limit, 50), seed=0)
    tiny.register_tasks(hub, out)
    checkpoints = [f"step-{s}" for s in sorted(build.checkpoints)][-3:]
    spec = DEMO_SPEC.format(
        checkpoints="[" + ", ".join(checkpoints) + "]",
        limit=limit,
        workers=max(1, min(3, os.cpu_count() or 1)),
    )
    click.echo(f"3/4 evaluating {len(checkpoints)} checkpoints x 2 tasks with lm-eval on Ray…")
    from evalhub.execution.executor import schedules_on_cluster

    executor = _executor(ray_address, None, False)
    exp = run_experiment(hub, spec, wait=False, executor=executor, progress=False)
    try:
        _wait(exp, show=not no_progress)
        click.echo("4/4 comparison (scores should rise with the step):")
        code = _report(hub, exp)
    finally:
        exp.executor.shutdown()
    click.echo(
        f"\ndone in {time.perf_counter() - started:.0f}s. In a notebook:\n"
        f"    import evalhub; hub = evalhub.connect()\n"
        f"    exp = hub.experiment({exp.id}); exp.compare(); evalhub.diff(exp)\n"
        f"    evalhub.curves({build.run_id}, 'loss')      # the training run\n"
        f"The data lives in {root} (evalhub server, checkpoints in {out})."
        + (
            "\nevalhub's local Ray cluster stays up until unused for a while (`evalhub ray stop` ends it now)."
            if schedules_on_cluster(executor) and not ray_address
            else ""
        )
    )
    sys.stdout.flush()
    ctx.exit(code)


__all__ = ["attach", "cancel", "demo", "resume", "run"]
