"""`daraja backup` and `daraja restore`: copy the database while the bot runs, and put a copy
back only once its audit chain verifies.

Exit status: 0 done, 1 a chain does not verify (nothing was overwritten when it is the
backup's), 2 bad usage, settings, a file that is not a whole Daraja backup, or a database a
running bot uses (restore without --force), 130 interrupted (nothing half-written is kept).
Progress goes to standard error; `--json` prints one JSON object on standard output, also
when the command is refused (`{"ok": false, "error": ...}`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError, DarajaError

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage.audit import AuditChain
    from storage.audit_verify import VerifyResult


def register_backup(sub: Any) -> None:
    """Add `daraja backup`."""
    p: argparse.ArgumentParser = sub.add_parser(
        "backup",
        help="copy the database (consistent while the bot runs)",
        description="SQLite: the online backup API; PostgreSQL: pg_dump (custom format). The "
        "file is created mode 0600 and its audit chain is verified.",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="backup file, or a directory to put it in (default: backups/daraja-<UTC time>.db "
        "or .dump beside the database)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(
        func=lambda args: _guarded(
            args, _backup, "interrupted: no backup was written (the database is untouched)"
        )
    )


def register_restore(sub: Any) -> None:
    """Add `daraja restore`."""
    p: argparse.ArgumentParser = sub.add_parser(
        "restore",
        help="put a backup back (its audit chain verified before and after)",
        description="Verifies the backup's audit chain, refuses a database a running bot uses "
        "(unless --force), saves the current SQLite database beside it, restores, migrates the "
        "restored database to this code's revision and verifies its chain again.",
    )
    p.add_argument("file", type=Path, help="a file made by `daraja backup`")
    p.add_argument(
        "--force", action="store_true", help="restore even though a running bot uses the database"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(
        func=lambda args: _guarded(
            args, _restore, "interrupted: nothing was restored (the database is as it was)"
        )
    )


class _Refused(DarajaError):
    """A chain did not verify: the restore stops (exit 1)."""


class _LateInterrupt(Exception):
    """Ctrl-C after the backup was written in: the restore is done but not yet checked."""


class _Stopped(Exception):
    """The command cannot go on (exit 2): a running bot, a file that is no backup, a tool
    missing; the text says why and what to do."""


def _refusal(args: argparse.Namespace, message: str, status: int, **extra: Any) -> int:
    """Say why the command stopped: one line on stderr, and the JSON object scripts read."""
    if args.json:
        print(json.dumps({"ok": False, "error": message, **extra}))
    print(f"daraja: {message}", file=sys.stderr)
    return status


def _guarded(args: argparse.Namespace, work: Any, interrupted: str) -> int:
    """Run the command, turning its expected refusals and Ctrl-C into one line each."""
    from storage import backup

    try:
        status: int = work(args)
    except (backup.BackupError, _Stopped) as exc:
        return _refusal(args, str(exc), 2)
    except _Refused as exc:
        return _refusal(args, str(exc), 1, **exc.params)
    except _LateInterrupt as exc:
        return _refusal(args, str(exc), 130)
    except KeyboardInterrupt:
        return _refusal(args, interrupted, 130)
    except ConfigError as exc:
        return _refusal(args, f"configuration error: {exc}", 2)
    except Exception as exc:
        from bot.cli.doors import explain

        line = explain(exc)  # a newer database, PostgreSQL down, a path it cannot use
        if line is None:
            raise  # a bug: keep its traceback
        return _refusal(args, line, 2)
    return status


def _progress(line: str) -> None:
    print(f"daraja: {line}", file=sys.stderr, flush=True)


def _chain(settings: Settings) -> AuditChain:
    from storage.audit import AuditChain

    key = settings.audit_hmac_key
    return AuditChain(key=key.get_secret_value().encode("utf-8") if key else None)


def _public_url(url: str) -> str:
    from storage.urls import public_url

    return public_url(url)


async def _verify_url(url: str, chain: AuditChain) -> VerifyResult:
    from storage.audit_verify import verify_database
    from storage.db import Database

    db = Database(url)
    try:
        return await verify_database(db, chain)
    finally:
        await db.dispose()


# --- backup -------------------------------------------------------------------------------


def _backup(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from storage import backup
    from storage.db import check_known, current_revision

    settings = load_settings()
    url = settings.database_url
    source = backup.sqlite_path(url)
    if source is not None and not source.is_file():
        raise ConfigError(f"no database at {source} (check DARAJA_DATABASE_URL)")
    suffix = ".dump" if source is None else ".db"
    base = source.parent if source is not None else Path("data")
    name = f"daraja-{backup.stamp()}{suffix}"
    out: Path = args.out or base / "backups" / name
    if out.is_dir():
        out = out / name
    if not out.parent.is_dir():
        if args.out is not None:
            raise _Stopped(f"{out.parent}: no such directory (create it mode 700 first)")
        backup.make_private_dir(out.parent)
    loose = backup.private_dir_warning(out.parent)
    if loose is not None:
        _progress(f"warning: {loose}")

    async def revision() -> str | None:
        from storage.db import Database

        db = Database(url)
        try:
            return await current_revision(db.engine)
        finally:
            await db.dispose()

    # A newer Daraja's database is refused like everywhere else; an empty one has no log.
    rev = asyncio.run(revision())
    check_known(rev)
    if rev is None:
        raise _Stopped("the database is empty (never migrated): nothing to back up")
    chain = _chain(settings)
    if source is not None:
        snap = backup.sqlite_backup(source, out, _progress)
        _progress("verifying the copy's audit chain")
        result = _verify_file(snap.path, chain)
    else:
        snap = backup.pg_backup(url, out, _progress)
        _progress("verifying the dump's audit chain")
        result = _verify_dump(snap.path, url, chain)
    report = {
        "ok": result.ok,
        "backup": str(snap.path),
        "backend": snap.backend,
        "bytes": snap.bytes,
        "revision": rev,
        "audit": result.as_dict(),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"backup: {snap.path} ({_human(snap.bytes)}, {snap.backend}, revision {rev})")
        print(f"audit chain of the backup: {result.describe()}")
    if not result.ok:
        _progress(
            "the backup was written but its audit chain does not verify: keep the file for "
            "the auditors and run `daraja audit verify` on the database"
        )
    return 0 if result.ok else 1


def _human(size: int) -> str:
    """A file size as people read it."""
    if size < 1024 * 1024:
        return f"{size / 1024:,.1f} KiB"
    return f"{size / 1_048_576:,.1f} MiB"


def _verify_file(path: Path, chain: AuditChain) -> VerifyResult:
    from storage.audit_verify import verify_records
    from storage.backup import sqlite_records

    records, head = sqlite_records(path)
    return verify_records(records, chain, head=head)


def _verify_dump(path: Path, url: str, chain: AuditChain) -> VerifyResult:
    from storage.audit import HeadState
    from storage.audit_verify import verify_records
    from storage.backup import pg_dump_records

    records, head = pg_dump_records(path, url)
    state = HeadState(seq=head[0], hash=head[1]) if head is not None else None
    return verify_records(records, chain, head=state)


# --- restore ------------------------------------------------------------------------------


def _restore(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from storage import backup

    settings = load_settings()
    url = settings.database_url
    chain = _chain(settings)
    target = backup.sqlite_path(url)
    if target is not None:
        report = _restore_sqlite(args, url, target, chain)
    else:
        report = _restore_postgres(args, url, chain)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"restored {args.file} into {report['database']}")
        if report.get("saved"):
            print(f"the database as it was: {report['saved']}")
        print(f"audit chain of the backup: {report['before_text']}")
        print(f"audit chain of the restored database: {report['after_text']}")
    return 0 if report["after"]["ok"] else 1


def _check_before(result: VerifyResult, file: Path) -> dict[str, Any]:
    if not result.ok:
        hint = ""
        broken = result.broken
        if broken is not None and broken.kind == "changed" and broken.index == 1:
            # The very first event fails: far more often a different key than a forgery.
            hint = (
                "; if this machine's DARAJA_AUDIT_HMAC_KEY is not the one the backup was "
                "written with, set that key and restore again"
            )
        raise _Refused(
            f"the backup's audit chain does not verify ({result.describe()}): nothing was "
            f"restored from {file}{hint}",
            before=result.as_dict(),
        )
    return result.as_dict()


def _restore_sqlite(
    args: argparse.Namespace, url: str, target: Path, chain: AuditChain
) -> dict[str, Any]:
    from storage import backup

    _refuse_running_bot(target, args.force)  # before minutes of checking the backup
    _progress(f"checking {args.file}")
    staged = backup.sqlite_stage(args.file, target, _progress)
    try:
        # A newer Daraja's backup: upgrade the code first.
        _backup_known(backup.sqlite_revision(staged), args.file)
        _progress("verifying the backup's audit chain")
        result = _verify_file(staged, chain)
        before = _check_before(result, args.file)
        lock = backup.RunLock.exclusive(target) if target.exists() else None
        if target.exists() and lock is None and not args.force:
            raise _Stopped(_running(str(target)))
        try:
            saved = backup.sqlite_restore(staged, target, _progress)
        finally:
            if lock is not None:
                lock.release()
    finally:
        staged.unlink(missing_ok=True)
    after = _after(url, chain)
    return {
        "ok": after.ok,
        "restored_from": str(args.file),
        "database": str(target),
        "saved": str(saved) if saved else None,
        "before": before,
        "after": after.as_dict(),
        "before_text": result.describe(),
        "after_text": after.describe(),
    }


def _backup_known(revision: str | None, file: Path) -> None:
    """Refuse a backup written by a newer Daraja, saying what to do about *it*."""
    from storage.db import SchemaTooNew, check_known, head_revision

    try:
        check_known(revision)
    except SchemaTooNew:
        raise _Stopped(
            f"{file} was written by a newer Daraja (revision {revision}; this code knows up to "
            f"{head_revision()}): upgrade the code first, then restore it; nothing was restored"
        ) from None


def _running(database: str) -> str:
    return (
        f"a running Daraja uses {database}: stop the bot (and any worker) first, then restore; "
        "nothing was restored (--force restores under it)"
    )


def _refuse_running_bot(target: Path, force: bool) -> None:
    """Refuse at once when a running bot holds the database's lock."""
    from storage import backup

    if force or not target.exists():
        return
    lock = backup.RunLock.exclusive(target)
    if lock is None:
        raise _Stopped(_running(str(target)))
    lock.release()


def _after(url: str, chain: AuditChain) -> VerifyResult:
    from storage.db import Database

    async def upgrade() -> None:
        db = Database(url)
        try:
            await db.upgrade()  # an older backup is brought to this code's revision
        finally:
            await db.dispose()

    try:
        _progress("migrating the restored database to this code's revision")
        asyncio.run(upgrade())
        _progress("verifying the restored database's audit chain")
        return asyncio.run(_verify_url(url, chain))
    except KeyboardInterrupt:
        raise _LateInterrupt(
            "interrupted after the backup was written in: run `daraja db upgrade` and "
            "`daraja audit verify` before starting the bot"
        ) from None


def _restore_postgres(args: argparse.Namespace, url: str, chain: AuditChain) -> dict[str, Any]:
    from storage import backup

    _progress(f"checking {args.file}")
    backup.pg_check_dump(args.file)
    where = f"database {_public_url(url)}"
    if not args.force and asyncio.run(_pg_sessions(url)):
        raise _Stopped(_running(where))  # before the dump is read
    _progress("verifying the backup's audit chain")
    result = _verify_dump(args.file, url, chain)  # also refuses a dump that is not Daraja's
    _backup_known(backup.pg_dump_revision(args.file, url), args.file)
    before = _check_before(result, args.file)
    others = asyncio.run(_pg_sessions(url))
    if others and not args.force:
        raise _Stopped(_running(f"{where} ({others} connection(s))"))
    backup.pg_restore(args.file, url, _progress)
    after = _after(url, chain)
    return {
        "ok": after.ok,
        "restored_from": str(args.file),
        "database": _public_url(url),
        "saved": None,
        "before": before,
        "after": after.as_dict(),
        "before_text": result.describe(),
        "after_text": after.describe(),
    }


async def _pg_sessions(url: str) -> int:
    """Other connections of a Daraja process to this database (a running bot or worker)."""
    from storage.backup import pg_other_sessions
    from storage.db import Database

    db = Database(url)
    try:
        return await pg_other_sessions(db)
    finally:
        await db.dispose()
