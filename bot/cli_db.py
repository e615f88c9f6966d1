"""`daraja db`: database migrations."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def register(sub: Any) -> None:
    """Add `daraja db` and its subcommands."""
    parser: argparse.ArgumentParser = sub.add_parser("db", help="database migrations")
    dbsub = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="apply all migrations (also done at start)")
    up.set_defaults(func=_upgrade)
    cur = dbsub.add_parser("current", help="show the database's migration revision")
    cur.set_defaults(func=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from storage.db import Database, head_revision

    settings = load_settings()

    async def go() -> None:
        db = Database(settings.database_url)
        try:
            await db.upgrade()
        finally:
            await db.dispose()

    asyncio.run(go())
    print(f"database is at revision {head_revision()} (head)")
    return 0


def _current(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from storage.db import Database, check_known, current_revision, head_revision

    settings = load_settings()

    async def go() -> str | None:
        db = Database(settings.database_url)
        try:
            return await current_revision(db.engine)
        finally:
            await db.dispose()

    rev = asyncio.run(go())
    check_known(rev)
    head = head_revision()
    print(f"current: {rev or '(empty database)'}; head: {head}")
    return 0 if rev == head else 1
