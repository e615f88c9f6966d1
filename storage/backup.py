"""Backups and restores of the deployment's database, consistent while the bot runs.

SQLite: SQLite's online backup API (`sqlite3.Connection.backup`) copies the database in one
read transaction, so the copy is one consistent moment even while the bot writes (WAL readers
never block the writer). A restore copies the backup *into* the live file with the same API,
which is the one way SQLite supports to replace a database another process may have open: a
file renamed under a running bot would leave it writing to a vanished inode through a WAL that
no longer matches. Before a restore overwrites anything, the database as it was is saved next
to it (`<name>.before-restore-<time>.db`).

PostgreSQL: `pg_dump --format=custom` (one snapshot transaction) and `pg_restore --clean
--single-transaction`. Credentials go to the tools through the environment (PGPASSWORD and
friends), never on a command line another user could read in `ps`.

The SQLite copies go in steps of `STEP_PAGES` pages with a progress line every tenth of the
way (a large database takes minutes). The source connection holds one read transaction across
all the steps, so the copy is still one moment: SQLite restarts a stepped backup whenever the
source changes between steps, which a held WAL snapshot does not. A restore interrupted between
steps (Ctrl-C, a full disk) rolls the target's write transaction back: the database is as it was.

Every file written here is created mode 0600 in a directory created 0700: a backup holds every
message of an operation. This module knows nothing of settings or the CLI; `bot/cli/backup.py`
drives it.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from storage.audit import GENESIS, AuditRecord, HeadState
from storage.audit_read import ts_text

if TYPE_CHECKING:
    from storage.db import Database

Progress = Callable[[str], None]

# Where Debian's PostgreSQL packages put the client tools when they are not on PATH.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"

# Pages per backup step (4 MiB of 4 KiB pages): small enough for a progress line every few
# seconds on a slow disk, large enough that the steps cost nothing.
STEP_PAGES = 1024

# The tables that make a SQLite file or a dump a Daraja database.
DARAJA_TABLES = ("alembic_version", "audit_events", "audit_head")


class BackupError(Exception):
    """A backup or restore cannot go on; the text says why in one line."""


@dataclass(frozen=True)
class Snapshot:
    """A backup file just written."""

    path: Path
    bytes: int
    backend: str


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(parsed.database or "")


def stamp(now: datetime | None = None) -> str:
    """A file-name-safe UTC time such as `20261203T091500Z`."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


_KINDS = {"sqlite": "a SQLite backup", "postgresql": "a PostgreSQL dump"}


def _file_kind(path: Path) -> str:
    """What a backup file holds, by its first bytes."""
    with path.open("rb") as fh:
        head = fh.read(16)
    if head == b"SQLite format 3\x00":
        return "sqlite"
    if head.startswith(b"PGDMP"):
        return "postgresql"
    return "not a Daraja backup"


def _expect_kind(path: Path, backend: str) -> None:
    """Refuse a file that is not a backup of this deployment's database kind."""
    kind = _file_kind(path)
    if kind == backend:
        return
    if kind in _KINDS:
        raise BackupError(
            f"{path} is {_KINDS[kind]}, but this deployment uses "
            f"{'SQLite' if backend == 'sqlite' else 'PostgreSQL'} (DARAJA_DATABASE_URL): "
            "nothing was restored"
        )
    raise BackupError(
        f"{path} is not a Daraja backup (neither a SQLite database nor a PostgreSQL dump): "
        "nothing was restored"
    )


def private_dir_warning(directory: Path) -> str | None:
    """Why a directory is no place for a backup (others may list or read it), or None."""
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    advice = (
        "a directory only this user can open"
        if mode & stat.S_ISVTX  # /tmp and the like: shared by design, never chmod them
        else f"a directory only this user can open (chmod 700 {directory})"
    )
    return f"{directory} is open to other users (mode {mode:o}): keep backups in {advice}"


def make_private_dir(directory: Path) -> None:
    """Create a directory and its missing parents 0700, whatever the umask."""
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise BackupError(
                f"cannot create the directory {path}: {exc.strerror or exc}"
            ) from None
        os.chmod(path, 0o700)


def _private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 (whatever the umask), refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- SQLite -------------------------------------------------------------------------------


def _copy(src: sqlite3.Connection, dst: sqlite3.Connection, progress: Progress, what: str) -> None:
    """SQLite's backup API from `src` to `dst` in steps, a line every tenth of the way."""
    shown = [0]

    def step(_status: int, remaining: int, total: int) -> None:
        if total <= 0:
            return
        tenth = (total - remaining) * 10 // total
        if tenth > shown[0] and remaining > 0:
            shown[0] = tenth
            progress(f"{what}: {tenth * 10}% ({total - remaining:,} of {total:,} pages)")

    src.backup(dst, pages=STEP_PAGES, progress=step)


def _read_snapshot(con: sqlite3.Connection) -> int:
    """Open one read transaction on `con` (held until it closes) and return its page count."""
    con.execute("BEGIN")
    pages: int = con.execute("PRAGMA page_count").fetchone()[0]
    return pages


def sqlite_backup(source: Path, out: Path, progress: Progress) -> Snapshot:
    """Copy a live SQLite database to `out` (0600) as one consistent snapshot."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if out.exists():
        raise BackupError(f"{out} exists already: choose another --out")
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    _private_file(partial)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30, isolation_level=None)
        try:
            dst = sqlite3.connect(partial)
            try:
                # One read transaction across every step: writes by the bot during the copy
                # neither restart it nor show up in it.
                pages = _read_snapshot(src)
                progress(f"copying {pages:,} pages ({_size(pages, src)}) from {source}")
                _copy(src, dst, progress, "copying")
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                progress("checking the copy (SQLite's quick_check)")
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        if check != "ok":
            raise BackupError(f"the copy failed SQLite's check: {check}")
        _fsync(partial)
        os.replace(partial, out)
    except sqlite3.Error as exc:
        _remove_partial(partial)
        raise BackupError(
            f"the copy to {out} failed ({exc}{_disk_hint(exc, out)}); no backup was written"
        ) from None
    except BaseException:
        _remove_partial(partial)
        raise
    return Snapshot(out, out.stat().st_size, "sqlite")


def _remove_partial(partial: Path) -> None:
    """A copy that did not finish leaves nothing behind, its journal included."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        partial.with_name(partial.name + suffix).unlink(missing_ok=True)


def _disk_hint(exc: BaseException, where: Path) -> str:
    if "full" not in str(exc):
        return ""
    try:
        free = shutil.disk_usage(where.parent).free
    except OSError:
        return ""
    return f": {free / 1_048_576:,.1f} MiB free in {where.parent}"


def _size(pages: int, con: sqlite3.Connection) -> str:
    page_size: int = con.execute("PRAGMA page_size").fetchone()[0]
    return f"{pages * page_size / 1_048_576:,.1f} MiB"


def sqlite_stage(backup: Path, beside: Path, progress: Progress) -> Path:
    """A private working copy of a backup file next to the target (the original is never
    opened for writing: it may sit on read-only media), checked to be a whole Daraja
    database."""
    if backup.is_dir():
        raise BackupError(f"{backup} is a directory: name the backup file in it")
    if not backup.is_file():
        raise BackupError(f"{backup}: no such file")
    _expect_kind(backup, "sqlite")
    if not beside.parent.exists():
        make_private_dir(beside.parent)
    staged = beside.with_name(f".{beside.name}.restore-{os.getpid()}")
    staged.unlink(missing_ok=True)
    _private_file(staged)
    try:
        try:
            src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True, isolation_level=None)
            try:
                dst = sqlite3.connect(staged)
                try:
                    pages = _read_snapshot(src)
                    progress(f"reading {pages:,} pages ({_size(pages, src)}) of {backup}")
                    _copy(src, dst, progress, "reading the backup")
                    dst.execute("PRAGMA journal_mode=DELETE")  # read below without a -shm file
                    progress("checking the backup (SQLite's quick_check)")
                    check = dst.execute("PRAGMA quick_check").fetchone()[0]
                    tables = {
                        str(row[0])
                        for row in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")
                    }
                finally:
                    dst.close()
            finally:
                src.close()
        except sqlite3.DatabaseError as exc:
            if "full" in str(exc):
                raise BackupError(
                    f"no room beside {beside} for a working copy of the backup "
                    f"({backup.stat().st_size / 1_048_576:,.1f} MiB){_disk_hint(exc, beside)}:"
                    " a restore needs room for the backup, a copy of the current database "
                    "and the restored one; nothing was restored"
                ) from None
            raise BackupError(
                f"{backup} cannot be read as a SQLite database ({exc}): it is damaged or "
                "incomplete; nothing was restored"
            ) from None
        if check != "ok":
            raise BackupError(
                f"{backup} failed SQLite's check ({check}): it is damaged; nothing was restored"
            )
        missing = [t for t in DARAJA_TABLES if t not in tables]
        if missing:
            raise BackupError(
                f"{backup} is a SQLite database but not a Daraja one (no {', '.join(missing)}):"
                " nothing was restored"
            )
    except BaseException:
        _remove_partial(staged)
        raise
    return staged


def sqlite_revision(path: Path) -> str | None:
    """The Alembic revision stamped in a SQLite file (None: never migrated)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        con.close()
    return str(row[0]) if row else None


def sqlite_restore(staged: Path, target: Path, progress: Progress) -> Path | None:
    """Copy a verified staged backup into the target database in place; returns where the
    database as it was has been saved (None when there was none)."""
    saved: Path | None = None
    if target.exists() and target.stat().st_size > 0:
        saved = target.with_name(f"{target.stem}.before-restore-{stamp()}{target.suffix or '.db'}")
        progress(f"saving the current database as {saved}")
        try:
            sqlite_backup(target, saved, lambda line: progress(f"saving: {line}"))
        except BackupError as exc:
            raise BackupError(
                f"could not save the current database first ({exc}): nothing was restored"
            ) from None
    if not target.exists():
        _private_file(target)  # 0600 before SQLite writes a page into it
    src = sqlite3.connect(staged, isolation_level=None)
    try:
        dst = sqlite3.connect(target, timeout=0, isolation_level=None)
        try:
            _wait_for_writer(dst, target, progress)
            pages = _read_snapshot(src)
            progress(f"writing {pages:,} pages into {target}")
            # Interrupted between steps, the target's write transaction rolls back.
            try:
                _copy(src, dst, progress, "writing")
            except sqlite3.Error as exc:
                raise BackupError(
                    f"writing into {target} failed ({exc}{_disk_hint(exc, target)}); its write "
                    "was rolled back: the database is as it was"
                ) from None
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(target, 0o600)
    return saved


LOCK_WAIT_S = 60


def _wait_for_writer(con: sqlite3.Connection, target: Path, progress: Progress) -> None:
    """Make sure no other process is writing to `target` (a CLI command beside a stopped bot):
    say so and wait for it, or refuse after LOCK_WAIT_S; nothing is written before."""
    try:
        con.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        progress(f"another process is writing to {target}: waiting up to {LOCK_WAIT_S} s")
        con.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            raise BackupError(
                f"another process kept {target} locked for {LOCK_WAIT_S} s (a Daraja command or "
                "a bot run by another user?): stop it and restore again; nothing was restored"
            ) from None
    con.execute("ROLLBACK")  # the backup API opens its own write transaction
    con.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")


def sqlite_records(path: Path) -> tuple[Iterator[AuditRecord], HeadState]:
    """The audit events (in seq order, streamed) and head of a SQLite file, read through a
    read-only connection so verifying a backup never changes it."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    except sqlite3.DatabaseError as exc:
        con.close()
        raise BackupError(f"{path} holds no Daraja audit log: {exc}") from None
    head = HeadState(seq=int(row[0]), hash=str(row[1])) if row else HeadState(0, GENESIS)

    def rows() -> Iterator[AuditRecord]:
        try:
            cursor = con.execute(
                "SELECT seq, ts, component, event_type, actor, outcome, operation_id, payload, "
                "prev_hash, hash FROM audit_events ORDER BY seq"
            )
            for r in cursor:
                yield AuditRecord(
                    seq=r[0],
                    ts=ts_text(r[1]),
                    component=r[2],
                    event_type=r[3],
                    actor=r[4],
                    outcome=r[5],
                    operation_id=r[6],
                    payload=r[7],
                    prev_hash=r[8],
                    hash=r[9],
                )
        finally:
            con.close()

    return rows(), head


@dataclass
class RunLock:
    """A running bot's shared lock on its SQLite database (`<db>.run-lock`); a restore takes
    it exclusively to know that no bot uses the database."""

    fd: int

    @classmethod
    def hold(cls, database: Path) -> RunLock:
        """Take the shared lock (several worker processes may hold it together)."""
        fd = os.open(_run_lock_path(database), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return cls(fd)

    @classmethod
    def exclusive(cls, database: Path) -> RunLock | None:
        """Take it exclusively at once, or None when a running bot holds it."""
        fd = os.open(_run_lock_path(database), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        """Let go (also done by the kernel when the process ends)."""
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def receiver_lock(database: Path) -> int | None:
    """Take `<db>.receive-lock` for the one process that receives updates (polling or
    webhook): its descriptor, held until the process ends, or None when another holds it."""
    fd = os.open(
        database.with_name(database.name + ".receive-lock"), os.O_CREAT | os.O_RDWR, 0o600
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _run_lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".run-lock")


# --- PostgreSQL ---------------------------------------------------------------------------


def pg_tool(name: str) -> str:
    """The path of `pg_dump` / `pg_restore`: on PATH, else the newest Debian install."""
    found = shutil.which(name)
    if found:
        return found
    for directory in sorted(glob.glob(PG_BIN_GLOB), key=_version_key, reverse=True):
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    raise BackupError(f"{name} not found: install PostgreSQL's client tools (postgresql-client)")


def _version_key(directory: str) -> tuple[int, ...]:
    part = Path(directory).parent.name
    return tuple(int(p) for p in part.split(".") if p.isdigit())


def pg_env(url: str) -> dict[str, str]:
    """libpq's environment for a `postgresql+asyncpg://` URL (the password stays out of argv)."""
    parsed = make_url(url)
    env = dict(os.environ)
    for var, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", str(parsed.port) if parsed.port else None),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value:
            env[var] = str(value)
    env["PGAPPNAME"] = "daraja-backup"
    return env


def _run(
    argv: list[str], url: str, what: str, hint: str = ""
) -> subprocess.CompletedProcess[bytes]:
    # A fixed argv naming PostgreSQL's own tools; no shell.
    result = subprocess.run(argv, env=pg_env(url), capture_output=True, check=False)  # noqa: S603
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BackupError(
            f"{what} failed: {lines[-1] if lines else f'status {result.returncode}'}{hint}"
        )
    return result


# What pg_dump and pg_restore say, with --verbose, as they reach each table's rows.
_TABLE_LINES = ("dumping contents of table ", "processing data for table ")


def _run_verbose(argv: list[str], url: str, what: str, progress: Progress) -> None:
    """Run a PostgreSQL tool with --verbose, its per-table lines passed on as progress."""
    last = ""
    # A fixed argv naming PostgreSQL's own tools; no shell.
    with subprocess.Popen(  # noqa: S603
        [*argv, "--verbose"],
        env=pg_env(url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stderr is not None
        try:
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").strip()
                for marker in _TABLE_LINES:
                    if marker in line:
                        table = line.split(marker, 1)[1].strip().strip('"')
                        progress(f"{what}: table {table}")
                        break
                else:
                    if "error" in line.lower() or "fatal" in line.lower():
                        last = line
        except BaseException:
            proc.kill()
            raise
        status = proc.wait()
    if status != 0:
        raise BackupError(f"{what} failed: {last or f'status {status}'}")


def pg_backup(url: str, out: Path, progress: Progress) -> Snapshot:
    """`pg_dump --format=custom` of the deployment's database into `out` (0600)."""
    if out.exists():
        raise BackupError(f"{out} exists already: choose another --out")
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    _private_file(partial)
    progress(f"pg_dump of database {make_url(url).database}")
    try:
        _run_verbose(
            [pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}"],
            url,
            "pg_dump",
            progress,
        )
        _fsync(partial)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Snapshot(out, out.stat().st_size, "postgresql")


def pg_check_dump(path: Path) -> None:
    """Refuse what is not a pg_dump custom-format archive."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    _expect_kind(path, "postgresql")


_DAMAGED = " (the dump is damaged or incomplete)"


def pg_check_daraja(path: Path, url: str) -> None:
    """Refuse a dump that is not of a Daraja database (its table of contents lacks the audit
    log or the migration stamp)."""
    listing = _run(
        [pg_tool("pg_restore"), "--list", str(path)],
        url,
        "pg_restore (reading the dump)",
        _DAMAGED,
    ).stdout.decode("utf-8", "replace")
    # `3616; 0 16392 TABLE DATA public audit_events owner`
    tables = {
        parts[parts.index("DATA") + 2]
        for line in listing.splitlines()
        if " TABLE DATA " in line and len(parts := line.split()) > parts.index("DATA") + 2
    }
    missing = [t for t in DARAJA_TABLES if t not in tables]
    if missing:
        raise BackupError(
            f"{path} is a PostgreSQL dump but not of a Daraja database (no {', '.join(missing)}):"
            " nothing was restored"
        )


def pg_dump_records(path: Path, url: str) -> tuple[list[AuditRecord], tuple[int, str] | None]:
    """The audit events and head stored in a dump, read without restoring it anywhere."""
    pg_check_dump(path)
    pg_check_daraja(path, url)
    records: list[AuditRecord] = []
    head: tuple[int, str] | None = None
    for table in ("audit_events", "audit_head"):
        out = _run(
            [pg_tool("pg_restore"), "--data-only", f"--table={table}", "--file=-", str(path)],
            url,
            "pg_restore (reading the dump)",
            _DAMAGED,
        ).stdout.decode("utf-8")
        for columns, row in _copy_rows(out):
            data = dict(zip(columns, row, strict=True))
            if table == "audit_head":
                head = (int(data["seq"] or 0), data["hash"] or "")
                continue
            records.append(
                AuditRecord(
                    seq=int(data["seq"] or 0),
                    ts=ts_text(data["ts"]),
                    component=data["component"] or "",
                    event_type=data["event_type"] or "",
                    actor=data["actor"] or "",
                    outcome=data["outcome"] or "",
                    operation_id=int(data["operation_id"]) if data["operation_id"] else None,
                    payload=data["payload"] or "",
                    prev_hash=data["prev_hash"] or "",
                    hash=data["hash"] or "",
                )
            )
    records.sort(key=lambda r: r.seq)
    return records, head


def pg_dump_revision(path: Path, url: str) -> str | None:
    """The Alembic revision stamped in a dump (None: never migrated)."""
    out = _run(
        [
            pg_tool("pg_restore"),
            "--data-only",
            "--table=alembic_version",
            "--file=-",
            str(path),
        ],
        url,
        "pg_restore (reading the dump)",
        _DAMAGED,
    ).stdout.decode("utf-8")
    for _columns, row in _copy_rows(out):
        return row[0]
    return None


def pg_restore(path: Path, url: str, progress: Progress) -> None:
    """Replace the database's tables with the dump's, in one transaction."""
    progress(f"pg_restore into database {make_url(url).database} (one transaction)")
    _run_verbose(
        [
            pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={make_url(url).database}",
            str(path),
        ],
        url,
        "pg_restore",
        progress,
    )


def _copy_rows(sql: str) -> Iterator[tuple[list[str], list[str | None]]]:
    """Rows of the `COPY table (cols) FROM stdin;` blocks of a plain-text dump."""
    lines = iter(sql.splitlines())
    for line in lines:
        if not line.startswith("COPY "):
            continue
        inner = line[line.index("(") + 1 : line.index(")")]
        columns = [c.strip().strip('"') for c in inner.split(",")]
        for data in lines:
            if data == "\\.":
                break
            yield columns, [_unescape(field) for field in data.split("\t")]


_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unescape(field: str) -> str | None:
    """One field of COPY's text format (`\\N` is NULL)."""
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        ch = field[i]
        if ch != "\\" or i + 1 == len(field):
            out.append(ch)
            i += 1
            continue
        nxt = field[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x":
            j = i + 2
            while j < len(field) and j < i + 4 and field[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(field[i + 2 : j], 16)))
            i = j
        elif nxt in "01234567":
            j = i + 1
            while j < len(field) and j < i + 4 and field[j] in "01234567":
                j += 1
            out.append(chr(int(field[i + 1 : j], 8)))
            i = j
        else:
            out.append(nxt)
            i += 2
    # pg_dump writes UTF-8 text as is and escapes only control characters, so an octal or hex
    # escape is one ASCII character.
    return "".join(out)


async def pg_other_sessions(db: Database) -> int:
    """Other connections of a Daraja process to this PostgreSQL database (a running bot or
    worker), which a restore must not pull the data from under."""
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        count = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'daraja' AND pid <> pg_backend_pid()"
            )
        )
    return int(count or 0)
