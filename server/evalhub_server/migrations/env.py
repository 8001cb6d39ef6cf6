"""Alembic environment: run with a connection handed over in ``config.attributes`` (the server on
start) or from ``sqlalchemy.url`` (the alembic command line)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from evalhub_server.tables import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
