"""``evalhub families|models|checkpoints|tasks|experiments|runs`` and ``evalhub export``.

Each command takes ``--url/--token/--project`` (or ``EVALHUB_URL``/``EVALHUB_TOKEN``/
``EVALHUB_PROJECT``); without a URL it uses the embedded server under ``EVALHUB_HOME``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from evalhub.errors import EvalhubError
from evalhub.protocol import RUN_TYPES, STATUSES

if TYPE_CHECKING:
    from evalhub.hub import Hub

F = TypeVar("F", bound=Callable[..., Any])

_TABLE_COLUMNS: dict[str, list[str]] = {
    "families": ["id", "name", "modality", "description"],
    "models": ["id", "name", "family", "runtime", "adapter", "code_uri"],
    "checkpoints": ["id", "model", "name", "step", "epoch", "uri", "run_id"],
    "tasks": ["id", "name", "type", "dataset", "engine", "metrics"],
    "experiments": ["id", "name", "status", "progress", "counts", "created_at"],
    "runs": [
        "id",
        "name",
        "type",
        "status",
        "experiment_id",
        "model",
        "checkpoint",
        "runtime",
        "task",
        "progress",
    ],
}


# Filters with a closed set of values: a typo is refused instead of listing nothing.
_STATUSES = list(STATUSES)
_CHOICES: dict[str, dict[str, list[str]]] = {
    "runs": {"status": _STATUSES, "type": list(RUN_TYPES)},
    "experiments": {"status": _STATUSES},
}


def connection_options(fn: F) -> F:
    """``--url``, ``--token``, ``--project`` with environment fallbacks."""
    fn = click.option("--project", envvar="EVALHUB_PROJECT", default=None, help="Project [EVALHUB_PROJECT].")(
        fn
    )
    fn = click.option("--token", envvar="EVALHUB_TOKEN", default=None, help="Bearer token [EVALHUB_TOKEN].")(
        fn
    )
    fn = click.option(
        "--url",
        envvar="EVALHUB_URL",
        default=None,
        help="Tracking server URL [EVALHUB_URL]; default: embedded.",
    )(fn)
    return fn


def _hub(url: str | None, token: str | None, project: str | None) -> Hub:
    from evalhub.hub import connect

    return connect(url, token=token, project=project)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        if set(value) == {"done", "total"}:
            return f"{value['done']}/{value['total'] if value['total'] is not None else '?'}"
        return ",".join(f"{k}={v}" for k, v in value.items() if v)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` (one line per row, columns padded)."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _emit(kind: str, rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    elif not rows:
        click.echo(f"no {kind}")
    else:
        click.echo(render_table(rows, _TABLE_COLUMNS[kind]))


def _list(
    kind: str, url: str | None, token: str | None, project: str | None, limit: int, **filters: Any
) -> None:
    # `as_json` travels in filters to keep each command body one line.
    as_json = bool(filters.pop("as_json", False))
    with _hub(url, token, project) as hub:
        rows = _items(hub, kind, limit, **filters)
    _emit(kind, rows, as_json)


def _items(hub: Hub, path: str, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
    """Up to ``limit`` items of a paged list (every one without a limit)."""
    rows: list[dict[str, Any]] = []
    for item in hub.client.paged(f"/{path}", limit=min(limit or 1000, 1000), **filters):
        rows.append(item)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def _listing(kind: str, help_text: str, filters: Sequence[tuple[str, str, str]]) -> click.Command:
    """A listing command for ``kind``; each ``(option, query parameter, help)`` filter is passed on."""

    def command(
        url: str | None, token: str | None, project: str | None, limit: int, as_json: bool, **kw: Any
    ) -> None:
        _list(kind, url, token, project, limit, as_json=as_json, **kw)

    command.__doc__ = help_text
    cmd: Callable[..., Any] = command
    for option, param, text in reversed(filters):
        values = _CHOICES.get(kind, {}).get(option)
        kind_of = click.Choice(values) if values else None
        cmd = click.option(f"--{option}", param, type=kind_of, default=None, help=text)(cmd)
    cmd = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(cmd)
    cmd = click.option(
        "--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many."
    )(cmd)
    cmd = connection_options(cmd)
    return click.command(kind, help=help_text)(cmd)


families = _listing(
    "families", "List model families.", [("modality", "modality", "Only this modality (llm, t2i, …).")]
)
models = _listing(
    "models",
    "List registered models.",
    [
        ("family", "family", "Only models of this family."),
        ("runtime", "runtime", "Only this runtime (hf, vllm, openai, python)."),
    ],
)
checkpoints = _listing(
    "checkpoints", "List checkpoints, by step.", [("model", "model", "Only checkpoints of this model.")]
)
tasks = _listing("tasks", "List registered tasks.", [("type", "type", "Only this task type (qa, mcq, …).")])
experiments = _listing(
    "experiments",
    "List experiments, newest first.",
    [("status", "status", "Only this status (running, completed, …).")],
)
runs = _listing(
    "runs",
    "List runs.",
    [
        ("experiment", "experiment_id", "Only runs of this experiment id."),
        ("status", "status", "Only this status (queued, running, completed, failed, cancelled)."),
        ("type", "type", "Only this type (training, inference, offline_eval)."),
        ("model", "model", "Only runs of this model."),
        ("task", "task", "Only runs of this task."),
    ],
)


@click.command("export")
@click.argument("experiment_id", type=int)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "parquet"]),
    default=None,
    help="Default: from -o's suffix.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="File to write (--all csv/parquet: a folder).",
)
@click.option("--samples", is_flag=True, help="json only: include every run's per-sample outputs.")
@click.option(
    "--all", "whole", is_flag=True,
    help="Every table: runs, metrics, samples with every scorer's scores and people's labels, scorings, "
         "judge calls, annotation labels (csv/parquet: one file per table in the -o folder).",
)  # fmt: skip
@connection_options
def export(
    experiment_id: int,
    fmt: str | None,
    output: Path,
    samples: bool,
    whole: bool,
    url: str | None,
    token: str | None,
    project: str | None,
) -> None:
    """Write an experiment's comparison table (one row per run, one column per metric), or with
    ``--all`` the whole experiment (``hub.export``)."""
    from evalhub.hub import compare_frame

    if whole:
        with _hub(url, token, project) as hub:
            written = hub.export(experiment_id, output, fmt)
        click.echo(f"wrote experiment {experiment_id} to {written}")
        return

    fmt = fmt or {".csv": "csv", ".parquet": "parquet", ".json": "json"}.get(output.suffix.lower())
    if fmt is None:
        raise click.BadParameter(
            "give --format json|csv|parquet (or an -o file ending in one)", param_hint="--format"
        )
    if samples and fmt != "json":
        raise click.BadParameter("--samples needs --format json", param_hint="--samples")
    with _hub(url, token, project) as hub:
        answer = hub.client.get(f"/experiments/{experiment_id}/compare")
        table = compare_frame(answer)
        if fmt == "json":
            experiment = hub.client.get(f"/experiments/{experiment_id}")
            rows = table.to_dicts()
            if samples:
                for row in rows:
                    row["samples"] = _items(hub, f"runs/{row['run_id']}/samples")
            doc = {
                "experiment": {
                    k: experiment.get(k) for k in ("id", "name", "status", "spec", "config", "created_at")
                },
                "metrics": answer.get("metrics", []),
                "runs": rows,
            }
            output.write_text(json.dumps(doc, indent=2, default=str))
        elif fmt == "csv":
            table.write_csv(output)
        else:
            table.write_parquet(output)
    click.echo(f"wrote {table.height} runs x {len(answer.get('metrics', []))} metrics to {output}")


__all__ = [
    "EvalhubError",
    "checkpoints",
    "experiments",
    "export",
    "families",
    "models",
    "render_table",
    "runs",
    "tasks",
]
