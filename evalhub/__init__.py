"""evalhub: a Jupyter-native platform to evaluate and compare models.

>>> import evalhub
>>> hub = evalhub.connect()            # embedded tracking server under ~/.evalhub
>>> run = hub.init_run("train-tiny", config={"lr": 3e-4})
>>> run.log({"loss": 1.9}, step=10)
>>> run.finish()

Heavy parts (torch, ray, lm-eval, widgets) load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from evalhub import errors
from evalhub._version import __version__
from evalhub.errors import EvalhubError

# public name -> module that defines it; imported on first access.
_LAZY = {
    "connect": "evalhub.hub",
    "Hub": "evalhub.hub",
    "Run": "evalhub.tracking",
    "Experiment": "evalhub.experiment",
    "compare": "evalhub.widgets",
    "diff": "evalhub.widgets",
    "page": "evalhub.widgets",
    "curves": "evalhub.widgets",
    "monitor": "evalhub.widgets",
    "registry": "evalhub.widgets",
    "images": "evalhub.widgets",
    "annotate": "evalhub.widgets",
}

if TYPE_CHECKING:
    from evalhub.experiment import Experiment
    from evalhub.hub import Hub, connect
    from evalhub.tracking import Run
    from evalhub.widgets import annotate, compare, curves, diff, images, monitor, page, registry


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evalhub' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext evalhub``: registers the ``%evalhub`` magics (imports no torch, ray or lm-eval)."""
    from evalhub.magics import load_ipython_extension as load

    load(ipython)


__all__ = [
    "EvalhubError",
    "Experiment",
    "Hub",
    "Run",
    "__version__",
    "annotate",
    "compare",
    "connect",
    "curves",
    "diff",
    "errors",
    "images",
    "load_ipython_extension",
    "monitor",
    "page",
    "registry",
]
