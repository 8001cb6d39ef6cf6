"""One trained tiny text-to-image build per test session (pipelines at steps 100/200/300, classifier, CLIP,
prompt set), shared by the T2I tests like tests/_tinymodel.py shares the tiny GPT."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

STEPS = 300
SAVE_EVERY = 100
PROMPTS = 64
_BUILDS: dict[int, Any] = {}


def trained_t2i(steps: int = STEPS) -> Any:
    """A ``T2IBuild`` trained for ``steps`` (once per process)."""
    from evalhub import t2i

    if steps not in _BUILDS:
        out = Path(tempfile.mkdtemp(prefix=f"evalhub-t2i-{steps}-"))
        atexit.register(shutil.rmtree, out, True)
        _BUILDS[steps] = t2i.build(out, hub=None, steps=steps, save_every=SAVE_EVERY, seed=0, prompts=PROMPTS)
    return _BUILDS[steps]
