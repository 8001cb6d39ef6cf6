"""Both MySQL drivers the server speaks, against the real MariaDB: pymysql (in every server install)
and MariaDB's own connector (``evalhub[mariadb]``, which a bare ``mysql://`` URL prefers). The rest of
the suite's MariaDB tests run on whichever a bare URL picks; here each is named explicitly, through
a real server (writes, raw pages, downsampled reads) and through ``Database.write``'s retry on a
real lock wait timeout."""

from __future__ import annotations

import importlib.util
import math
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from _servers import ServerProcess, mysql_database
from evalhub_server.db import Database, mysql_driver, normalize_url
from sqlalchemy.engine import make_url

DRIVERS = [
    "pymysql",
    pytest.param(
        "mariadbconnector",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("mariadb") is None, reason="evalhub[mariadb] is not installed"
        ),
    ),
]


def test_a_bare_mysql_url_gets_the_preferred_driver_and_a_named_one_is_kept() -> None:
    bare = make_url(normalize_url("mysql://u:p@db.example/evalhub"))
    assert bare.drivername == f"mysql+{mysql_driver()}"
    assert make_url(normalize_url("mariadb://u@db/e")).drivername == f"mysql+{mysql_driver()}"
    named = make_url(normalize_url("mysql+pymysql://u:p@db.example/evalhub"))
    assert named.drivername == "mysql+pymysql" and named.query["charset"] == "utf8mb4"
    assert named.password == "p"
    # Connector/C speaks utf8mb4 by default and its connect() refuses a charset argument
    assert "charset" not in make_url(normalize_url("mysql+mariadbconnector://u@db/e")).query


@pytest.fixture(params=DRIVERS)
def driver_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with mysql_database(driver=request.param) as url:
        yield url


@pytest.mark.mysql
def test_a_full_series_and_its_downsample_read_back_exactly(driver_url: str, tmp_path: Path) -> None:
    import evalhub

    server = ServerProcess(driver_url, tmp_path / "server").start()
    try:
        hub = evalhub.connect(server.url, project=f"p{uuid.uuid4().hex[:8]}")
        run = hub.init_run("drivers", system_metrics=False)
        want = []
        for step in range(60_000):  # more than one raw page (50,000)
            value = (
                math.nan
                if step == 7
                else math.inf
                if step == 50_001
                else -math.inf
                if step == 9
                else step / 3
            )
            run.log({"x": value}, step=step)
            want.append(value)
        run.log({"x": 1.5}, step=49_999)  # a second point at the step a page ends on
        assert run.finish(timeout=120).dropped == 0
        frame = hub.series(run.id, "x", max_points=None)
        assert frame.height == 60_001
        steps, values = frame["step"].to_list(), frame["value"].to_list()
        assert steps == sorted([*range(60_000), 49_999])
        got = {}
        for s, v in zip(steps, values, strict=True):
            got.setdefault(s, []).append(v)
        assert sorted(got[49_999]) == sorted([49_999 / 3, 1.5])
        for s in (0, 1, 8, 10, 12_345, 59_999):
            assert got[s] == [s / 3]  # every bit of the double, not a printed approximation
        assert math.isnan(got[7][0]) and got[9] == [-math.inf] and got[50_001] == [math.inf]
        curve = hub.series(run.id, "x", max_points=500)
        assert 250 <= curve.height <= 500
        hub.close()
    finally:
        server.stop()


@pytest.mark.mysql
def test_a_write_held_up_by_a_lock_wait_timeout_is_retried_and_lands(driver_url: str) -> None:
    db = Database(driver_url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (1, 0)")
    holder = db.engine.connect()
    holder.begin()
    holder.exec_driver_sql("UPDATE counter SET n = n + 100 WHERE id = 1")  # holds the row lock
    released = threading.Event()

    def release() -> None:
        time.sleep(2.5)  # past the writer's 1 s lock wait timeout: its first attempt fails with 1205
        holder.commit()
        holder.close()
        released.set()

    attempts = []

    def bump(conn: sa.Connection) -> int:
        attempts.append(time.monotonic())
        conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
        conn.exec_driver_sql("UPDATE counter SET n = n + 1 WHERE id = 1")
        return int(conn.exec_driver_sql("SELECT n FROM counter WHERE id = 1").scalar_one())

    threading.Thread(target=release, daemon=True).start()
    try:
        assert db.write(bump) == 101  # counted after the holder's +100: it waited for the row lock
        assert len(attempts) >= 2  # its first attempt ended in a lock wait timeout (1205) and was retried
    finally:
        released.wait(10)
        db.dispose()


@pytest.mark.mysql
def test_keys_differing_in_case_or_outside_the_bmp_stay_apart(driver_url: str, tmp_path: Path) -> None:
    """Series keys and metric names compare byte for byte on MariaDB as on SQLite: "loss" and "Loss",
    or two characters outside the BMP (one weight under utf8mb4_unicode_ci), are four series, not a
    merge or a 500 from the unique key (the schema fuzzer's find)."""
    import evalhub

    server = ServerProcess(driver_url, tmp_path / "server").start()
    try:
        hub = evalhub.connect(server.url, project=f"p{uuid.uuid4().hex[:8]}")
        run = hub.init_run("keys", system_metrics=False)
        keys = {"loss": 1.0, "Loss": 2.0, "\U000ca588": 3.0, "\U0001f3fb": 4.0}
        run.log(keys, step=0)
        assert run.finish(timeout=60).dropped == 0
        assert sorted(hub.series_keys(run.id)["key"].to_list()) == sorted(keys)
        for key, value in keys.items():
            assert hub.series(run.id, key)["value"].to_list() == [value]
        hub.close()
    finally:
        server.stop()
