"""series rollups: series_blocks (count/min/max/last per block of steps), backfilled from the points

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Float: sa.types.TypeEngine[float] = sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")


def upgrade() -> None:
    op.create_table(
        "series_blocks",
        sa.Column("series_id", Id, autoincrement=False, nullable=False),
        sa.Column("lvl", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("blk", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("vmin", Float, nullable=False),
        sa.Column("vmax", Float, nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("last_value", Float, nullable=False),
        sa.Column("last_wall", Float, nullable=True),
        sa.PrimaryKeyConstraint("series_id", "lvl", "blk", name=op.f("pk_series_blocks")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    # Backfill the rollups of series stored before this revision, one series at a time.
    from evalhub_server import rollup
    from evalhub_server.db import driver_mark

    conn = op.get_bind()
    backend = "sqlite" if conn.dialect.name == "sqlite" else "mysql"
    ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM series_latest").fetchall()]
    mark = driver_mark(conn.dialect)
    for sid in ids:
        points = conn.exec_driver_sql(
            f"SELECT series_id, step, value, wall_time FROM series_points WHERE series_id = {mark} ORDER BY id",
            (sid,),
        ).fetchall()
        rollup.merge(conn, backend, rollup.blocks(tuple(p) for p in points))


def downgrade() -> None:
    op.drop_table("series_blocks")
