"""Where lm-eval finds a task: a local task's YAML written to a work folder, or a task manager over the
folders that define an lm-eval name (evalhub's cached index), the user's ``include_path`` last; and a
dataset that can't be loaded named with the offline variables seen."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evalhub.errors import EvalhubError

ROUGE_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_OFFLINE_VARS = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "HF_DATASETS_CACHE",
)


def task_config(task: dict[str, Any]) -> dict[str, Any]:
    """The lm-eval config of a registered task row (its ``engine_config``), checked for the essentials."""
    engine = task.get("engine") or "lm_eval"
    if engine != "lm_eval":
        raise EvalhubError(
            f"task {task.get('name')!r} uses engine {engine!r}; this bridge runs lm_eval tasks"
        )
    config = dict(task.get("engine_config") or {})
    if not config.get("task"):
        raise EvalhubError(f"task {task.get('name')!r} has no engine_config.task; register it again")
    return config


def is_local(config: dict[str, Any]) -> bool:
    """A local task carries its own config (a dataset and templates); a bare name is lm-eval's task."""
    return set(config) - {"task", "include_path"} != set()


class _Tagged(str):
    """A YAML scalar written with lm-eval's ``!function`` tag."""


def _yaml_dumper() -> type:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def tagged(dumper: yaml.SafeDumper, value: _Tagged) -> yaml.ScalarNode:
        return dumper.represent_scalar("!function", str(value))

    Dumper.add_representer(_Tagged, tagged)
    return Dumper


def write_task_yaml(config: dict[str, Any], workdir: Path) -> Path:
    """Write a local task's config as an lm-eval task YAML file under ``workdir`` (its own folder).

    ROUGE metrics (``rouge1``, ``rouge2``, ``rougeL``, ``rougeLsum``), which lm-eval computes in task code
    rather than registers, become ``!function`` references to :mod:`evalhub.engines._rouge`.
    """
    import yaml

    config = {k: v for k, v in config.items() if v is not None and k != "include_path"}
    for key, value in (config.get("dataset_kwargs") or {}).get("data_files", {}).items():
        paths = value if isinstance(value, list) else [value]
        for p in paths:
            if not str(p).startswith(("http://", "https://", "hf://")) and not Path(str(p)).exists():
                raise EvalhubError(
                    f"task {config['task']!r}: data file {p} ({key} split) is missing on this worker; "
                    "the task's data must be reachable from every worker"
                )
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    metric_list = []
    for entry in config.get("metric_list") or []:
        if isinstance(entry, dict) and entry.get("metric") in ROUGE_METRICS:
            entry = {**entry, "metric": _Tagged(f"evalhub.engines._rouge.{entry['metric']}")}
        metric_list.append(entry)
    if metric_list:
        config["metric_list"] = metric_list
    folder = workdir / f"task-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "task.yaml"
    path.write_text(yaml.dump(config, Dumper=_yaml_dumper(), sort_keys=False), encoding="utf-8")
    return path


_MANAGERS: dict[tuple[str, ...] | None, Any] = {}


def task_manager(config: dict[str, Any], workdir: Path, include_path: str | None) -> Any:
    """A ``TaskManager`` that knows the task: its own YAML (a local task), or the folders that define an
    lm-eval name (and the user's ``include_path``, which comes last and so wins, as in lm-eval)."""
    from lm_eval.tasks import TaskManager

    if is_local(config):
        path = write_task_yaml(config, workdir)
        return TaskManager(include_path=str(path.parent), include_defaults=False)
    from evalhub import lm_eval_tasks

    user = str(Path(include_path).expanduser().resolve()) if include_path else None
    if user is not None and not Path(user).is_dir():
        raise EvalhubError(
            f"include_path {include_path} is not a folder on this worker: it must be a path every worker sees"
        )
    try:
        folders = lm_eval_tasks.folders_for([str(config["task"])], include_path=user)
    except EvalhubError:
        folders = None
    if folders is not None:
        if user is not None:
            folders = [f for f in folders if not Path(f).is_relative_to(user)] + [user]
        key: tuple[str, ...] | None = tuple(folders)
    else:  # a name evalhub's index doesn't know: lm-eval's own full index decides
        key = None
    if key not in _MANAGERS:
        if key is None:
            _MANAGERS[key] = TaskManager(include_path=user)
        else:
            _MANAGERS[key] = TaskManager(include_path=list(key), include_defaults=False)
    return _MANAGERS[key]


@contextmanager
def datasets_named(name: str) -> Iterator[None]:
    """A dataset that can't be loaded (offline, not in the cache) fails with the dataset named, the subtask
    that reads it and the offline variables this process saw."""
    try:
        yield
    except Exception as exc:
        found = _dataset_in_traceback(exc)
        if found is None:
            raise
        subtask, path, config_name = found
        seen = ", ".join(f"{k}={os.environ[k]}" for k in _OFFLINE_VARS if k in os.environ) or "none of "
        if seen == "none of ":
            seen = "none of " + ", ".join(_OFFLINE_VARS[:2]) + " set"
        which = f"{path!r}" + (f" (config {config_name!r})" if config_name else "")
        raise EvalhubError(
            f"task {name!r}: the dataset {which} of subtask {subtask!r} could not be loaded: "
            f"{type(exc).__name__}: {exc}. Offline variables seen: {seen}. Prepare the dataset into this "
            "worker's datasets cache (or give it network access)"
        ) from exc


def _dataset_in_traceback(exc: BaseException) -> tuple[str, str, str | None] | None:
    """(subtask, dataset path, dataset name) of the lm-eval task whose dataset loading raised ``exc``."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self")
        if frame.f_code.co_name == "download" and hasattr(owner, "DATASET_PATH"):
            config = getattr(owner, "config", None)
            subtask = str(getattr(config, "task", None) or type(owner).__name__)
            found = (subtask, str(getattr(owner, "DATASET_PATH", "")), getattr(owner, "DATASET_NAME", None))
        tb = tb.tb_next
    return found
