"""One trained tiny checkpoint per test session, shared by the adapter, server and plugin tests."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

STEPS = 150
_BUILDS: dict[int, Any] = {}
FIXTURE_REPO = Path(__file__).parent / "fixtures" / "plugin_repo"


def trained_tiny(steps: int = STEPS) -> Any:
    """A ``TinyBuild`` trained for ``steps`` (once per process), with its task files written."""
    from evalhub import tiny

    if steps not in _BUILDS:
        out = Path(tempfile.mkdtemp(prefix=f"evalhub-tiny-{steps}-"))
        atexit.register(shutil.rmtree, out, True)
        build = tiny.build(out, hub=None, steps=steps, save_every=steps, seed=0)
        build.tasks = tiny.write_tasks(out, n=40, seed=0)
        _BUILDS[steps] = build
    return _BUILDS[steps]


def tiny_path(steps: int = STEPS) -> Path:
    """The folder of the last checkpoint of the shared build."""
    build = trained_tiny(steps)
    return Path(build.checkpoints[max(build.checkpoints)])
