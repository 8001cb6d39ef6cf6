"""initial schema: every table of the tracking server

Revision ID: 0001
Revises:
Create Date: 2026-11-26 14:14:21.351141
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "series_points",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("series_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False),
        sa.Column(
            "wall_time", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_points")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("series_points", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_series_points_series_id_step_value_wall_time"),
            ["series_id", "step", "value", "wall_time"],
            unique=False,
        )

    op.create_table(
        "benchmarks",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("tasks", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=False),
        sa.Column("config", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("metadata", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_benchmarks_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmarks")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_benchmarks_project_id_name")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "datasets",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("uri", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("schema", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("num_rows", sa.BigInteger(), nullable=True),
        sa.Column("content_hash", sa.String(length=128), nullable=True),
        sa.Column("metadata", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_datasets_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint(
            "project_id", "name", "version", name=op.f("uq_datasets_project_id_name_version")
        ),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "experiments",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("spec_yaml", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("config", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("client_key", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_experiments_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("project_id", "client_key", name=op.f("uq_experiments_project_id_client_key")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "families",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("modality", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("metadata", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_families_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_families")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_families_project_id_name")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "tokens",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_tokens_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_tokens_project_id_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_tokens_token_hash")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "models",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("family_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("runtime", sa.String(length=64), nullable=False),
        sa.Column("code_uri", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("adapter", sa.String(length=512), nullable=True),
        sa.Column("default_params", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("metadata", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["family_id"], ["families.id"], name=op.f("fk_models_family_id_families")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_models_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_models_project_id_name")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "tasks",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("dataset_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("engine_config", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=False),
        sa.Column("metrics", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=False),
        sa.Column("metadata", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_tasks_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_tasks_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_tasks_project_id_name")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "checkpoints",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("uri", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("epoch", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=True),
        sa.Column("dataset_version", sa.String(length=255), nullable=True),
        sa.Column("training_config", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("metadata", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_checkpoints_model_id_models")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_checkpoints_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("model_id", "name", name=op.f("uq_checkpoints_model_id_name")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkpoints_model_id_step"), ["model_id", "step"], unique=False)

    op.create_table(
        "runs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("experiment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("checkpoint", sa.String(length=255), nullable=True),
        sa.Column("checkpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("runtime", sa.String(length=64), nullable=True),
        sa.Column("task", sa.String(length=255), nullable=True),
        sa.Column("config", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("tags", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("error", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("progress_done", sa.BigInteger(), nullable=False),
        sa.Column("progress_total", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.Column(
            "started_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=True
        ),
        sa.Column(
            "ended_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"], ["checkpoints.id"], name=op.f("fk_runs_checkpoint_id_checkpoints")
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_runs_experiment_id_experiments")
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_runs_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runs_project_id_experiment_id"), ["project_id", "experiment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_runs_project_id_status"), ["project_id", "status"], unique=False)

    op.create_table(
        "artifacts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("uri", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_artifacts_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        sa.UniqueConstraint("run_id", "name", name=op.f("uq_artifacts_run_id_name")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "event_streams",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("stream", sa.String(length=255), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_event_streams_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "stream", name=op.f("pk_event_streams")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "logs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=False),
        sa.Column(
            "wall_time", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=True
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_logs_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logs")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logs_run_id_id"), ["run_id", "id"], unique=False)

    op.create_table(
        "metrics",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False),
        sa.Column(
            "updated_at", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metrics_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_metrics")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "samples",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sample_key", sa.String(length=255), nullable=False),
        sa.Column("sample_index", sa.BigInteger(), nullable=True),
        sa.Column("prompt", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("reference", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("output", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("filtered_output", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column("scores", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.Column(
            "primary_score", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=True
        ),
        sa.Column(
            "latency_ms", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=True
        ),
        sa.Column("tokens_in", sa.BigInteger(), nullable=True),
        sa.Column("tokens_out", sa.BigInteger(), nullable=True),
        sa.Column("extra", sa.Text().with_variant(mysql.LONGTEXT(), "mysql"), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_samples_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
        sa.UniqueConstraint("run_id", "sample_key", name=op.f("uq_samples_run_id_sample_key")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_samples_run_id_primary_score"), ["run_id", "primary_score"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_samples_run_id_sample_index"), ["run_id", "sample_index"], unique=False
        )

    op.create_table(
        "series_latest",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column(
            "last_value", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=False
        ),
        sa.Column(
            "last_wall_time", sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql"), nullable=True
        ),
        sa.Column("min_step", sa.BigInteger(), nullable=False),
        sa.Column("max_step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_series_latest_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_latest")),
        sa.UniqueConstraint("run_id", "key", name=op.f("uq_series_latest_run_id_key")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


def downgrade() -> None:
    op.drop_table("series_latest")
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_samples_run_id_sample_index"))
        batch_op.drop_index(batch_op.f("ix_samples_run_id_primary_score"))

    op.drop_table("samples")
    op.drop_table("metrics")
    with op.batch_alter_table("logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logs_run_id_id"))

    op.drop_table("logs")
    op.drop_table("event_streams")
    op.drop_table("artifacts")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_project_id_status"))
        batch_op.drop_index(batch_op.f("ix_runs_project_id_experiment_id"))

    op.drop_table("runs")
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkpoints_model_id_step"))

    op.drop_table("checkpoints")
    op.drop_table("tasks")
    op.drop_table("models")
    op.drop_table("tokens")
    op.drop_table("families")
    op.drop_table("experiments")
    op.drop_table("datasets")
    op.drop_table("benchmarks")
    with op.batch_alter_table("series_points", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_points_series_id_step_value_wall_time"))

    op.drop_table("series_points")
    op.drop_table("projects")
