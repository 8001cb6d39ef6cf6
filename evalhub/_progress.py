"""Progress of a long wait where no terminal redraws a bar: one plain line per change.

A tqdm bar redraws itself with carriage returns, which a log file (CI, ``evalhub run > log``, a
batch job) keeps as one ever-growing line. :class:`LineProgress` prints a new line only when the
run counts change or the completed share crosses a step (every 5 % by default).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm draws a widget instead of a text bar)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def on_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


class LineProgress:
    """``update(done, total, counts)`` prints ``desc: done/total unit (pct%) · k=v …`` when it changed.

    >>> p = LineProgress("experiment 3", unit="req")
    >>> p.update(0, 200, {"queued": 4})      # experiment 3: 0/200 req (0%) · queued=4
    >>> p.update(3, 200, {"queued": 4})      # nothing: under the next 5 % and the same counts
    """

    def __init__(self, desc: str, unit: str = "", step_pct: int = 5, stream: IO[str] | None = None) -> None:
        self.desc = desc
        self.unit = unit
        self.step_pct = max(1, step_pct)
        self.stream = stream
        self.lines = 0
        self._last: tuple[object, ...] | None = None

    def update(self, done: int, total: int, counts: Mapping[str, int] | None = None) -> None:
        shown = " ".join(f"{k}={v}" for k, v in (counts or {}).items() if v)
        done = min(done, total) if total else done
        pct = 100 * done // total if total else None
        # Without a total, only the counts make a change (each finished request would be a line).
        key = (total, shown, None if pct is None else (100 if done == total else pct // self.step_pct))
        if key == self._last:
            return
        self._last = key
        self._print(done, total, shown)

    def close(self) -> None:
        """Nothing to clear: every line is already final."""

    def _print(self, done: int, total: int, shown: str) -> None:
        unit = f" {self.unit}" if self.unit else ""
        text = (
            f"{self.desc}: {done}/{total}{unit} ({100 * done // total}%)"
            if total
            else f"{self.desc}: {done}{unit}"
        )
        if shown:
            text += f" · {shown}"
        print(text, file=self.stream or sys.stderr, flush=True)
        self.lines += 1


__all__ = ["LineProgress", "in_notebook", "on_terminal"]
