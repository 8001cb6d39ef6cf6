"""run leases, non-finite values, subtasks of samples, metric directions

- runs: ``max_attempts`` and the current attempt's ``lease_expires_at`` (indexed with the status, for
  the reaper). A run that was ``running`` before the upgrade gets a lease that expires now: after the
  server's start-up grace it is reaped like any run whose worker went silent.
- NaN and ±infinity are values now: the value columns of metrics, series and their rollups may be NULL
  (NaN; ±infinity is stored as ±DBL_MAX).
- samples: ``task`` (the subtask of a group task); metrics: ``higher_is_better``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Float: sa.types.TypeEngine[float] = sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3"))
        batch.add_column(sa.Column("lease_expires_at", Float, nullable=True))
        batch.create_index("ix_runs_status_lease_expires_at", ["status", "lease_expires_at"], unique=False)
    runs = sa.table(
        "runs",
        sa.column("type", sa.String),
        sa.column("status", sa.String),
        sa.column("max_attempts", sa.Integer),
        sa.column("lease_expires_at", Float),
    )
    op.execute(runs.update().where(runs.c.type == "training").values(max_attempts=1))
    op.execute(runs.update().where(runs.c.status == "running").values(lease_expires_at=time.time()))
    with op.batch_alter_table("metrics") as batch:
        batch.alter_column("value", existing_type=Float, nullable=True)
        batch.add_column(sa.Column("higher_is_better", sa.SmallInteger(), nullable=True))
    with op.batch_alter_table("series_latest") as batch:
        batch.alter_column("last_value", existing_type=Float, nullable=True)
    with op.batch_alter_table("series_points") as batch:
        batch.alter_column("value", existing_type=Float, nullable=True)
    with op.batch_alter_table("series_blocks") as batch:
        for column in ("vmin", "vmax", "last_value"):
            batch.alter_column(column, existing_type=Float, nullable=True)
    with op.batch_alter_table("samples") as batch:
        batch.add_column(sa.Column("task", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("samples") as batch:
        batch.drop_column("task")
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("higher_is_better")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status_lease_expires_at")
        batch.drop_column("lease_expires_at")
        batch.drop_column("max_attempts")
