"""What each ``%evalhub`` subcommand does: small functions over the Hub and the widgets."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from evalhub.hub import Hub


def connect(hub: Hub, args: argparse.Namespace) -> Any:
    health = hub.client.get("/api/health")
    print(
        f"connected to {hub.url} (project {hub.project}, db {health.get('db')}, version {health.get('version')})"
    )
    return None


def families(hub: Hub, args: argparse.Namespace) -> Any:
    return hub.families(modality=args.modality)


def models(hub: Hub, args: argparse.Namespace) -> Any:
    return hub.models(family=args.family, runtime=args.runtime)


def checkpoints(hub: Hub, args: argparse.Namespace) -> Any:
    return hub.checkpoints(model=args.model)


def tasks(hub: Hub, args: argparse.Namespace) -> Any:
    return hub.tasks(type=args.type)


def benchmarks(hub: Hub, args: argparse.Namespace) -> Any:
    return hub.benchmarks()


def registry(hub: Hub, args: argparse.Namespace) -> Any:
    from evalhub.widgets import registry as browse

    return browse(hub)


def experiments(hub: Hub, args: argparse.Namespace) -> Any:
    return hub.experiments(status=args.status, limit=args.limit)


def runs(hub: Hub, args: argparse.Namespace) -> Any:
    filters = {
        "experiment_id": args.experiment,
        "status": args.status,
        "type": args.type,
        "model": args.model,
        "task": args.task,
    }
    return hub.runs(**{k: v for k, v in filters.items() if v is not None})


def show(hub: Hub, args: argparse.Namespace) -> Any:
    if args.run is not None:
        run = hub.run(args.run)
        run["metrics"] = hub.metrics(args.run)
        return run
    if args.experiment is None:
        raise UsageError("%evalhub show: name an experiment id (or --run RUN_ID)")
    from evalhub.widgets import monitor

    return monitor(args.experiment, hub=hub)


def compare(hub: Hub, args: argparse.Namespace) -> Any:
    from evalhub.widgets import compare as table

    return table(args.experiment, hub=hub, baseline=args.baseline)


def page(hub: Hub, args: argparse.Namespace) -> Any:
    from evalhub.widgets import page as experiment_page

    return experiment_page(args.experiment, hub=hub, baseline=args.baseline, by=args.by, metric=args.metric)


def diff(hub: Hub, args: argparse.Namespace) -> Any:
    from evalhub.widgets import diff as output_diff

    return output_diff(
        args.experiment, args.task, hub=hub, filter=args.filter, q=args.search, limit=args.limit
    )


def curves(hub: Hub, args: argparse.Namespace) -> Any:
    from evalhub.widgets import curves as chart

    if args.experiment is not None:
        if args.runs:
            raise UsageError("%evalhub curves: give run ids or --experiment, not both")
        return chart(hub.experiment(args.experiment), args.key or None, hub=hub, max_points=args.max_points)
    if not args.runs:
        raise UsageError("%evalhub curves: name at least one run id (or --experiment ID)")
    return chart(list(args.runs), args.key or ["loss"], hub=hub, max_points=args.max_points)


def cancel(hub: Hub, args: argparse.Namespace) -> Any:
    if args.run is not None:
        run = hub.client.post(f"/api/runs/{args.run}/cancel", {})
        print(f"run {args.run}: {run.get('status')}")
        return None
    if args.experiment is None:
        raise UsageError("%evalhub cancel: name an experiment id (or --run RUN_ID)")
    exp = hub.client.post(f"/api/experiments/{args.experiment}/cancel", {})
    counts = ", ".join(f"{k} {v}" for k, v in (exp.get("counts") or {}).items() if v)
    print(f"experiment {args.experiment}: {exp.get('status')} ({counts})")
    return None


def register(hub: Hub, args: argparse.Namespace) -> Any:
    kind = args.kind
    if kind == "repo":
        obj = hub.register_repo(args.path)
    elif kind == "family":
        obj = hub.register_family(args.name, modality=args.modality, description=args.description)
    elif kind == "model":
        obj = hub.register_model(
            args.name, family=args.family, runtime=args.runtime, adapter=args.adapter, code_uri=args.code_uri
        )
    elif kind == "checkpoint":
        obj = hub.register_checkpoint(args.model, args.name, uri=args.uri, step=args.step, epoch=args.epoch)
    elif kind == "task":
        if not args.lm_eval_task and not args.data:
            raise UsageError(
                "%evalhub register task: give --data FILE (with --prompt and --target) or --lm-eval-task NAME"
            )
        obj = hub.register_task(
            args.name,
            data=args.data,
            prompt=args.prompt,
            target=args.target,
            output_type=args.output_type,
            metrics=tuple(args.metrics),
            lm_eval_task=args.lm_eval_task,
        )
    else:
        obj = hub.register_benchmark(args.name, tasks=list(args.tasks))
    name = obj.get("name") if isinstance(obj, dict) else None
    print(
        f"registered {kind} {name or ''}".rstrip()
        + (f" (id {obj['id']})" if isinstance(obj, dict) and "id" in obj else "")
    )
    return None


COMMANDS: dict[str, Callable[[Hub, argparse.Namespace], Any]] = {
    "connect": connect,
    "families": families,
    "models": models,
    "checkpoints": checkpoints,
    "tasks": tasks,
    "benchmarks": benchmarks,
    "registry": registry,
    "experiments": experiments,
    "runs": runs,
    "show": show,
    "compare": compare,
    "page": page,
    "diff": diff,
    "curves": curves,
    "cancel": cancel,
    "register": register,
}
