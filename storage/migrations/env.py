"""Alembic environment: runs on the connection Daraja passes in (never reads alembic.ini)."""

from __future__ import annotations

from alembic import context

import storage.status_repo  # noqa: F401  (its tables join Base.metadata)
from storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via storage.db.upgrade
    raise RuntimeError("run migrations through `daraja db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    transaction_per_migration=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
