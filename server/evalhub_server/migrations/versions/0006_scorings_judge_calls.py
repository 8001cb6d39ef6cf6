"""scores over stored outputs: scorings (every rescoring of a run) and judge calls

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Float: sa.types.TypeEngine[float] = sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")
LongText: sa.types.TypeEngine[str] = sa.Text().with_variant(mysql.LONGTEXT(), "mysql")


def upgrade() -> None:
    op.create_table(
        "scorings",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("project_id", Id, nullable=False),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("experiment_id", Id, nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("config", LongText, nullable=True),
        sa.Column("judge", LongText, nullable=True),
        sa.Column("judge_run_id", Id, nullable=True),
        sa.Column("baseline_run_id", Id, nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("counts", LongText, nullable=True),
        sa.Column("error", LongText, nullable=True),
        sa.Column("client_key", sa.String(255), nullable=True),
        sa.Column("created_at", Float, nullable=False),
        sa.Column("finished_at", Float, nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_scorings_project_id_projects")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_scorings_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scorings")),
        sa.UniqueConstraint("project_id", "client_key", name=op.f("uq_scorings_project_id_client_key")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(op.f("ix_scorings_run_id_name"), "scorings", ["run_id", "name"], unique=False)
    op.create_index(
        op.f("ix_scorings_project_id_experiment_id"),
        "scorings",
        ["project_id", "experiment_id"],
        unique=False,
    )
    op.create_table(
        "judge_calls",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("scoring_id", Id, nullable=False),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("sample_key", sa.String(255), nullable=False),
        sa.Column("position", sa.String(16), nullable=False),
        sa.Column("other_run_id", Id, nullable=True),
        sa.Column("judge", sa.String(512), nullable=True),
        sa.Column("prompt", LongText, nullable=True),
        sa.Column("raw_output", LongText, nullable=True),
        sa.Column("verdict", sa.String(64), nullable=True),
        sa.Column("score", Float, nullable=True),
        sa.Column("rationale", LongText, nullable=True),
        sa.Column("latency_ms", Float, nullable=True),
        sa.Column("created_at", Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["scoring_id"], ["scorings.id"], name=op.f("fk_judge_calls_scoring_id_scorings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judge_calls")),
        sa.UniqueConstraint(
            "scoring_id", "sample_key", "position", name=op.f("uq_judge_calls_scoring_id_sample_key_position")
        ),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(
        op.f("ix_judge_calls_run_id_sample_key"), "judge_calls", ["run_id", "sample_key"], unique=False
    )


def downgrade() -> None:
    op.drop_table("judge_calls")
    op.drop_table("scorings")
