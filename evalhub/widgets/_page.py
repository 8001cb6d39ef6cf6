"""An experiment page: one widget that gathers an experiment (the seed's "experiment detail").

A header with the experiment's name, its runs' states and its spec, over tabs: the comparison table
(paired deltas against a baseline), the curves (each metric against checkpoint step, the training
loss of the run that wrote the checkpoints beside it), the output diff, the slices (with ``by=``), the
judges' reliability and the annotation queues' progress. The live parts are evalhub's own widgets
(:class:`ComparisonTable`, :class:`Curves`, :class:`OutputDiff`); the tables are read once when the
page is made (``page.refresh()`` reads them again). A part with nothing to show says why in its tab.

>>> evalhub.page(exp, baseline="step-100", by="subject")
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets

from evalhub.errors import EvalhubError
from evalhub.widgets._base import Fallbacks, fmt_number, html_table, text_table
from evalhub.widgets._source import client_of, id_of

TABLE_ROWS = 50
"""The rows a table tab shows (the slices' most significant losses first)."""


def _frame_html(frame: Any, caption: str = "") -> str:
    rows = [[fmt_number(v) for v in row] for row in frame.head(TABLE_ROWS).rows()]
    return html_table(frame.columns, rows, caption)


def _frame_text(frame: Any) -> str:
    rows = [[fmt_number(v) for v in row] for row in frame.head(TABLE_ROWS).rows()]
    return text_table(frame.columns, rows)


class ExperimentPage(Fallbacks, ipywidgets.VBox):  # type: ignore[misc]
    """See the module docstring. ``parts`` maps each tab's title to its widget or its frame (a
    ``polars.DataFrame``) or, where there is nothing to show, the reason (a string)."""

    def __init__(
        self,
        exp: Any,
        *,
        hub: Any = None,
        baseline: str = "",
        by: str | None = None,
        metric: str | None = None,
        training: str | None = "loss",
    ) -> None:
        from evalhub.experiment import Experiment

        self._client = client_of(exp, hub)
        self.experiment = Experiment(self._client, id_of(exp, "an experiment"))
        self.baseline = baseline
        self.by = by
        self.metric = metric
        self.training = training
        self.parts: dict[str, Any] = {}
        self._header = ipywidgets.HTML()
        self._tabs = ipywidgets.Tab()
        super().__init__([self._header, self._tabs])
        self.add_class("evh-page")
        self.refresh()

    # -- reading ------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the experiment and every part again."""
        self.info = self.experiment.info()
        self.parts = {
            "Runs": self._runs(),
            "Curves": self._curves(),
            "Diff": self._diff(),
            "Slices": self._slices(),
            "Judges": self._judges(),
            "Annotation": self._annotation(),
        }
        self._header.value = self._header_html()
        children = []
        for title, part in self.parts.items():
            if isinstance(part, str):
                children.append(ipywidgets.HTML(f'<p class="evh-empty">{html.escape(part)}</p>'))
            elif isinstance(part, ipywidgets.DOMWidget):
                children.append(part)
            else:
                children.append(ipywidgets.HTML(_frame_html(part, title)))
        self._tabs.children = children
        self._tabs.titles = tuple(self.parts)

    def _runs(self) -> Any:
        from evalhub.widgets._compare import ComparisonTable

        return ComparisonTable(self.experiment.id, hub=self._client, baseline=self.baseline)

    def _curves(self) -> Any:
        from evalhub.widgets._curves import curves

        steps = [r.get("step") for r in self._client.paged(f"/experiments/{self.experiment.id}/runs")]
        if not any(s is not None for s in steps):
            return "no run's checkpoint has a step: curves need checkpoints along training"
        key = self.metric
        try:
            return curves(self.experiment, key, hub=self._client, training=self.training)
        except EvalhubError as exc:
            if self.training is None or "no run wrote" not in str(exc):
                return f"no curves: {exc}"
        return curves(self.experiment, key, hub=self._client)  # no training run wrote the checkpoints

    def _diff(self) -> Any:
        from evalhub.widgets._diff import OutputDiff

        if self.info.get("counts", {}).get("completed", 0) == 0:
            return "no completed run yet: the diff shows their outputs side by side"
        return OutputDiff(self.experiment.id, hub=self._client)

    def _slices(self) -> Any:
        if not self.by:
            return "give by= (a document column such as 'subject', or prompt_length, answer_length, subtask)"
        try:
            frame = self.experiment.slices(self.by, baseline=self.baseline or None)
        except EvalhubError as exc:
            return f"no slices by {self.by!r}: {exc}"
        if self.baseline and frame["delta"].null_count() < frame.height:
            import polars as pl

            frame = frame.sort(["p_holm", "delta"], nulls_last=True).filter(pl.col("delta").is_not_null())
        return frame.select(
            [c for c in ("task", "slice", "label", "metric", "n", "mean", "low", "high", "delta", "p_holm")
             if c in frame.columns]
        )  # fmt: skip

    def _judges(self) -> Any:
        scorings = self.experiment.scorings()
        if scorings.is_empty() or "judge" not in set(scorings["kind"].to_list()):
            return "no judge has scored this experiment: exp.score(Judge(...))"
        return self.experiment.judge_reliability()

    def _annotation(self) -> Any:
        from evalhub.services.annotation import Annotation

        queues = Annotation(self._client).queues(self.experiment.id)  # type: ignore[arg-type]
        if queues.is_empty():
            return "no annotation queue over this experiment: hub.annotation_queue(exp, ...)"
        return queues

    # -- rendering ----------------------------------------------------------------------------------

    def _summary(self) -> tuple[str, str]:
        counts = {k: v for k, v in (self.info.get("counts") or {}).items() if v}
        states = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no runs"
        return (
            f"experiment {self.experiment.id} · {self.info.get('name')} · {self.info.get('status')}",
            states,
        )

    def _header_html(self) -> str:
        title, states = self._summary()
        spec = self.info.get("spec_yaml") or ""
        details = (f"<details><summary>spec</summary><pre>{html.escape(spec)}</pre></details>"
                   if spec else "")  # fmt: skip
        return (
            f'<div class="evh-page-head"><b>{html.escape(title)}</b> — {html.escape(states)}{details}</div>'
        )

    def _text(self) -> str:
        title, states = self._summary()
        out = [f"{title} — {states}"]
        for name, part in self.parts.items():
            out.append(f"\n## {name}")
            if isinstance(part, str):
                out.append(part)
            elif hasattr(part, "_text"):
                out.append(part._text())
            else:
                out.append(_frame_text(part))
        return "\n".join(out)

    def _html(self) -> str:
        out = [self._header_html()]
        for name, part in self.parts.items():
            out.append(f"<h4>{html.escape(name)}</h4>")
            if isinstance(part, str):
                out.append(f"<p>{html.escape(part)}</p>")
            elif hasattr(part, "_html"):
                out.append(part._html())
            else:
                out.append(_frame_html(part))
        return "\n".join(out)


def page(
    exp: Any,
    *,
    hub: Any = None,
    baseline: str = "",
    by: str | None = None,
    metric: str | None = None,
    training: str | None = "loss",
) -> ExperimentPage:
    """An :class:`ExperimentPage` of an experiment (an Experiment or its id)."""
    return ExperimentPage(exp, hub=hub, baseline=baseline, by=by, metric=metric, training=training)
