"""Bring-your-own-model repos: a code folder with an ``ai_eval_config.yaml`` at its root.

```yaml
family: arith-rules            # registered (or reused) model family
modality: llm                  # optional, default llm
model: arith-solver            # the model's name
runtime: python                # python (default), or hf / vllm / openai for a repo of weights
adapter: arith_solver:ArithSolver   # module:Class, importable from the repo root (python runtime)
description: a rule-based solver     # optional
default_params: {}             # optional, passed to the class as params
checkpoints:                   # optional list
  - {name: v1, uri: weights/v1, step: 1}   # a relative uri is relative to the repo
```

The class is built as ``Class(uri, params)`` and answers ``generate(prompts, params) -> list[str]``
(``params``: a dict with ``max_new_tokens``, ``until``, ``temperature``, ``top_p``, ``do_sample``,
``seed``); it may also answer ``loglikelihood(requests) -> list[(float, bool)]``. See
``evalhub.adapters.python``.

>>> hub.register_repo("path/to/repo")   # or: evalhub register path/to/repo
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhub.adapters import RUNTIMES as ADAPTERS
from evalhub.errors import Conflict, RepoConfigError

CONFIG_NAME = "ai_eval_config.yaml"
RUNTIMES = tuple(ADAPTERS)  # the one list: evalhub.adapters.RUNTIMES
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
_ENTRYPOINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_KNOWN = {
    "family",
    "modality",
    "model",
    "runtime",
    "adapter",
    "description",
    "default_params",
    "checkpoints",
    "metadata",
}


@dataclass(frozen=True)
class CheckpointEntry:
    """One checkpoint listed in the config; ``uri`` already absolute when it was a relative path."""

    name: str
    uri: str
    step: int | None = None
    epoch: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RepoConfig:
    """A validated ``ai_eval_config.yaml``."""

    path: Path
    family: str
    model: str
    runtime: str
    adapter: str | None
    modality: str = "llm"
    description: str = ""
    default_params: dict[str, Any] = field(default_factory=dict)
    checkpoints: tuple[CheckpointEntry, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        """The repo folder (the code location registered as ``code_uri``)."""
        return self.path.parent


def load_config(path: str | Path) -> RepoConfig:
    """Read and validate a repo's config (``path`` is the repo folder or the YAML file itself).

    Raises ``RepoConfigError`` naming the file and the field at fault.
    """
    import yaml

    target = Path(path).expanduser().resolve()
    config_path = target / CONFIG_NAME if target.is_dir() else target
    where = str(config_path)
    if not config_path.is_file():
        raise RepoConfigError(f"no {CONFIG_NAME} here: a model repo needs one at its root", path=where)
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RepoConfigError(f"not valid YAML: {exc}", path=where) from exc
    if not isinstance(data, dict):
        raise RepoConfigError("the file must hold a mapping (family:, model:, runtime:, ...)", path=where)
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise RepoConfigError(
            f"unknown field; the fields are {', '.join(sorted(_KNOWN))}", path=where, field=unknown[0]
        )

    def name(key: str, required: bool = True) -> str:
        value = data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise RepoConfigError("required, a non-empty string", path=where, field=key)
        if not _NAME.match(value):
            raise RepoConfigError(
                f"{value!r} is not a valid name (letters, digits, . _ - /)", path=where, field=key
            )
        return value

    runtime = data.get("runtime", "python")
    if runtime not in RUNTIMES:
        raise RepoConfigError(
            f"{runtime!r} is not a runtime; use one of {', '.join(RUNTIMES)}", path=where, field="runtime"
        )
    adapter = data.get("adapter")
    if adapter is not None and (not isinstance(adapter, str) or not _ENTRYPOINT.match(adapter)):
        raise RepoConfigError(f"{adapter!r} is not of the form module:Class", path=where, field="adapter")
    if runtime == "python" and adapter is None:
        raise RepoConfigError("required for runtime python: module:Class", path=where, field="adapter")
    for key in ("default_params", "metadata"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise RepoConfigError("must be a mapping", path=where, field=key)
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise RepoConfigError("must be a string", path=where, field="description")
    modality = data.get("modality", "llm")
    if not isinstance(modality, str) or not modality:
        raise RepoConfigError("must be a string such as llm", path=where, field="modality")
    return RepoConfig(
        path=config_path,
        family=name("family"),
        model=name("model"),
        runtime=runtime,
        adapter=adapter,
        modality=modality,
        description=description,
        default_params=dict(data.get("default_params") or {}),
        checkpoints=_checkpoints(data.get("checkpoints"), config_path.parent, where),
        metadata=dict(data.get("metadata") or {}),
    )


def _checkpoints(value: Any, repo: Path, where: str) -> tuple[CheckpointEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RepoConfigError("must be a list of {name, uri, step}", path=where, field="checkpoints")
    entries: list[CheckpointEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"checkpoints[{i}]"
        if not isinstance(item, dict):
            raise RepoConfigError("must be a mapping with name and uri", path=where, field=at)
        cp_name, uri = item.get("name"), item.get("uri")
        if not isinstance(cp_name, str) or not _NAME.match(cp_name):
            raise RepoConfigError(
                "required, a name (letters, digits, . _ - /)", path=where, field=f"{at}.name"
            )
        if cp_name in seen:
            raise RepoConfigError(f"duplicate checkpoint name {cp_name!r}", path=where, field=f"{at}.name")
        seen.add(cp_name)
        if not isinstance(uri, str) or not uri.strip():
            raise RepoConfigError("required, a weights URI or a path", path=where, field=f"{at}.uri")
        for key in ("step", "epoch"):
            if item.get(key) is not None and (isinstance(item[key], bool) or not isinstance(item[key], int)):
                raise RepoConfigError("must be an integer", path=where, field=f"{at}.{key}")
        extra = item.get("metadata") or {}
        if not isinstance(extra, dict):
            raise RepoConfigError("must be a mapping", path=where, field=f"{at}.metadata")
        if "://" not in uri and not Path(uri).expanduser().is_absolute():
            uri = str((repo / uri).resolve())
        entries.append(CheckpointEntry(cp_name, uri, item.get("step"), item.get("epoch"), dict(extra)))
    return tuple(entries)


def register_repo(registry: Any, path: str | Path) -> dict[str, Any]:
    """Validate ``path``'s ``ai_eval_config.yaml`` and register its family, model and checkpoints.

    Registering stores metadata only. An existing family is reused; an existing model is reused when it
    points at the same code and adapter (else ``Conflict``); existing checkpoints are kept.
    Returns ``{"family": {...}, "model": {...}, "checkpoints": [{...}, ...]}``.
    """
    cfg = load_config(path)
    try:
        family = registry.register_family(cfg.family, modality=cfg.modality, description=cfg.description)
    except Conflict:
        family = registry.family(cfg.family)
    code_uri = str(cfg.repo)
    try:
        model = registry.register_model(
            cfg.model,
            family=cfg.family,
            runtime=cfg.runtime,
            code_uri=code_uri,
            adapter=cfg.adapter,
            default_params=cfg.default_params,
            metadata={**cfg.metadata, "config": str(cfg.path)},
        )
    except Conflict:
        model = registry.model(cfg.model)
        if model.get("code_uri") != code_uri or model.get("adapter") != cfg.adapter:
            raise Conflict(
                f"a model named {cfg.model!r} is already registered from {model.get('code_uri')} "
                f"({model.get('adapter')}); rename the model in {cfg.path}",
                status=409,
                code="conflict",
                field="model",
            ) from None
    checkpoints = []
    for entry in cfg.checkpoints:
        try:
            checkpoints.append(
                registry.register_checkpoint(
                    cfg.model,
                    entry.name,
                    uri=entry.uri,
                    step=entry.step,
                    epoch=entry.epoch,
                    metadata=entry.metadata,
                )
            )
        except Conflict:
            checkpoints.append(registry.checkpoint(cfg.model, entry.name))
    return {"family": family, "model": model, "checkpoints": checkpoints}
