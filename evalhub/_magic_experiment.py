"""``%%evalhub experiment``: the cell body is the experiment YAML; submit it and monitor it."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from evalhub.hub import Hub

_NAME_LINE = re.compile(r"^name\s*:.*$", re.MULTILINE)


def with_name(text: str, name: str) -> str:
    """The spec text with its top-level ``name`` replaced (line numbers unchanged)."""
    line = f"name: {json.dumps(name)}"
    if _NAME_LINE.search(text):
        return _NAME_LINE.sub(lambda _: line, text, count=1)
    return text.rstrip("\n") + "\n" + line + "\n"


def spec_usage_error(exc: Any, text: str) -> UsageError:
    """A SpecError as a UsageError that quotes the offending line of the cell."""
    message = str(exc)
    line = getattr(exc, "line", None)
    lines = text.splitlines()
    if line is not None and 1 <= line <= len(lines):
        message += f"\n  {line} | {lines[line - 1]}"
    return UsageError(f"experiment spec: {message}")


def submit(hub: Hub, text: str, *, name: str | None, wait: bool, display: Any) -> Any:
    """Validate and submit the spec, display the live RunMonitor, wait unless told not to."""
    from evalhub.errors import SpecError
    from evalhub.spec import load_spec

    if not text.strip():
        raise UsageError(
            "%%evalhub experiment: the cell is empty; write the experiment YAML (name, models, tasks) below the magic"
        )
    if name:
        text = with_name(text, name)
    try:
        load_spec(text)  # refuse a malformed spec with its line before anything is created
        exp = hub.run_experiment(text, wait=False, progress=False)
    except SpecError as exc:
        raise spec_usage_error(exc, text) from None
    from evalhub.widgets import monitor

    mon = monitor(exp, hub=hub)
    display(mon)
    if wait:
        try:
            waiter = getattr(exp, "wait", None)
            if callable(waiter):
                waiter()
            else:
                mon.wait()
        except KeyboardInterrupt:
            print(
                f"stopped waiting; experiment {mon.experiment_id} goes on (cancel it with %evalhub cancel {mon.experiment_id})"
            )
        finally:
            mon.refresh()
    return exp
