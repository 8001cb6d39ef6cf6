"""Helpers shared by the experiment tests: one tiny model per test session, registered per project,
and small python-runtime plugins (slow, broken) written into a folder."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

_BUILDS: dict[int, Any] = {}


def tiny_build(root: Path, steps: int = 300, save_every: int = 100) -> Any:
    """Train the tiny model once per session (per ``steps``) and write its task files."""
    from evalhub import tiny

    if steps not in _BUILDS:
        out = root / f"tiny-{steps}"
        build = tiny.build(out, hub=None, steps=steps, save_every=save_every, seed=0)
        build.tasks = tiny.write_tasks(out, n=60, seed=0)
        _BUILDS[steps] = build
    return _BUILDS[steps]


def register_tiny(hub: Any, build: Any) -> None:
    """Register family, model, checkpoints and the arithmetic tasks of ``build`` in the hub's project."""
    from evalhub import tiny

    hub.register_family(tiny.FAMILY, modality="llm")
    hub.register_model(tiny.MODEL, family=tiny.FAMILY, runtime="hf")
    for step, path in sorted(build.checkpoints.items()):
        hub.register_checkpoint(tiny.MODEL, f"step-{step}", uri=str(path), step=step)
    tiny.register_tasks(hub, build.out_dir)


PLUGIN = '''
"""Test plugins for the python runtime: deterministic arithmetic answers, optionally slow or broken."""
import os
import time


def _answer(prompt):
    a, b = prompt.strip().rstrip("=").split("+")
    return str(int(a) + int(b))


class Slow:
    """Answers arithmetic right, sleeping ``delay`` seconds per prompt."""

    def __init__(self, uri, params):
        self.delay = float(params.get("delay", 0.2))

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            time.sleep(self.delay)
            out.append(_answer(p))
        return out


class BrokenLoad:
    def __init__(self, uri, params):
        raise RuntimeError("this plugin refuses to load: CUDA out of memory (simulated)")

    def generate(self, prompts, params):
        return []


class ShortAnswers:
    def __init__(self, uri, params):
        pass

    def generate(self, prompts, params):
        return [_answer(p) for p in prompts][:-1]
'''


def write_plugins(folder: Path) -> Path:
    """Write the plugin module ``evalhub_test_plugins`` into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evalhub_test_plugins.py").write_text(textwrap.dedent(PLUGIN))
    (folder / "weights").mkdir(exist_ok=True)
    return folder


def register_plugin(hub: Any, folder: Path, name: str, cls: str, **params: Any) -> None:
    """A python-runtime model ``name`` backed by ``evalhub_test_plugins:<cls>`` with one checkpoint ``v1``."""
    try:
        hub.register_family("plugins", modality="llm")
    except Exception:  # already there
        pass
    hub.register_model(
        name,
        family="plugins",
        runtime="python",
        code_uri=str(folder),
        adapter=f"evalhub_test_plugins:{cls}",
        default_params=params,
    )
    hub.register_checkpoint(name, "v1", uri=str(folder / "weights"), step=1)
