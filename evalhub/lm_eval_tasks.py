"""The names lm-eval knows (tasks, groups, tags), for checks at registration and a fast task manager.

lm-eval's own index walks some 15,000 YAML files (10 s and more), so it is built once per lm-eval
installation and cached as JSON under ``EVALHUB_CACHE_DIR`` (default ``~/.cache/evalhub``); a user's own
folder of task YAMLs (``include_path``) is small and indexed each time. Nothing here imports lm-eval
unless the cache must be (re)built or a folder indexed, so ``import evalhub`` stays light.

>>> check_task("mmlu")                              # "group"
>>> check_task("mmlu_abstract_algebr")              # InvalidValue: ... did you mean 'mmlu_abstract_algebra'?
>>> check_task("my_task", include_path="my_tasks/")
"""

from __future__ import annotations

import difflib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhub.errors import InvalidValue

_KINDS = {"TASK": "task", "PY_TASK": "task", "GROUP": "group", "TAG": "tag"}
_LOCK = threading.Lock()
_DEFAULTS: dict[str, Entry] | None = None


@dataclass(frozen=True)
class Entry:
    """One name of lm-eval's index: its kind, the YAML that defines it, and what it is made of."""

    name: str
    kind: str  # "task", "group" or "tag"
    path: str | None = None  # the YAML file (None for a tag: its members name it)
    children: tuple[str, ...] = field(default_factory=tuple)  # a group's tasks/subgroups, a tag's tasks


def cache_dir() -> Path:
    """Where the index of lm-eval's own tasks is cached (``EVALHUB_CACHE_DIR``, ``~/.cache/evalhub``)."""
    base = os.environ.get("EVALHUB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "evalhub"
    )
    return Path(base).expanduser()


def _lm_eval_tasks_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


def _cache_key(tasks_dir: Path) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        lm_eval_version = version("lm_eval")
    except PackageNotFoundError:  # pragma: no cover - found by find_spec, so installed
        lm_eval_version = "unknown"
    import hashlib

    stamp = f"{lm_eval_version}|{tasks_dir.resolve()}|{tasks_dir.stat().st_mtime_ns}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def _entries_of(index: dict[str, Any]) -> dict[str, Entry]:
    """lm-eval's ``TaskManager.task_index`` as plain entries."""
    out: dict[str, Entry] = {}
    for name, raw in index.items():
        kind = _KINDS.get(getattr(raw.kind, "name", str(raw.kind)), "task")
        children: list[str] = []
        if kind == "group":
            for item in (raw.cfg or {}).get("task") or []:
                child = item.get("task") if isinstance(item, dict) else item
                if isinstance(child, str):
                    children.append(child)
        elif kind == "tag":
            children = sorted(raw.tags or ())
        path = str(raw.yaml_path) if raw.yaml_path is not None else None
        out[str(name)] = Entry(str(name), kind, path, tuple(children))
    return out


def _index_folders(paths: list[str], include_defaults: bool) -> dict[str, Entry]:
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=paths or None, include_defaults=include_defaults)
    return _entries_of(manager.task_index)


def default_entries() -> dict[str, Entry]:
    """Every task, group and tag of lm-eval's own task folder (cached on disk and in the process)."""
    global _DEFAULTS
    with _LOCK:
        if _DEFAULTS is not None:
            return _DEFAULTS
        tasks_dir = _lm_eval_tasks_dir()
        if tasks_dir is None or not tasks_dir.is_dir():
            raise InvalidValue("lm-eval is not installed here: pip install 'evalhub[hf]'")
        path = cache_dir() / f"lm_eval_tasks-{_cache_key(tasks_dir)}.json"
        entries: dict[str, Entry] | None = None
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                entries = {
                    name: Entry(name, e["kind"], e.get("path"), tuple(e.get("children") or ()))
                    for name, e in data["entries"].items()
                }
            except (ValueError, KeyError, TypeError):
                entries = None  # a damaged cache is rebuilt
        if entries is None:
            entries = _index_folders([], include_defaults=True)
            _write_cache(path, entries)
        _DEFAULTS = entries
        return entries


def _write_cache(path: Path, entries: dict[str, Entry]) -> None:
    body = {
        "entries": {
            e.name: {"kind": e.kind, "path": e.path, "children": list(e.children)} for e in entries.values()
        }
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only home: the index is simply built again next time
        pass


def folder_entries(include_path: str | os.PathLike[str]) -> dict[str, Entry]:
    """The tasks, groups and tags defined in a user's folder of lm-eval task YAMLs."""
    folder = Path(include_path).expanduser()
    if not folder.is_dir():
        raise InvalidValue(
            f"include_path {include_path} is not a folder (give a folder of lm-eval task YAML files)"
        )
    return _index_folders([str(folder.resolve())], include_defaults=False)


def entries(include_path: str | os.PathLike[str] | None = None) -> dict[str, Entry]:
    """lm-eval's own names, with those of ``include_path`` over them (as lm-eval's own ``--include_path``)."""
    known = dict(default_entries())
    if include_path is not None:
        known.update(folder_entries(include_path))
    return known


def check_task(name: str, include_path: str | os.PathLike[str] | None = None) -> str:
    """The kind (``task``, ``group``, ``tag``) of an lm-eval name; an unknown name is refused with the
    closest names lm-eval (and ``include_path``) know."""
    known = entries(include_path)
    entry = known.get(name)
    if entry is not None:
        return entry.kind
    close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.6)
    where = "lm-eval's tasks" + (f" or {include_path}" if include_path is not None else "")
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InvalidValue(f"lm_eval_task: no task, group or tag named {name!r} in {where}{hint}")


def folders_for(names: list[str], include_path: str | os.PathLike[str] | None = None) -> list[str] | None:
    """The folders whose YAMLs define ``names`` and everything they are made of (groups, subgroups, tags),
    or ``None`` when a name is not in the index: a task manager over these folders alone loads the same
    tasks as one over all of lm-eval's, in a fraction of the time."""
    known = entries(include_path)
    folders: set[Path] = set()
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        entry = known.get(name)
        if entry is None:
            return None
        if entry.path is not None:
            folders.add(Path(entry.path).parent)
        todo.extend(entry.children)
    # a folder inside another one is indexed with it (lm-eval walks folders recursively)
    ordered = sorted(folders, key=lambda p: len(p.parts))
    roots: list[Path] = []
    for folder in ordered:
        if not any(folder.is_relative_to(root) for root in roots):
            roots.append(folder)
    return [str(p) for p in roots]


__all__ = ["Entry", "cache_dir", "check_task", "default_entries", "entries", "folder_entries", "folders_for"]
