"""Schema: Alembic migrations from empty on both backends match the models; restarts keep data."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import sqlalchemy as sa

if TYPE_CHECKING:
    from _servers import ServerProcess


def test_upgrade_from_empty_matches_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from evalhub_server.db import Database
    from evalhub_server.migrate import current_revision, head_revision, upgrade
    from evalhub_server.tables import metadata

    db = Database(db_url)
    try:
        assert current_revision(db.engine) is None
        assert upgrade(db.engine) == head_revision()
        assert current_revision(db.engine) == head_revision()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == []
        assert set(sa.inspect(db.engine).get_table_names()) >= set(metadata.tables)
        # a second upgrade is a no-op
        assert upgrade(db.engine) == head_revision()
    finally:
        db.dispose()


def test_mysql_tables_are_utf8mb4_innodb(mysql_url: str) -> None:
    from evalhub_server.db import Database
    from evalhub_server.migrate import upgrade

    db = Database(mysql_url)
    try:
        upgrade(db.engine)
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT table_name, engine, table_collation FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name <> 'alembic_version'"
                )
            ).all()
        assert rows and all(r[1] == "InnoDB" and r[2].startswith("utf8mb4") for r in rows), rows
    finally:
        db.dispose()


def test_sqlite_is_in_wal_mode(tmp_path: object) -> None:
    from pathlib import Path

    from evalhub_server.db import Database

    db = Database(f"sqlite:///{Path(str(tmp_path)) / 'w.db'}")
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
    finally:
        db.dispose()


def test_restarted_server_keeps_data_and_port(db_url: str, server_for: Callable[..., ServerProcess]) -> None:
    server = server_for(db_url)
    url, headers = server.url, {"X-Evalhub-Project": "keep"}
    run = httpx.post(f"{url}/api/runs", json={"name": "r"}, headers=headers).json()
    ev = {
        "stream": "s",
        "events": [{"seq": 1, "type": "series", "points": [{"key": "l", "step": 1, "value": 1.0}]}],
    }
    assert httpx.post(f"{url}/api/runs/{run['id']}/events", json=ev, headers=headers).json()["applied"] == 1
    server.restart(kill=True)
    assert server.url == url
    # the same batch after the restart is still a duplicate; a new one applies
    again = httpx.post(f"{url}/api/runs/{run['id']}/events", json=ev, headers=headers).json()
    assert again["applied"] == 0 and again["duplicates"] == 1
    ev["events"][0]["seq"] = 2
    assert httpx.post(f"{url}/api/runs/{run['id']}/events", json=ev, headers=headers).json()["applied"] == 1
    keys = httpx.get(f"{url}/api/runs/{run['id']}/series/keys", headers=headers).json()["keys"]
    assert keys[0]["count"] == 2


def test_python_m_evalhub_server_writes_ready_file(tmp_path: object) -> None:
    """``evalhub server --port 0 --ready-file`` (the CLI) serves and says where."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    folder = Path(str(tmp_path))
    ready = folder / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalhub.cli", "server", "--db", f"sqlite:///{folder / 'e.db'}", "--port", "0",
         "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["pid"] == proc.pid
        assert httpx.get(f"{info['url']}/api/health").json()["status"] == "ok"
        run = httpx.post(f"{info['url']}/api/runs", json={"name": "r"}).json()
        assert (
            httpx.put(f"{info['url']}/api/runs/{run['id']}/artifacts/a.txt", content=b"hi").status_code == 201
        )
        # artifacts default to a folder next to the SQLite file, stored by content
        import hashlib

        digest = hashlib.sha256(b"hi").hexdigest()
        assert (folder / "artifacts" / "blobs" / digest[:2] / digest).read_bytes() == b"hi"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_upgrade_to_0002_backfills_rollups(db_url: str) -> None:
    """Points stored under revision 0001 get their rollups on upgrade, and read back right."""
    from alembic import command
    from evalhub_server.access import AccessStore
    from evalhub_server.db import Database
    from evalhub_server.migrate import alembic_config, upgrade
    from evalhub_server.reads import ReadStore
    from evalhub_server.runs import RunStore

    db = Database(db_url)
    try:
        cfg = alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
        pid = AccessStore(db).project_id("old", create=True)
        runs = RunStore(db)
        with (
            db.engine.begin() as conn
        ):  # a run as revision 0001 stored it (today's store writes newer columns)
            run_id = conn.execute(
                sa.text(
                    "INSERT INTO runs (project_id, name, type, status, attempt, progress_done, created_at) "
                    "VALUES (:p, 'r', 'training', 'queued', 1, 0, 1.0) RETURNING id"
                ),
                {"p": pid},
            ).scalar_one()  # RETURNING: not every driver sets lastrowid on text SQL
        values = [((s * 7919) % 1000) / 10.0 for s in range(5000)]
        with db.engine.begin() as conn:
            sid = conn.execute(
                sa.text(
                    "INSERT INTO series_latest (run_id, `key`, count, last_step, last_value, min_step, max_step) "
                    "VALUES (:r, 'loss', 5000, 4999, :lv, 0, 4999) RETURNING id".replace(
                        "`", '"' if db.backend == "sqlite" else "`"
                    )
                ),
                {"r": run_id, "lv": values[-1]},
            ).scalar_one()  # RETURNING: not every driver sets lastrowid on text SQL
            conn.execute(
                sa.text(
                    "INSERT INTO series_points (series_id, step, value, wall_time) VALUES (:i, :s, :v, 1.0)"
                ),
                [{"i": sid, "s": s, "v": v} for s, v in enumerate(values)],
            )
        upgrade(db.engine)
        got = ReadStore(db, runs).series(pid, run_id, "loss", max_points=100)
        assert got["downsampled"] and 50 <= len(got["points"]) <= 100
        prev = -1
        for p in got["points"]:
            inside = values[prev + 1 : p["step"] + 1]
            assert (p["min"], p["max"], p["value"]) == (min(inside), max(inside), values[p["step"]])
            prev = p["step"]
        assert prev == 4999
    finally:
        db.dispose()
