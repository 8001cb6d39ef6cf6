"""Who may talk to the server: projects, and the tokens issued for them (listed, revoked, expiring).

A token is stored as its SHA-256 only. Lookups are cached for a few seconds, so a revoked token is
refused by every server process within ``TOKEN_CACHE_S``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Any

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .errors import Conflict, NotFound, Unauthorized
from .rows import count, iso, new_id, now, page

TOKEN_CACHE_S = 5.0
LAST_USED_EVERY_S = 60.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str, expected: str | None) -> bool:
    """A constant-time comparison (the admin token must not leak through timing)."""
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _token_info(row: Any, project: str) -> dict[str, Any]:
    return {
        "name": row.name,
        "project": project,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
        "last_used_at": iso(row.last_used_at),
    }


class AccessStore:
    """Projects and tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._projects: dict[str, int] = {}
        # hash -> (cached at, (project id, project, token id, person))
        self._tokens: dict[str, tuple[float, tuple[int, str, int, str | None]]] = {}
        self._used: dict[int, float] = {}
        self._lock = threading.Lock()

    # ---- projects --------------------------------------------------------------------------------

    def project_id(self, name: str, *, create: bool) -> int:
        """The id of project ``name``; created on first use when ``create`` (embedded mode)."""
        cached = self._projects.get(name)
        if cached is not None:
            return cached
        with self.db.read() as conn:
            pid = conn.execute(sa.select(t.projects.c.id).where(t.projects.c.name == name)).scalar()
        if pid is None:
            if not create:
                raise NotFound(f"project '{name}' does not exist")
            pid = self._create_project(name, exist_ok=True)["id"]
        self._projects[name] = int(pid)
        return int(pid)

    def _create_project(self, name: str, *, exist_ok: bool) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> dict[str, Any]:
            row = conn.execute(sa.select(t.projects).where(t.projects.c.name == name)).first()
            if row is not None:
                if not exist_ok:
                    raise Conflict(f"project '{name}' already exists", field="body.name")
                return _project(row)
            created = now()
            pid = new_id(conn.execute(t.projects.insert().values(name=name, created_at=created)))
            return {"id": pid, "name": name, "created_at": iso(created)}

        try:
            return self.db.write(tx)
        except sa.exc.IntegrityError:
            # Created by a concurrent request between our read and our insert.
            if not exist_ok:
                raise Conflict(f"project '{name}' already exists", field="body.name") from None
            with self.db.read() as conn:
                return _project(conn.execute(sa.select(t.projects).where(t.projects.c.name == name)).one())

    def create_project(self, name: str) -> dict[str, Any]:
        return self._create_project(name, exist_ok=False)

    def list_projects(self, limit: int, offset: int) -> dict[str, Any]:
        q = sa.select(t.projects).order_by(t.projects.c.id)
        with self.db.read() as conn:
            items = [_project(r) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)

    # ---- tokens ----------------------------------------------------------------------------------

    def create_token(
        self, project: str, name: str, expires_in_days: float | None = None, person: str | None = None
    ) -> dict[str, Any]:
        """A new token of ``project``; with ``person``, one person's (the labels it gives are theirs)."""
        pid = self.project_id(project, create=False)
        token = "ehk_" + secrets.token_urlsafe(32)
        created = now()
        expires = None if expires_in_days is None else created + expires_in_days * 86400

        def tx(conn: sa.Connection) -> None:
            exists = conn.execute(
                sa.select(t.tokens.c.id).where(t.tokens.c.project_id == pid, t.tokens.c.name == name)
            ).first()
            if exists:
                raise Conflict(f"project '{project}' already has a token named '{name}'", field="body.name")
            conn.execute(
                t.tokens.insert().values(
                    project_id=pid,
                    name=name,
                    person=person,
                    token_hash=token_hash(token),
                    created_at=created,
                    expires_at=expires,
                )
            )

        try:
            self.db.write(tx)
        except sa.exc.IntegrityError:  # the same name from a concurrent request, inserted first
            raise Conflict(
                f"project '{project}' already has a token named '{name}'", field="body.name"
            ) from None
        made = {"token": token, "name": name, "project": project, "expires_at": iso(expires)}
        return {**made, "person": person} if person else made

    def list_tokens(self, project: str, limit: int, offset: int) -> dict[str, Any]:
        pid = self.project_id(project, create=False)
        q = sa.select(t.tokens).where(t.tokens.c.project_id == pid).order_by(t.tokens.c.id)
        with self.db.read() as conn:
            items = [_token_info(r, project) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)

    def revoke_token(self, project: str, name: str) -> dict[str, Any]:
        pid = self.project_id(project, create=False)

        def tx(conn: sa.Connection) -> Any:
            c = t.tokens.c
            row = conn.execute(sa.select(t.tokens).where(c.project_id == pid, c.name == name)).first()
            if row is None:
                raise NotFound(f"project '{project}' has no token named '{name}'", field="path.token")
            if row.revoked_at is None:
                conn.execute(t.tokens.update().where(c.id == row.id).values(revoked_at=now()))
            return conn.execute(sa.select(t.tokens).where(c.id == row.id)).one()

        row = self.db.write(tx)
        with self._lock:
            self._tokens.pop(row.token_hash, None)
        return _token_info(row, project)

    def token_project(self, token: str) -> tuple[int, str]:
        """(project id, project name) of a valid project token; 401 saying why a token is not valid."""
        pid, project, _ = self.token_identity(token)
        return pid, project

    def token_identity(self, token: str) -> tuple[int, str, str | None]:
        """(project id, project name, person or None) of a valid token; 401 saying why one is not."""
        h = token_hash(token)
        ts = time.monotonic()
        hit = self._tokens.get(h)
        if hit is None or ts - hit[0] > TOKEN_CACHE_S:
            with self.db.read() as conn:
                row = conn.execute(
                    sa.select(t.tokens, t.projects.c.name.label("project"))
                    .join(t.projects, t.projects.c.id == t.tokens.c.project_id)
                    .where(t.tokens.c.token_hash == h)
                ).first()
            if row is None:
                raise Unauthorized("the token is not valid on this server")
            if row.revoked_at is not None:
                raise Unauthorized(
                    f"the token '{row.name}' of project '{row.project}' was revoked at {iso(row.revoked_at)}"
                )
            if row.expires_at is not None and row.expires_at <= now():
                raise Unauthorized(
                    f"the token '{row.name}' of project '{row.project}' expired at {iso(row.expires_at)}"
                )
            hit = (ts, (int(row.project_id), str(row.project), int(row.id), row.person))
            with self._lock:
                self._tokens[h] = hit
        pid, project, token_id, person = hit[1]
        self._touch(token_id)
        return pid, project, person

    def _touch(self, token_id: int) -> None:
        """Record when a token was last used (at most once a minute per token and process)."""
        ts = now()
        if ts - self._used.get(token_id, 0.0) < LAST_USED_EVERY_S:
            return
        self._used[token_id] = ts
        self.db.write(
            lambda conn: conn.execute(
                t.tokens.update().where(t.tokens.c.id == token_id).values(last_used_at=ts)
            )
        )


def _project(row: Any) -> dict[str, Any]:
    return {"id": int(row.id), "name": row.name, "created_at": iso(row.created_at)}


__all__ = ["AccessStore", "same_secret", "token_hash"]
