"""Schedules: an experiment spec and when to run it, kept here; the client's keeper runs the ticks
(see :mod:`evalhub.protocol.schedules` for the claim/done protocol that makes a tick run once)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .errors import Conflict, Invalid, NotFound
from .rows import dump, iso, load, new_id, now


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> int:
            return new_id(
                conn.execute(
                    t.schedules.insert().values(
                        project_id=pid,
                        name=body["name"],
                        spec=dump(body["spec"]),
                        every_s=body.get("every_s"),
                        cron=body.get("cron"),
                        on_checkpoint=body.get("on_checkpoint"),
                        next_at=float(body["next_at"]),
                        ticks_run=0,
                        created_at=now(),
                    )
                )
            )

        try:
            sid = self.db.write(tx)
        except sa.exc.IntegrityError:  # the name is taken (also by a concurrent request)
            raise Conflict(
                f"this project already has a schedule named '{body['name']}': delete it first "
                "(DELETE /api/schedules/{id}) or choose another name",
                field="body.name",
            ) from None
        return self.get(pid, sid)

    def _select(self) -> sa.Select[Any]:
        return sa.select(t.schedules, t.projects.c.name.label("project")).join(
            t.projects, t.projects.c.id == t.schedules.c.project_id
        )

    def get(self, pid: int, sid: int) -> dict[str, Any]:
        c = t.schedules.c
        with self.db.read() as conn:
            row = conn.execute(self._select().where(c.id == sid, c.project_id == pid)).first()
        if row is None:
            raise NotFound(f"schedule {sid} not found in this project")
        return _schedule(row)

    def list_schedules(self, pid: int) -> dict[str, Any]:
        c = t.schedules.c
        with self.db.read() as conn:
            items = [
                _schedule(r) for r in conn.execute(self._select().where(c.project_id == pid).order_by(c.id))
            ]
        return {"items": items, "total": len(items)}

    def delete(self, pid: int, sid: int) -> dict[str, Any]:
        """Forget the schedule; answers it as it was."""
        c = t.schedules.c
        was = self.get(pid, sid)

        def tx(conn: sa.Connection) -> int:
            return int(conn.execute(sa.delete(t.schedules).where(c.id == sid, c.project_id == pid)).rowcount)

        if not self.db.write(tx):
            raise NotFound(f"schedule {sid} not found in this project")
        return was

    def claim(self, pid: int, sid: int, tick: float, next_at: float) -> dict[str, Any]:
        """Take the due tick ``tick`` (compare-and-set on ``next_at``): 409 when it is not the
        schedule's next tick any more (another keeper took it), when a tick is still pending, or when
        it is not due yet."""
        if next_at <= tick:
            raise Invalid(
                f"next_at ({next_at}) must be later than the tick claimed ({tick})", field="body.next_at"
            )
        current = self.get(pid, sid)
        if tick > now():
            raise Conflict(f"tick {tick} of schedule {sid} is not due yet", field="body.tick")
        c = t.schedules.c

        def tx(conn: sa.Connection) -> int:
            return int(
                conn.execute(
                    sa.update(t.schedules)
                    .where(c.id == sid, c.project_id == pid, c.next_at == tick, c.pending_tick.is_(None))
                    .values(next_at=next_at, pending_tick=tick)
                ).rowcount
            )

        if not self.db.write(tx):
            raise Conflict(
                f"tick {tick} of schedule {sid} is not its next free tick (next_at {current['next_at']}, "
                f"pending {current['pending_tick']}): another keeper has it",
                field="body.tick",
            )
        return self.get(pid, sid)

    def done(self, pid: int, sid: int, tick: float, experiment_id: int) -> dict[str, Any]:
        """The pending tick's experiment: the tick is run. 409 unless ``tick`` is the pending one."""
        self.get(pid, sid)
        c = t.schedules.c

        def tx(conn: sa.Connection) -> int:
            return int(
                conn.execute(
                    sa.update(t.schedules)
                    .where(c.id == sid, c.project_id == pid, c.pending_tick == tick)
                    .values(
                        pending_tick=None,
                        last_tick=tick,
                        last_experiment_id=experiment_id,
                        ticks_run=c.ticks_run + 1,
                    )
                ).rowcount
            )

        if not self.db.write(tx):
            raise Conflict(f"tick {tick} is not the pending tick of schedule {sid}", field="body.tick")
        return self.get(pid, sid)


def _schedule(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "project": row.project,
        "name": row.name,
        "spec": load(row.spec, {}),
        "every_s": row.every_s,
        "cron": row.cron,
        "on_checkpoint": row.on_checkpoint,
        "next_at": row.next_at,
        "pending_tick": row.pending_tick,
        "last_tick": row.last_tick,
        "last_experiment_id": None if row.last_experiment_id is None else int(row.last_experiment_id),
        "ticks_run": int(row.ticks_run),
        "created_at": iso(row.created_at),
    }
