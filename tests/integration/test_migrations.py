"""Migrations from an empty database, on SQLite and PostgreSQL, in-process and via the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, select, text

import storage.status_repo  # noqa: F401  (its tables join Base.metadata)
from storage.audit import GENESIS
from storage.db import Database, current_revision, head_revision
from storage.models import AuditHead, Base, Operation
from tests.support import processes

EXPECTED_TABLES = set(Base.metadata.tables)


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    return names - {"alembic_version"}


async def test_upgrade_builds_the_schema_from_an_empty_database(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert await current_revision(database.engine) is None
        assert await _tables(database) == set()

        await database.upgrade()

        assert await current_revision(database.engine) == head_revision()
        assert await _tables(database) == EXPECTED_TABLES
        async with database.transaction() as session:
            heads = list(await session.scalars(select(AuditHead)))
        assert [(h.id, h.seq, h.hash) for h in heads] == [(1, 0, GENESIS)]
    finally:
        await database.dispose()


async def test_second_upgrade_changes_nothing_and_keeps_data(database_url: str) -> None:
    database = Database(database_url)
    try:
        await database.upgrade()
        async with database.transaction() as session:
            session.add(Operation(name="Furcy"))

        await database.upgrade()

        assert await current_revision(database.engine) == head_revision()
        async with database.transaction() as session:
            names = list(await session.scalars(select(Operation.name)))
            head_rows = (await session.execute(text("SELECT COUNT(*) FROM audit_head"))).scalar()
        assert names == ["Furcy"]
        assert head_rows == 1
    finally:
        await database.dispose()


def _daraja(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the `daraja` console script with only a database configured: no token, no network."""
    script = Path(sys.executable).with_name("daraja")
    command = [str(script), *args] if script.exists() else [sys.executable, "-m", "bot.cli", *args]
    # No token, no Bot API URL: migrating must not need Telegram (nor any network).
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARAJA_")}
    env["DARAJA_DATABASE_URL"] = database_url
    return processes.run(command, cwd=cwd, env=env, timeout=120)


async def test_cli_db_upgrade_migrates_an_empty_database(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        # An existing, zero-byte file: what an operator gets from `touch`.
        await asyncio.to_thread(Path(database_url.split(":///", 1)[1]).touch)
    head = head_revision()

    before = await asyncio.to_thread(
        _daraja, "db", "current", database_url=database_url, cwd=tmp_path
    )
    assert before.returncode == 1, before.stderr
    assert "empty database" in before.stdout

    # Two processes upgrading at once, as when two bot processes start together: one
    # migrates, the other waits for it (PostgreSQL: advisory lock; SQLite: BEGIN IMMEDIATE)
    # and finds nothing to do. Separate processes, as in production: Alembic keeps its context
    # in module globals, so upgrades must not run concurrently inside one process.
    upgrades = await asyncio.gather(
        *(
            asyncio.to_thread(_daraja, "db", "upgrade", database_url=database_url, cwd=tmp_path)
            for _ in range(2)
        )
    )
    for done in upgrades:
        assert done.returncode == 0, done.stderr
        assert head in done.stdout
        assert "Traceback" not in done.stderr

    database = Database(database_url)
    try:
        assert await current_revision(database.engine) == head
        assert await _tables(database) == EXPECTED_TABLES
    finally:
        await database.dispose()
