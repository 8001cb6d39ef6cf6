"""reuse of finished work and the request cache

- runs: ``work_key`` (what the run computes: checkpoint content, runtime and params, task hash,
  config; indexed with the project and the status, so a completed run of the same key is found) and
  ``reused_from`` (the run whose results a reused run carries).
- request_cache: the answers of model requests per project and key (checkpoint content, request,
  generation settings), written by workers as they go, read before a run calls its model.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Float: sa.types.TypeEngine[float] = sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")
LongText: sa.types.TypeEngine[str] = sa.Text().with_variant(mysql.LONGTEXT(), "mysql")
Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("work_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reused_from", Id, nullable=True))
        batch.create_index("ix_runs_project_id_work_key_status", ["project_id", "work_key", "status"])
    op.create_table(
        "request_cache",
        sa.Column("project_id", Id, autoincrement=False, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", LongText, nullable=False),
        sa.Column("created_at", Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_request_cache_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("project_id", "key", name=op.f("pk_request_cache")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


def downgrade() -> None:
    op.drop_table("request_cache")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_project_id_work_key_status")
        batch.drop_column("reused_from")
        batch.drop_column("work_key")
