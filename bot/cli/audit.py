"""`daraja audit`: verify, anchor, export and purge the audit log.

Exit status: 0 OK, 1 the chain is broken (or the database refused), 2 bad usage or settings.
The key for a keyed chain comes from `DARAJA_AUDIT_HMAC_KEY`; retention from
`DARAJA_AUDIT_RETENTION_DAYS` (unset: keep forever, and `purge` refuses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from bot.errors import NotFound, UserInputError

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage.audit import AuditChain
    from storage.db import Database


def register(sub: Any) -> None:
    """Add `daraja audit` and its subcommands."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "audit", help="verify, anchor and export the audit log"
    )
    asub = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    ver = asub.add_parser("verify", help="walk the hash chain and report the first break")
    ver.add_argument(
        "--expect-head", metavar="HASH", help="head anchored earlier (HASH or SEQ:HASH)"
    )
    ver.add_argument("--file", type=Path, help="verify a JSONL export instead of the database")
    ver.add_argument(
        "--partial", action="store_true", help="the export was filtered: allow seq gaps"
    )
    ver.add_argument("--json", action="store_true", help="machine-readable output")
    ver.set_defaults(func=_verify)

    head = asub.add_parser("head", help="print the chain head to anchor elsewhere")
    head.add_argument("--json", action="store_true", help="machine-readable output")
    head.set_defaults(func=_head)

    exp = asub.add_parser("export", help="stream events as CSV or JSONL")
    exp.add_argument("--format", choices=("csv", "jsonl"), required=True)
    exp.add_argument("--operation", metavar="NAME", help="only this operation's events")
    exp.add_argument("--unit", metavar="CODE", help="only events naming this unit or its chats")
    exp.add_argument("--since", help="from this time (YYYY-MM-DD[THH:MM], 7d, 36h)")
    exp.add_argument("--until", help="before this time (a date includes that day)")
    exp.add_argument("--out", type=Path, help="write here instead of standard output")
    exp.add_argument("--bom", action="store_true", help="CSV: start with a UTF-8 BOM")
    exp.set_defaults(func=_export)

    pur = asub.add_parser("purge", help="delete events past the retention period (audited)")
    pur.add_argument("--before", help="purge events older than this (default: retention cut)")
    pur.add_argument("--dry-run", action="store_true", help="show what would go, change nothing")
    pur.add_argument("--json", action="store_true", help="machine-readable output")
    pur.set_defaults(func=_purge)


# --- shared ---


def _fail(message: str, status: int = 2) -> int:
    print(f"daraja audit: {message}", file=sys.stderr)
    return status


def _chain(settings: Settings) -> AuditChain:
    from storage.audit import AuditChain

    key = settings.audit_hmac_key
    return AuditChain(key=key.get_secret_value().encode("utf-8") if key else None)


def _cli_actor() -> str:
    from bot.cli.admin import os_actor

    return os_actor()


async def _open(settings: Settings) -> Database:
    """The deployment's database, refusing one that is unreachable or not migrated (exit 2)."""
    from bot.cli.doors import explain
    from bot.errors import ConfigError
    from storage.db import Database, check_known, current_revision, head_revision
    from storage.errors import DatabaseError

    db = Database(settings.database_url)
    try:
        rev = await current_revision(db.engine)
    except (OSError, DatabaseError) as exc:
        await db.dispose()
        # Never the exception's own text: it may carry the URL.
        raise ConfigError(
            explain(exc) or "cannot open the database: check DARAJA_DATABASE_URL"
        ) from None
    if rev != head_revision():
        await db.dispose()
        check_known(rev)  # a newer Daraja's database: upgrading is not the answer
        raise ConfigError(
            f"database is at revision {rev or '(empty)'}, not {head_revision()}: "
            "run `daraja db upgrade` first"
        )
    return db


# --- verify / head ---


def _verify(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from storage.audit_verify import Anchor, VerifyResult, verify_database, verify_file

    settings = load_settings()
    try:
        expect = Anchor.parse(args.expect_head) if args.expect_head else None
    except ValueError as exc:
        return _fail(str(exc))
    chain = _chain(settings)
    result: VerifyResult
    if args.file is not None:
        if args.file.is_dir():
            return _fail(f"{args.file} is a directory: name the export file in it")
        if not args.file.is_file():
            return _fail(f"{args.file}: no such file")
        not_jsonl = _not_jsonl(args.file)
        if not_jsonl is not None:
            return _fail(
                f"{args.file} {not_jsonl}: --file reads the JSONL files "
                "`daraja audit export --format jsonl` writes"
            )
        try:
            result = verify_file(args.file, chain, expect=expect, partial=args.partial)
        except UnicodeDecodeError as exc:
            # Text that stops being UTF-8 part-way: the file was changed after the export.
            print(f"BROKEN: {args.file} is not UTF-8 text from byte {exc.start}")
            return 1
    else:
        if args.partial:
            return _fail("--partial applies to --file only")

        async def go() -> VerifyResult:
            db = await _open(settings)
            try:
                return await verify_database(db, chain, expect=expect)
            finally:
                await db.dispose()

        result = asyncio.run(go())
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
    else:
        print(result.describe())
    return 0 if result.ok else 1


def _not_jsonl(path: Path) -> str | None:
    """Why a file is plainly no JSONL export (a CSV export, a database, binary), or None."""
    with path.open("rb") as fh:
        start = fh.read(4096)
    if start.startswith(b"SQLite format 3\x00") or start.startswith(b"PGDMP"):
        return "is a database backup, not an export (`daraja restore` verifies a backup's chain)"
    try:
        text = start.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(start) - 4:  # not a character cut at the 4 KiB edge
            return "is not text"
        text = start[: exc.start].decode("utf-8-sig", "replace")
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith("seq,"):
        return "is a CSV export"
    return None


def _head(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from storage.audit import HeadState, read_head

    settings = load_settings()

    async def go() -> HeadState:
        db = await _open(settings)
        try:
            async with db.transaction() as session:
                return await read_head(session)
        finally:
            await db.dispose()

    head = asyncio.run(go())
    anchor = f"{head.seq}:{head.hash}"
    if args.json:
        print(json.dumps({"seq": head.seq, "hash": head.hash, "anchor": anchor}))
    else:
        print(f"seq {head.seq} hash {head.hash}")
        print(f"anchor: {anchor}   (keep it; later: daraja audit verify --expect-head {anchor})")
    return 0


# --- export ---


@contextmanager
def _output(path: Path | None, *, bom: bool) -> Iterator[TextIO]:
    encoding = "utf-8-sig" if bom else "utf-8"
    if path is None:
        sys.stdout.reconfigure(encoding=encoding, newline="")  # type: ignore[union-attr]
        yield sys.stdout
        sys.stdout.flush()
        return
    from storage.private_files import open_private

    # An export is the log's content: readable by this user only.
    with open_private(path, "w", encoding=encoding, newline="") as fh:
        yield cast(TextIO, fh)


def _export(args: argparse.Namespace) -> int:
    from bot.settings import load_settings

    settings = load_settings()
    if args.bom and args.format != "csv":
        return _fail("--bom applies to CSV only")
    if args.out is not None and not args.out.parent.is_dir():
        return _fail(f"{args.out.parent}: no such directory")
    return int(asyncio.run(_export_async(args, settings)))


async def _export_async(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.audit_export import plan_export, run_export
    from storage.audit import READ_EVENT
    from storage.models import utcnow

    chain = _chain(settings)
    actor = _cli_actor()
    request = {
        "command": "export",
        "format": args.format,
        "operation": args.operation,
        "unit": args.unit,
        "since": args.since,
        "until": args.until,
    }
    db = await _open(settings)
    try:
        try:
            plan = await plan_export(
                db,
                operation=args.operation,
                unit=args.unit,
                since=args.since,
                until=args.until,
                now=utcnow(),
            )
        except (UserInputError, NotFound) as exc:
            async with db.transaction() as session:
                await chain.append(
                    session,
                    component="cli",
                    event_type=READ_EVENT,
                    actor=actor,
                    outcome="refused",
                    payload={**request, "reason": str(exc)},
                )
            return _fail(str(exc))

        def progress(n: int) -> None:
            print(f"  {n:,} events exported…", file=sys.stderr)

        with _output(args.out, bom=args.bom) as out:
            count = await run_export(db, plan, out, args.format, progress=progress)
        async with db.transaction() as session:
            await chain.append(
                session,
                component="cli",
                event_type=READ_EVENT,
                actor=actor,
                operation_id=plan.scope.operation_id,
                payload={**request, "events": count},
            )
    finally:
        await db.dispose()
    where = str(args.out) if args.out else "standard output"
    print(f"exported {count} events to {where}", file=sys.stderr)
    return 0


# --- purge ---


def _purge(args: argparse.Namespace) -> int:
    from bot.domain.audit_dates import parse_when
    from bot.settings import load_settings
    from storage.models import utcnow

    settings = load_settings()
    days = settings.audit_retention_days
    if days is None:
        return _fail(
            "DARAJA_AUDIT_RETENTION_DAYS is not set, so audit events are kept forever; "
            "set it to the number of days to keep before purging"
        )
    now = utcnow()
    cut = now - timedelta(days=days)
    try:
        before = parse_when(args.before, now=now) if args.before else cut
    except UserInputError as exc:
        return _fail(str(exc))
    if before > cut:
        return _fail(
            f"--before {args.before} would delete events younger than the retention period "
            f"({days} days: nothing after {cut.date().isoformat()} may go)"
        )
    return int(asyncio.run(_purge_async(args, settings, before, days)))


async def _purge_async(
    args: argparse.Namespace, settings: Settings, before: datetime, days: int
) -> int:
    from storage.audit_retention import PurgeResult, purge_before
    from storage.audit_verify import verify_database

    chain = _chain(settings)
    db = await _open(settings)
    try:
        # Never purge a chain that does not verify: the purge would hide where it broke.
        check = await verify_database(db, chain)
        if not check.ok:
            print(check.describe(), file=sys.stderr)
            return _fail("the chain does not verify; nothing purged", 1)
        result: PurgeResult = await purge_before(
            db, chain, before, actor=_cli_actor(), dry_run=args.dry_run, retention_days=days
        )
    finally:
        await db.dispose()
    plan = result.plan
    if args.json:
        print(
            json.dumps(
                {
                    "dry_run": args.dry_run,
                    "before": before.isoformat(),
                    "purged": plan.count,
                    "first_seq": plan.first_seq,
                    "through_seq": plan.through_seq if plan.count else None,
                    "through_hash": plan.through_hash,
                    "event_seq": result.event_seq,
                }
            )
        )
    elif plan.count == 0:
        print(f"nothing older than {before.isoformat()} to purge")
    else:
        verb = "would purge" if args.dry_run else "purged"
        print(
            f"{verb} {plan.count} events (seq {plan.first_seq}..{plan.through_seq}, "
            f"older than {before.isoformat()}); anchor {plan.through_seq}:{plan.through_hash}"
            + (f"; recorded as event {result.event_seq}" if result.event_seq else "")
        )
    return 0
