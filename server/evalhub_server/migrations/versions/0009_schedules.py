"""schedules: evaluations that run by themselves; exact (binary) keys on MariaDB

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Float: sa.types.TypeEngine[float] = sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")
LongText: sa.types.TypeEngine[str] = sa.Text().with_variant(mysql.LONGTEXT(), "mysql")
InnoDB = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}


# (table, column, nullable): keys a user or a dataset names, compared byte for byte (tables.ExactKey)
EXACT_KEYS = [
    ("metrics", "key", False),
    ("series_latest", "key", False),
    ("event_streams", "stream", False),
    ("samples", "sample_key", False),
    ("aligned_samples", "sample_key", False),
    ("judge_calls", "sample_key", False),
    ("annotation_items", "sample_key", False),
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        exact = mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin")
        for table, column, nullable in EXACT_KEYS:
            op.alter_column(
                table, column, type_=exact, existing_type=sa.String(255), existing_nullable=nullable
            )
    op.create_table(
        "schedules",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("project_id", Id, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", LongText, nullable=False),
        sa.Column("every_s", Float, nullable=True),
        sa.Column("cron", sa.String(128), nullable=True),
        sa.Column("on_checkpoint", sa.String(255), nullable=True),
        sa.Column("next_at", Float, nullable=False),
        sa.Column("pending_tick", Float, nullable=True),
        sa.Column("last_tick", Float, nullable=True),
        sa.Column("last_experiment_id", Id, nullable=True),
        sa.Column("ticks_run", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_schedules_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_schedules_project_id_name")),
        **InnoDB,
    )


def downgrade() -> None:
    op.drop_table("schedules")
    if op.get_bind().dialect.name == "mysql":
        for table, column, nullable in EXACT_KEYS:
            op.alter_column(table, column, type_=sa.String(255), existing_nullable=nullable)
