"""``evalhub tiny build OUT`` and ``evalhub tiny tasks OUT``: the tiny model and its arithmetic tasks."""

from __future__ import annotations

from pathlib import Path

import click

from evalhub.commands.registry import _hub, connection_options


@click.group("tiny")
def tiny() -> None:
    """Build the tiny GPT-2-style model (CPU, under a minute) and its arithmetic tasks."""


@tiny.command("build")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--steps", default=300, show_default=True, type=click.IntRange(min=1), help="Training steps.")
@click.option(
    "--save-every", default=100, show_default=True, type=click.IntRange(min=1), help="Checkpoint interval."
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--no-register", is_flag=True, help="Train and save only: no tracking server, no registry.")
@connection_options
def build(
    out: Path,
    steps: int,
    save_every: int,
    seed: int,
    no_register: bool,
    url: str | None,
    token: str | None,
    project: str | None,
) -> None:
    """Train the tiny model into OUT/step-<n>, write OUT/tasks, and register model, checkpoints and tasks."""
    from evalhub import tiny as tiny_model

    hub = None if no_register else _hub(url, token, project)
    tasks = tiny_model.write_tasks(out, seed=seed)
    result = tiny_model.build(out, hub=hub, steps=steps, save_every=save_every, seed=seed)
    click.echo(f"trained {steps} steps in {result.train_seconds:.1f}s (final loss {result.final_loss:.3f})")
    for step, path in sorted(result.checkpoints.items()):
        click.echo(f"  step-{step}: {path}")
    for name, path in tasks.items():
        click.echo(f"  task {name}: {path}")
    if hub is not None:
        tiny_model.register_tasks(hub, out)
        click.echo(
            f"registered model {tiny_model.MODEL} ({len(result.checkpoints)} checkpoints), tasks "
            f"{tiny_model.ADD_TASK}, {tiny_model.MC_TASK}, benchmark {tiny_model.BENCHMARK}; training run {result.run_id}"
        )
        hub.close()


@tiny.command("tasks")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-n", "--n", "count", default=200, show_default=True, type=click.IntRange(min=1), help="Items per task."
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--register", is_flag=True, help="Also register the tasks and the benchmark 'arith'.")
@connection_options
def tasks(
    out: Path, count: int, seed: int, register: bool, url: str | None, token: str | None, project: str | None
) -> None:
    """Write the arithmetic tasks (arith-add, arith-mc) as JSONL under OUT/tasks."""
    from evalhub import tiny as tiny_model

    for name, path in tiny_model.write_tasks(out, n=count, seed=seed).items():
        click.echo(f"{name}: {path}")
    if register:
        hub = _hub(url, token, project)
        tiny_model.register_tasks(hub, out)
        click.echo(
            f"registered {tiny_model.ADD_TASK}, {tiny_model.MC_TASK} and benchmark {tiny_model.BENCHMARK}"
        )
        hub.close()
