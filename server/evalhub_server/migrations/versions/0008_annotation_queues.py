"""people as scorers: a person on a token, annotation queues, their items and labels

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Float: sa.types.TypeEngine[float] = sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")
LongText: sa.types.TypeEngine[str] = sa.Text().with_variant(mysql.LONGTEXT(), "mysql")
InnoDB = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("person", sa.String(64), nullable=True))
    op.create_table(
        "annotation_queues",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("project_id", Id, nullable=False),
        sa.Column("experiment_id", Id, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("schema", LongText, nullable=False),
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("filter", sa.String(32), nullable=False),
        sa.Column("q", sa.String(255), nullable=True),
        sa.Column("sample", sa.BigInteger(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("run_ids", LongText, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_annotation_queues_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_annotation_queues_experiment_id_experiments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_queues")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_annotation_queues_project_id_name")),
        **InnoDB,
    )
    op.create_index(
        op.f("ix_annotation_queues_project_id_experiment_id"),
        "annotation_queues",
        ["project_id", "experiment_id"],
        unique=False,
    )
    op.create_table(
        "annotation_items",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("queue_id", Id, nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("sample_key", sa.String(255), nullable=False),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("other_run_id", Id, nullable=True),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            name=op.f("fk_annotation_items_queue_id_annotation_queues"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_items")),
        sa.UniqueConstraint("queue_id", "idx", name=op.f("uq_annotation_items_queue_id_idx")),
        **InnoDB,
    )
    op.create_table(
        "annotation_labels",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("queue_id", Id, nullable=False),
        sa.Column("item_id", Id, nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("value", Float, nullable=True),
        sa.Column("choice", sa.String(64), nullable=True),
        sa.Column("text", LongText, nullable=True),
        sa.Column("shown_order", sa.String(2), nullable=True),
        sa.Column("created_at", Float, nullable=False),
        sa.Column("updated_at", Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            name=op.f("fk_annotation_labels_queue_id_annotation_queues"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["annotation_items.id"], name=op.f("fk_annotation_labels_item_id_annotation_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_labels")),
        sa.UniqueConstraint("item_id", "person", name=op.f("uq_annotation_labels_item_id_person")),
        **InnoDB,
    )
    op.create_index(
        op.f("ix_annotation_labels_queue_id_person"),
        "annotation_labels",
        ["queue_id", "person"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("annotation_labels")
    op.drop_table("annotation_items")
    op.drop_table("annotation_queues")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("person")
