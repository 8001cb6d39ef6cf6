"""aligned samples: one row per (experiment, task, sample_key), backfilled from the samples

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The same aggregate the ingest keeps (evalhub_server.aligned), frozen here for this revision.
_WRONG = "SUM(CASE WHEN s.primary_score < 1 THEN 1 ELSE 0 END)"
_DISTINCT = "COUNT(DISTINCT COALESCE(s.filtered_output, s.output, ''))"
BACKFILL = f"""
INSERT INTO aligned_samples
  (experiment_id, task, sample_key, idx, n_runs, n_wrong, disagree, any_wrong, all_wrong)
SELECT r.experiment_id, r.task, s.sample_key, MIN(s.sample_index), COUNT(*), {_WRONG},
  CASE WHEN {_DISTINCT} > 1 THEN 1 ELSE 0 END,
  CASE WHEN {_WRONG} > 0 THEN 1 ELSE 0 END,
  CASE WHEN {_WRONG} > 0 AND {_WRONG} = COUNT(*) THEN 1 ELSE 0 END
FROM samples s JOIN runs r ON r.id = s.run_id
WHERE r.experiment_id IS NOT NULL AND r.task IS NOT NULL AND r.task <> ''
GROUP BY r.experiment_id, r.task, s.sample_key
"""


def upgrade() -> None:
    op.create_table(
        "aligned_samples",
        sa.Column("experiment_id", Id, autoincrement=False, nullable=False),
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("sample_key", sa.String(255), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=True),
        sa.Column("n_runs", sa.Integer(), nullable=False),
        sa.Column("n_wrong", sa.Integer(), nullable=False),
        sa.Column("disagree", sa.SmallInteger(), nullable=False),
        sa.Column("any_wrong", sa.SmallInteger(), nullable=False),
        sa.Column("all_wrong", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "task", "sample_key", name=op.f("pk_aligned_samples")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    for name, flag in (
        ("order", None),
        ("disagree", "disagree"),
        ("any_wrong", "any_wrong"),
        ("all_wrong", "all_wrong"),
    ):
        cols = ["experiment_id", "task", *([flag] if flag else []), "idx", "sample_key"]
        op.create_index(f"ix_aligned_samples_{name}", "aligned_samples", cols, unique=False)
    op.get_bind().exec_driver_sql(BACKFILL)


def downgrade() -> None:
    op.drop_table("aligned_samples")
