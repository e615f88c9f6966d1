"""`daraja db`: database migrations, and the retention purge of message content."""

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
    pur = dbsub.add_parser(
        "purge",
        help="remove content past its retention period (audited; the bot does it hourly)",
        description="Delete processed inbox updates older than DARAJA_INBOX_RETENTION_DAYS and "
        "empty message bodies and translations older than DARAJA_MESSAGE_RETENTION_DAYS and "
        "DARAJA_TRANSLATION_RETENTION_DAYS (unset: kept). Audit events are purged by "
        "`daraja audit purge`.",
    )
    pur.add_argument("--dry-run", action="store_true", help="show what would go, change nothing")
    pur.add_argument("--json", action="store_true", help="machine-readable output")
    pur.set_defaults(func=_purge)


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


def _purge(args: argparse.Namespace) -> int:
    import json

    from bot.cli.admin import os_actor
    from bot.cli.audit import _chain, _open
    from bot.services.retention import describe, policy_from
    from bot.settings import load_settings
    from storage.models import utcnow
    from storage.retention import Purged, apply_retention

    settings = load_settings()
    policy = policy_from(settings)

    async def go() -> list[Purged]:
        db = await _open(settings)
        try:
            return await apply_retention(
                db, _chain(settings), policy, utcnow(), actor=os_actor(), dry_run=args.dry_run
            )
        finally:
            await db.dispose()

    done = asyncio.run(go())
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "purges": [p.as_dict() for p in done]}))
        return 0
    if not done:
        print("no retention period is set: nothing to purge")
    for purged in done:
        print(("would purge " if args.dry_run else "purged ") + describe(purged))
    audit_days = settings.audit_retention_days
    keeps_longer = policy.message_days is not None and (
        audit_days is None or audit_days > policy.message_days
    )
    if keeps_longer:
        # The audit log is the evidence: it keeps its own copy of each text.
        print(
            "note: the audit log keeps its own copy of every message until "
            f"DARAJA_AUDIT_RETENTION_DAYS ({audit_days or 'unset: forever'}) lets "
            "`daraja audit purge` remove it"
        )
    return 0
