"""``evalhub ray status|stop``: the local Ray cluster evalhub starts for a submission without a Ray
address (:mod:`evalhub.execution.cluster`), which outlives the process that started it."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("ray")
def ray_group() -> None:
    """evalhub's own local Ray cluster (started by a submission without a Ray address)."""


@ray_group.command("status")
@click.option(
    "--home", type=click.Path(file_okay=False, path_type=Path), help="evalhub home (default: EVALHUB_HOME)."
)
def status(home: Path | None) -> None:
    """Whether the local cluster runs, and its address."""
    from evalhub.execution import cluster

    info = cluster.running(home)
    if info is None:
        click.echo(f"no local Ray cluster of evalhub runs (home {cluster.home(home)})")
        return
    click.echo(f"local Ray cluster at {info['address']} (temp folder {info['temp_dir']}, "
               f"stops after {cluster.idle_s():.0f}s unused)")  # fmt: skip


@ray_group.command("stop")
@click.option(
    "--home", type=click.Path(file_okay=False, path_type=Path), help="evalhub home (default: EVALHUB_HOME)."
)
def stop(home: Path | None) -> None:
    """Stop the local cluster (its own processes only; other Ray clusters of the machine are left)."""
    from evalhub.execution import cluster

    if cluster.stop(home):
        click.echo(
            "stopped evalhub's local Ray cluster (an experiment still running there stops; "
            "`evalhub resume ID` continues it)"
        )
    else:
        click.echo("no local Ray cluster of evalhub was running")


__all__ = ["ray_group"]
