"""Local files that travel with an experiment: task data files, task folders (``include_path``) and the
code of a plugin repo, packaged for Ray so that a node that does not share the submitting machine's
disk still has them.

At submission (in the submitting process, which sees the files) every local path a run names is put
in a Ray package (``runtime_env`` ``py_modules``): a folder as it is, a single file in a folder of its
own named by its digest. Ray names a package by the digest of its content (``gcs://_ray_pkg_<hash>.zip``)
and every node downloads and unpacks a package once, into its own ``runtime_resources``, for every
worker that asks for it. The :class:`Bundle` maps each original path to its package; a worker
(:func:`localize`) rewrites the paths of its task and checkpoint to where the packages are on its node.

Weights are not packaged: a checkpoint's ``uri`` is fetched by the worker (``evalhub.adapters.uris``,
into its node's cache), or is a path every node sees.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhub.errors import EvalhubError

MAX_BYTES = 256 << 20  # a path bigger than this is not packaged (Ray's package limit is near 512 MiB)


@dataclass
class Bundle:
    """Original local path -> ``{"uri": gcs://…, "name": the path inside the unpacked package}``."""

    files: dict[str, dict[str, str]] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # paths left as they are (too big to ship)

    @property
    def uris(self) -> list[str]:
        return sorted({f["uri"] for f in self.files.values()})

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "kept": self.kept}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Bundle:
        data = data or {}
        return cls(files=dict(data.get("files") or {}), kept=list(data.get("kept") or []))


def merged(older: Mapping[str, Any] | None, newer: Mapping[str, Any] | None) -> dict[str, Any]:
    """Two bundles' ``as_dict()`` as one (``newer``'s package wins for a path both ship): an
    experiment's runs submitted at several times (a resume, a growing experiment) keep every file."""
    old, new = Bundle.from_dict(older), Bundle.from_dict(newer)
    files = {**old.files, **new.files}
    kept = [path for path in dict.fromkeys([*old.kept, *new.kept]) if path not in files]
    return Bundle(files=files, kept=kept).as_dict()


def local_paths(task: Mapping[str, Any], config: Mapping[str, Any], code_uri: str | None) -> list[str]:
    """The local files and folders a run needs besides its weights: the task's data files and task
    folders, the run's ``include_path``, the model's code folder (those that exist here)."""
    found: list[str] = []
    engine_config = task.get("engine_config") or {}

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if os.path.isabs(value) and os.path.exists(value):
                found.append(os.path.normpath(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(engine_config)
    for path in (config.get("include_path"), code_uri):
        if path and os.path.isabs(str(path)) and os.path.isdir(str(path)):
            found.append(os.path.normpath(str(path)))
    return list(dict.fromkeys(found))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def package(paths: Iterable[str], scratch: Path) -> Bundle:
    """Upload every path to the connected Ray cluster (once per content); a file goes in a folder of
    its own named by its digest. Raises :class:`EvalhubError` naming a path that cannot be packaged."""
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed

    from evalhub._content import file_digest

    bundle = Bundle()
    scratch.mkdir(parents=True, exist_ok=True)
    for raw in paths:
        path = Path(raw)
        if _size(path) > MAX_BYTES:
            bundle.kept.append(raw)
            continue
        if path.is_file():
            digest = file_digest(path)[:20]
            stage = scratch / "files" / f"evalhub_file_{digest}"
            if not (stage / path.name).exists():
                stage.mkdir(parents=True, exist_ok=True)
                tmp = stage / f".{path.name}.part"
                shutil.copyfile(path, tmp)
                tmp.replace(stage / path.name)
            module, name = stage, f"{stage.name}/{path.name}"
        else:
            module, name = path, path.name
        try:
            env = upload_py_modules_if_needed(
                {"py_modules": [str(module)]}, include_gitignore=False, scratch_dir=str(scratch)
            )
        except Exception as exc:
            raise EvalhubError(f"cannot ship {raw} to the Ray cluster: {exc}") from exc
        bundle.files[raw] = {"uri": str(env["py_modules"][0]), "name": name}
    return bundle


def package_root(uri: str) -> Path | None:
    """Where a package of this worker's ``runtime_env`` is unpacked on its node (None: not here)."""
    stem = uri.rsplit("/", 1)[-1].removesuffix(".zip")
    for entry in [*sys.path, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]:
        if entry and Path(entry).name == stem and Path(entry).is_dir():
            return Path(entry)
    return None


def localize(value: Any, bundle: Bundle) -> Any:
    """``value`` (a task row, a config, a path) with every packaged path replaced by where its package
    is on this node; a path inside a packaged folder follows its folder. Raises :class:`EvalhubError`
    when a package this worker was given is not on its node."""
    if not bundle.files:
        return value
    roots: dict[str, Path] = {}
    for original, entry in bundle.files.items():
        root = package_root(entry["uri"])
        if root is None:
            raise EvalhubError(
                f"the package of {original} ({entry['uri']}) is not on this node: the worker was started "
                "without it"
            )
        roots[original] = root / entry["name"]

    def swap(item: Any) -> Any:
        if isinstance(item, str) and os.path.isabs(item):
            norm = os.path.normpath(item)
            if norm in roots:
                return str(roots[norm])
            for original, local in roots.items():
                if norm.startswith(original + os.sep):
                    return str(local / os.path.relpath(norm, original))
            return item
        if isinstance(item, dict):
            return {k: swap(v) for k, v in item.items()}
        if isinstance(item, list):
            return [swap(v) for v in item]
        return item

    return swap(value)


def digest_of(value: Any) -> str:
    """A digest of a task row or config where every local file or folder counts by its content, not
    its path (so the same data at another path, or unpacked on another node, is the same task)."""
    import json

    from evalhub._content import digest

    def swap(item: Any) -> Any:
        if isinstance(item, str) and os.path.isabs(item) and os.path.exists(item):
            return {"content": digest(item)}
        if isinstance(item, dict):
            return {k: swap(v) for k, v in item.items()}
        if isinstance(item, list):
            return [swap(v) for v in item]
        return item

    text = json.dumps(swap(value), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


__all__ = ["MAX_BYTES", "Bundle", "digest_of", "local_paths", "localize", "merged", "package", "package_root"]
