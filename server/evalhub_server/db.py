"""The database connection: engine set-up per backend, write transactions that serialize and retry,
and the dialect's upsert."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

T = TypeVar("T")

# MySQL/MariaDB: deadlock, lock wait timeout. SQLite: "database is locked" / "busy".
_MYSQL_RETRY = {1213, 1205}


def mysql_driver() -> str:
    """The driver a bare ``mysql://`` (or ``mariadb://``) URL gets: MariaDB Connector/Python where it
    is installed (``evalhub[mariadb]``: C, and the binary protocol for reads of many rows, several
    times faster than pymysql on a full series), else pymysql (pure Python, in every server install)."""
    import importlib.util

    return "mariadbconnector" if importlib.util.find_spec("mariadb") else "pymysql"


def normalize_url(url: str) -> str:
    """Add what each backend needs: a driver and utf8mb4 for MySQL, a directory for a SQLite file.
    A URL that names its driver (``mysql+pymysql://``) keeps it."""
    u = make_url(url)
    if u.get_backend_name() in ("mysql", "mariadb"):
        if "+" not in u.drivername:
            u = u.set(drivername=f"mysql+{mysql_driver()}")
        # Connector/C speaks utf8mb4 unless told otherwise, and its connect() takes no charset.
        if "charset" not in u.query and u.get_driver_name() != "mariadbconnector":
            u = u.update_query_dict({"charset": "utf8mb4"})
    return u.render_as_string(hide_password=False)


def driver_mark(dialect: sa.Dialect) -> str:
    """The placeholder of the driver's own SQL (``exec_driver_sql``): sqlite3 and MariaDB's connector
    take ``?``, pymysql and mysqlclient ``%s``."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


class Database:
    """One engine plus the two ways in: ``read()`` and ``write(fn)``."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        u = make_url(self.url)
        self.backend = "sqlite" if u.get_backend_name() == "sqlite" else "mysql"
        if self.backend == "sqlite":
            if u.database and u.database != ":memory:":
                from pathlib import Path

                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=8,
                max_overflow=16,
            )
            _sqlite_hooks(self.engine)
        else:
            self.engine = sa.create_engine(
                self.url,
                pool_pre_ping=True,
                pool_recycle=3600,
                pool_size=8,
                max_overflow=24,
                isolation_level="READ COMMITTED",
            )
        self.mark = driver_mark(self.engine.dialect)
        # SQLite allows one writer: serialize this process's writers instead of spinning on the lock.
        self._write_lock = threading.Lock() if self.backend == "sqlite" else None

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection inside a read transaction (a consistent snapshot)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def write(self, fn: Callable[[sa.Connection], T], attempts: int = 12) -> T:
        """Run ``fn(conn)`` in one write transaction; retry it whole on a lock timeout or deadlock."""
        delay = 0.02
        for attempt in range(attempts):
            try:
                if self._write_lock is not None:
                    with self._write_lock:
                        return self._write_once(fn)
                return self._write_once(fn)
            except sa.exc.OperationalError as exc:
                if attempt == attempts - 1 or not self._retryable(exc):
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    def _write_once(self, fn: Callable[[sa.Connection], T]) -> T:
        with self.engine.connect() as conn:
            conn = conn.execution_options(evalhub_write=True)
            with conn.begin():
                return fn(conn)

    def _retryable(self, exc: sa.exc.OperationalError) -> bool:
        if self.backend == "sqlite":
            text = str(exc.orig).lower()
            return "locked" in text or "busy" in text
        # pymysql and mysqlclient put the error code first in args; MariaDB's connector in errno.
        code = getattr(exc.orig, "errno", None) or next(iter(getattr(exc.orig, "args", ())), None)
        return code in _MYSQL_RETRY

    def upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        update: Sequence[str],
    ) -> None:
        """Insert ``rows``; where a unique key exists already, overwrite the ``update`` columns."""
        if not rows:
            return
        if self.backend == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table)
            keys = _conflict_keys(table, rows[0])
            stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
            conn.execute(stmt, list(rows))
        else:
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            mstmt = mysql_insert(table)
            mstmt = mstmt.on_duplicate_key_update({c: mstmt.inserted[c] for c in update})
            conn.execute(mstmt, list(rows))

    def dispose(self) -> None:
        self.engine.dispose()


def _conflict_keys(table: sa.Table, row: dict[str, Any]) -> list[str]:
    """The unique key (primary or declared unique) whose columns the rows carry."""
    candidates: list[list[str]] = []
    pk = [c.name for c in table.primary_key.columns]
    candidates.append(pk)
    for cons in table.constraints:
        if isinstance(cons, sa.UniqueConstraint):
            candidates.append([c.name for c in cons.columns])
    for cols in candidates[1:] + candidates[:1]:
        if all(c in row for c in cols):
            return cols
    raise ValueError(f"no unique key of {table.name} in row")


def _sqlite_hooks(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below own the transactions (pysqlite's own handling is off).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A writer takes the write lock up front, so it never fails half-way on a lock upgrade.
        immediate = conn.get_execution_options().get("evalhub_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
