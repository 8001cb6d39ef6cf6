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
               name: str | None = None, start_at: float | None = None) -> dict[str, Any]:  # fmt: skip
        """Keep a schedule of ``spec`` (YAML text, a path, a dict): validated against the registry now,
        as a run of it would be; the first tick is ``start_at`` (default: now) or cron's next time."""
        import yaml

        from evalhub.execution.schedules import first_tick, period_s
        from evalhub.orchestrator import plan
        from evalhub.spec import parse_spec

        if (every is None) == (cron is None):
            raise InvalidValue("give one of every= (seconds, or text such as '6h') and cron= ('0 3 * * *')")
        every_s = None if every is None else period_s(every)
        parsed, text = parse_spec(spec)
        plan(self.client, parsed)  # a spec that could not run is refused here, not at its first tick
        name = name or parsed.name
        if not name:
            raise InvalidValue("name the schedule (name=...) or give the spec a name")
        first = first_tick(every_s, cron, time.time() if start_at is None else float(start_at))
        body = {
            "name": name,
            "spec": yaml.safe_load(text),
            "every_s": every_s,
            "cron": cron,
            "next_at": first,
        }
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
