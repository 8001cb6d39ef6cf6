"""The experiments service: submit an experiment spec, get a handle on an experiment, list and compare
them; correct, delete (with their runs) and restore.

>>> experiments = Experiments(client)
>>> exp = experiments.run_experiment("spec.yaml")
>>> experiments.compare(exp.id)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evalhub._frames import compare_frame, comparison, kind_frame
from evalhub.client import Client

if TYPE_CHECKING:
    import polars as pl

    from evalhub.experiment import Experiment
    from evalhub.orchestrator import Plan


class Experiments:
    """Experiments of one project on one tracking server."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def experiment(self, experiment_id: int) -> Experiment:
        """A handle on an experiment (status, compare, samples, wait, cancel)."""
        from evalhub.experiment import Experiment

        return Experiment(self.client, int(experiment_id))

    def experiments(
        self, status: str | None = None, limit: int | None = None, archived: bool = False
    ) -> pl.DataFrame:
        """Experiments, newest first, as a DataFrame (``archived=True``: the deleted ones)."""
        items: list[dict[str, Any]] = []
        for item in self.client.paged("/experiments", limit=min(limit or 1000, 1000), status=status,
                                      archived=archived or None):  # fmt: skip
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return kind_frame("experiments", items)

    def plan(self, spec: Any) -> Plan:
        """Validate a spec against the registry and expand it into runs, without submitting anything."""
        from evalhub.orchestrator import plan

        return plan(self.client, spec)

    def run_experiment(
        self, spec: Any, wait: bool = True, executor: Any = None, progress: bool = True, **kw: Any
    ) -> Experiment:
        """Compile ``spec`` (YAML text, dict or path) into runs, submit them and (by default) wait."""
        from evalhub.orchestrator import run_experiment

        return run_experiment(self.client, spec, wait=wait, executor=executor, progress=progress, **kw)

    def compare(self, experiment_id: int, baseline: str | int | None = None, **kw: Any) -> pl.DataFrame:
        """The comparison table of an experiment: one row per run, one column per metric; with a
        ``baseline``, the paired statistics of every other run against it (see ``Experiment.compare``)."""
        if baseline is not None:
            from evalhub.services.comparison import paired_comparison

            return paired_comparison(self.client, int(experiment_id), baseline, **kw)
        return compare_frame(comparison(self.client, int(experiment_id)))

    def patch_experiment(
        self,
        experiment_id: int,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Correct an experiment: a new ``description``; ``tags``/``metadata`` merged."""
        body = {"description": description, "tags": None if tags is None else dict(tags),
                "metadata": None if metadata is None else dict(metadata)}  # fmt: skip
        result: dict[str, Any] = self.client.request(
            "PATCH", f"/experiments/{int(experiment_id)}", json_body=body
        )
        return result

    def delete_experiment(self, experiment_id: int, *, purge: bool = False) -> dict[str, Any]:
        """Archive an experiment with its runs (restorable), or purge them for good."""
        result: dict[str, Any] = self.client.request(
            "DELETE", f"/experiments/{int(experiment_id)}", params={"purge": purge}
        )
        return result

    def restore_experiment(self, experiment_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.post(f"/experiments/{int(experiment_id)}/restore")
        return result


__all__ = ["Experiments"]
