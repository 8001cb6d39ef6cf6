"""correct and remove: descriptions, tags and soft deletes everywhere; token lifetimes

- families, models, checkpoints, datasets, tasks, benchmarks, experiments, runs: ``description``,
  ``tags`` (JSON object), ``metadata`` where missing, and ``archived_at`` (a DELETE archives; a purge
  removes the rows).
- tokens: ``expires_at``, ``revoked_at``, ``last_used_at``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Float: sa.types.TypeEngine[float] = sa.Double().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")
LongText: sa.types.TypeEngine[str] = sa.Text().with_variant(mysql.LONGTEXT(), "mysql")

# table -> the columns it gains
ADDED = {
    "families": ("tags", "archived_at"),
    "models": ("description", "tags", "archived_at"),
    "checkpoints": ("description", "tags", "archived_at"),
    "datasets": ("description", "tags", "archived_at"),
    "tasks": ("description", "tags", "archived_at"),
    "benchmarks": ("description", "tags", "archived_at"),
    "experiments": ("description", "tags", "metadata", "archived_at"),
    "runs": ("description", "metadata", "archived_at"),
    "tokens": ("expires_at", "revoked_at", "last_used_at"),
}


def _column(name: str) -> sa.Column[object]:
    kind = Float if name.endswith("_at") else LongText
    return sa.Column(name, kind, nullable=True)


def upgrade() -> None:
    for table, columns in ADDED.items():
        with op.batch_alter_table(table) as batch:
            for name in columns:
                batch.add_column(_column(name))


def downgrade() -> None:
    for table, columns in ADDED.items():
        with op.batch_alter_table(table) as batch:
            for name in reversed(columns):
                batch.drop_column(name)
