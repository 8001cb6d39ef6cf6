"""RegistryBrowser: families, models and checkpoints with their metadata; tasks and benchmarks."""

from __future__ import annotations

from typing import Any

import traitlets

from evalhub.widgets._base import EvalhubWidget, text_table
from evalhub.widgets._source import ClientLike, client_of
from evalhub.widgets._static import esm_source

_KINDS = ("families", "models", "checkpoints", "tasks", "benchmarks")


class RegistryBrowser(EvalhubWidget):
    """What is registered on the tracking server, browsable: families → models → checkpoints (with
    URI, step, training config, metadata), and tasks and benchmarks. Lists are read up to ``limit``
    items per kind (``totals`` says how many there are).

    >>> evalhub.registry(hub)
    """

    _esm = esm_source("registry.js")

    families = traitlets.List(traitlets.Dict()).tag(sync=True)
    models = traitlets.List(traitlets.Dict()).tag(sync=True)
    checkpoints = traitlets.List(traitlets.Dict()).tag(sync=True)
    tasks = traitlets.List(traitlets.Dict()).tag(sync=True)
    benchmarks = traitlets.List(traitlets.Dict()).tag(sync=True)
    totals = traitlets.Dict().tag(sync=True)
    project = traitlets.Unicode("").tag(sync=True)

    def __init__(self, hub: Any = None, *, limit: int = 1000) -> None:
        super().__init__()
        self._client: ClientLike = client_of(None, hub)
        self.project = str(getattr(hub, "project", "") or "")
        self.limit = limit
        self.refresh()

    def refresh(self) -> None:
        """Read the registry again."""
        totals = {}
        values: dict[str, list[dict[str, Any]]] = {}
        for kind in _KINDS:
            page = self._client.get(f"/api/{kind}", limit=self.limit, offset=0)
            values[kind] = list(page.get("items", []))
            totals[kind] = int(page.get("total", len(values[kind])))
        with self.hold_sync():
            for kind in _KINDS:
                setattr(self, kind, values[kind])
            self.totals = totals

    def _text(self) -> str:
        parts = [f"Registry ({', '.join(f'{self.totals.get(k, 0)} {k}' for k in _KINDS)})"]
        if self.models:
            rows = []
            for m in self.models:
                cks = [c["name"] for c in self.checkpoints if c.get("model") == m["name"]]
                rows.append([m.get("family"), m["name"], m.get("runtime"), ", ".join(cks)])
            parts.append(text_table(["family", "model", "runtime", "checkpoints"], rows))
        if self.tasks:
            parts.append(
                text_table(
                    ["task", "type", "metrics"],
                    [[t["name"], t.get("type"), ", ".join(t.get("metrics") or [])] for t in self.tasks],
                )
            )
        if self.benchmarks:
            parts.append(
                text_table(
                    ["benchmark", "tasks"],
                    [[b["name"], ", ".join(b.get("tasks") or [])] for b in self.benchmarks],
                )
            )
        return "\n\n".join(parts)


def registry(hub: Any = None, *, limit: int = 1000) -> RegistryBrowser:
    """A :class:`RegistryBrowser` of the hub's project (``evalhub.connect()`` when left out)."""
    return RegistryBrowser(hub, limit=limit)
