"""``evalhub schedule add|list|keep|remove``: evaluations that run by themselves (kept by the server, run by
the keeper on the Ray cluster: see :mod:`evalhub.execution.schedules`)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import click

from evalhub.commands.registry import _hub, connection_options, render_table

COLUMNS = ["id", "name", "when", "next", "pending", "ticks_run", "last_experiment_id"]


def _when(s: dict[str, Any]) -> str:
    if s.get("on_checkpoint"):
        return f"each new checkpoint of {s['on_checkpoint']}"
    return f"cron {s['cron']}" if s.get("cron") else f"every {s['every_s']:g}s"


def _time(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@click.group()
def schedule() -> None:
    """Evaluations that run by themselves: a spec every so often, by cron, or on each new checkpoint."""


@schedule.command("add")
@click.argument("spec")
@click.option("--every", help="a period: seconds, or 90s, 15m, 6h, 1d")
@click.option("--cron", help="five cron fields, UTC, e.g. '0 3 * * *'")
@click.option("--on-checkpoint", "on_checkpoint", metavar="MODEL",
              help="a trigger: SPEC (a task, benchmark or spec without models) on each new checkpoint of MODEL")  # fmt: skip
@click.option("--name", help="the schedule's name (default: the spec's)")
@click.option(
    "--ray-address", envvar="RAY_ADDRESS", help="the cluster its keeper runs on (default: a local one)"
)
@connection_options
def add(spec: str, every: str | None, cron: str | None, on_checkpoint: str | None, name: str | None,
        ray_address: str | None, url: str | None, token: str | None, project: str | None) -> None:  # fmt: skip
    """Keep a schedule of SPEC (a YAML file; with --on-checkpoint also a task or benchmark name) and
    make sure its keeper runs on the cluster."""
    with _hub(url, token, project) as hub:
        made = hub.schedule(spec, every=every, cron=cron, on_checkpoint=on_checkpoint, name=name,
                            ray_address=ray_address)  # fmt: skip
    next_tick = "" if made.get("on_checkpoint") else f"; first tick {_time(made['next_at'])}"
    click.echo(f"schedule {made['id']} '{made['name']}': {_when(made)}{next_tick}")


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
@connection_options
def list_(as_json: bool, url: str | None, token: str | None, project: str | None) -> None:
    """The project's schedules: when, next tick, a pending tick, ticks run, the last experiment."""
    with _hub(url, token, project) as hub:
        items = hub.client.get("/schedules")["items"]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no schedules")
        return
    rows = [{**s, "when": _when(s), "next": "" if s.get("on_checkpoint") else _time(s["next_at"]),
             "pending": "" if s.get("pending_tick") is None else "yes"} for s in items]  # fmt: skip
    click.echo(render_table(rows, COLUMNS))


@schedule.command("keep")
@click.option(
    "--ray-address", envvar="RAY_ADDRESS", help="the cluster its keeper runs on (default: a local one)"
)
@connection_options
def keep(ray_address: str | None, url: str | None, token: str | None, project: str | None) -> None:
    """Make sure the keeper of the project's schedules runs on the cluster: after the machine or the
    cluster went down (a tick missed meanwhile runs once, never twice). For a machine's start-up,
    e.g. a crontab line `@reboot evalhub schedule keep`."""
    with _hub(url, token, project) as hub:
        items = hub.client.get("/schedules")["items"]
        if not items:
            click.echo("no schedules: nothing to keep")
            return
        hub.keep_schedules(ray_address)
    click.echo(f"the keeper of {len(items)} schedule(s) runs on {ray_address or 'the local Ray cluster'}")


@schedule.command("remove")
@click.argument("schedule_ref")
@connection_options
def remove(schedule_ref: str, url: str | None, token: str | None, project: str | None) -> None:
    """Stop the schedule SCHEDULE_REF (a name or id); the experiments it made stay."""
    with _hub(url, token, project) as hub:
        hub.unschedule(int(schedule_ref) if schedule_ref.isdigit() else schedule_ref)
    click.echo(f"schedule {schedule_ref} removed")
