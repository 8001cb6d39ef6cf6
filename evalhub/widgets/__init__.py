"""The notebook widgets (anywidget): a live run monitor, a comparison table, an output diff,
curves, a registry browser, a text-to-image grid, an annotator and an experiment page gathering them. Each reads through a Hub from the tracking server and carries
text/plain and text/html fallbacks for nbconvert, nbval and terminal IPython.

>>> evalhub.monitor(exp); evalhub.compare(exp); evalhub.diff(exp, task="arith-add")
>>> evalhub.curves(run, "loss"); evalhub.registry(hub)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "RunMonitor": "_monitor",
    "monitor": "_monitor",
    "ComparisonTable": "_compare",
    "compare": "_compare",
    "OutputDiff": "_diff",
    "diff": "_diff",
    "Curves": "_curves",
    "curves": "_curves",
    "RegistryBrowser": "_registry",
    "registry": "_registry",
    "ImageGrid": "_images",
    "images": "_images",
    "Annotator": "_annotate",
    "annotate": "_annotate",
    "ExperimentPage": "_page",
    "page": "_page",
}

if TYPE_CHECKING:
    from evalhub.widgets._annotate import Annotator, annotate
    from evalhub.widgets._compare import ComparisonTable, compare
    from evalhub.widgets._curves import Curves, curves
    from evalhub.widgets._diff import OutputDiff, diff
    from evalhub.widgets._images import ImageGrid, images
    from evalhub.widgets._monitor import RunMonitor, monitor
    from evalhub.widgets._page import ExperimentPage, page
    from evalhub.widgets._registry import RegistryBrowser, registry


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evalhub.widgets' has no attribute {name!r}")
    from evalhub._extras import needs_extra

    with needs_extra("notebook", f"evalhub.{name}"):
        return getattr(importlib.import_module(f"evalhub.widgets.{module}"), name)


__all__ = [
    "Annotator",
    "ComparisonTable",
    "Curves",
    "ExperimentPage",
    "ImageGrid",
    "OutputDiff",
    "RegistryBrowser",
    "RunMonitor",
    "annotate",
    "compare",
    "curves",
    "diff",
    "images",
    "monitor",
    "page",
    "registry",
]
