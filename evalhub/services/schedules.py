"""Schedules of one project: an experiment spec run every so often, kept by the server, run by the
keeper on the cluster (:mod:`evalhub.execution.schedules`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from evalhub.client import Client
from evalhub.errors import InvalidValue, NotFound

if TYPE_CHECKING:
    import polars as pl


class Schedules:
    def __init__(self, client: Client) -> None:
        self.client = client

    def create(self, spec: Any, *, every: float | str | None = None, cron: str | None = None,
               on_checkpoint: str | None = None, name: str | None = None,
               start_at: float | None = None) -> dict[str, Any]:  # fmt: skip
        """Keep a schedule of ``spec`` (YAML text, a path, a dict): validated against the registry now,
        as a run of it would be; the first tick is ``start_at`` (default: now) or cron's next time.
        With ``on_checkpoint`` (a model's name), a trigger: ``spec`` is what ``log_checkpoint``'s
        ``evaluate=`` takes (a task or benchmark name, or a spec without models), run on every
        checkpoint of the model registered from now on, into one growing experiment."""
        import yaml

        from evalhub.execution.schedules import first_tick, period_s
        from evalhub.orchestrator import plan
        from evalhub.spec import parse_spec

        if [every, cron, on_checkpoint].count(None) != 2:
            raise InvalidValue(
                "give one of every= (seconds, or text such as '6h'), cron= ('0 3 * * *') and on_checkpoint= (a model)"
            )
        if on_checkpoint is not None:
            return self._trigger(spec, on_checkpoint, name)
        every_s = None if every is None else period_s(every)
        parsed, text = parse_spec(spec)
        plan(self.client, parsed)  # a spec that could not run is refused here, not at its first tick
        name = name or parsed.name
        if not name:
            raise InvalidValue("name the schedule (name=...) or give the spec a name")
        first = first_tick(cron, time.time() if start_at is None else float(start_at))
        body = {
            "name": name,
            "spec": yaml.safe_load(text),
            "every_s": every_s,
            "cron": cron,
            "next_at": first,
        }
        result: dict[str, Any] = self.client.post("/schedules", body)
        return result

    def _trigger(self, evaluate: Any, model: str, name: str | None) -> dict[str, Any]:
        from evalhub.checkpoint_evals import spec_fragment
        from evalhub.services.registry import Registry

        fragment = spec_fragment(self.client, evaluate)
        Registry(self.client).model(model)  # an unknown model is NotFound here
        name = name or str(fragment.get("name") or f"{model}-checkpoints")
        # only checkpoints from now on: those with a higher id than every one registered already
        watermark = max((int(c["id"]) for c in self.client.paged("/checkpoints", model=model)), default=0)
        body = {"name": name, "spec": fragment, "on_checkpoint": model, "next_at": watermark}
        result: dict[str, Any] = self.client.post("/schedules", body)
        return result

    def get(self, schedule: str | int) -> dict[str, Any]:
        """A schedule by name or id."""
        if isinstance(schedule, int):
            result: dict[str, Any] = self.client.get(f"/schedules/{schedule}")
            return result
        for item in self.client.get("/schedules")["items"]:
            if item["name"] == schedule:
                return dict(item)
        raise NotFound(f"no schedule named '{schedule}' in project '{self.client.project}'")

    def list(self) -> pl.DataFrame:
        """Every schedule: name, period or cron, next tick, pending tick, last experiment, ticks run."""
        from evalhub._frames import frame

        rows = [{k: v for k, v in s.items() if k != "spec"} for s in self.client.get("/schedules")["items"]]
        return frame(rows)

    def delete(self, schedule: str | int) -> None:
        """Stop a schedule (its experiments stay); the keeper ends once no schedule is left."""
        self.client.request("DELETE", f"/schedules/{int(self.get(schedule)['id'])}")
