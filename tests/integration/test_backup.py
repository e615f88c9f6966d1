"""`daraja backup` and `daraja restore` on real databases, taken while writes keep coming."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from storage.audit import AuditChain
from storage.db import Database, head_revision


class Burst:
    """Another connection appending audit events as fast as it can, like a busy bot."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.written = 0
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        db = Database(self.url)
        chain = AuditChain()
        try:
            while not self._stop.is_set():
                async with db.transaction() as s:
                    for _ in range(5):
                        await chain.append(
                            s,
                            component="test",
                            event_type="burst.write",
                            actor="tg:1",
                            payload={"n": self.written, "text": "Kòmandan: 14:30 \t\\ ok"},
                        )
                        self.written += 1
                self._started.set()
        finally:
            await db.dispose()

    def __enter__(self) -> Burst:
        self._thread.start()
        assert self._started.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _cli(
    argv: list[str], url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, object], str]:
    monkeypatch.setenv("DARAJA_DATABASE_URL", url)
    capsys.readouterr()
    status = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, json.loads(captured.out) if captured.out.strip() else {}, captured.err


def _migrated(url: str) -> None:
    async def go() -> None:
        db = Database(url)
        try:
            await db.upgrade()
        finally:
            await db.dispose()

    asyncio.run(go())


@pytest.fixture
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A source and a restore target on the backend under test."""
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/live.db", f"sqlite+aiosqlite:///{tmp_path}/new.db"
        return
    from tests.support.postgres import fresh_database_url

    yield fresh_database_url(request), fresh_database_url(request)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize("two_databases", BACKENDS, indirect=True)
def test_a_backup_taken_during_a_burst_restores_with_a_verified_chain(
    two_databases: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live, target = two_databases
    _migrated(live)
    out = tmp_path / "backup.bin"
    with Burst(live) as burst:
        before = burst.written
        status, taken, progress = _cli(["backup", "--out", str(out)], live, monkeypatch, capsys)
        after_backup = burst.written
    assert status == 0, progress
    assert after_backup > before  # the writes went on while the backup ran
    audit = taken["audit"]
    assert isinstance(audit, dict)
    assert audit["ok"] is True
    # One moment of the burst: whole transactions only (5 events each), none half-copied.
    assert before - 5 <= audit["count"] <= after_backup  # (a transaction may be in flight)
    assert audit["count"] % 5 == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    status, restored, progress = _cli(["restore", str(out)], target, monkeypatch, capsys)

    assert status == 0, progress
    assert restored["before"] == audit
    after = restored["after"]
    assert isinstance(after, dict)
    assert (after["ok"], after["count"], after["head_hash"]) == (
        True,
        audit["count"],
        audit["head_hash"],
    )
    assert "verifying the restored database's audit chain" in progress
    # The restored database is one a bot can use: a command runs on it.
    assert _cli(["admin", "operations"], target, monkeypatch, capsys)[0] == 0


@pytest.mark.parametrize("two_databases", BACKENDS, indirect=True)
def test_restore_refuses_a_database_a_running_bot_uses_unless_forced(
    two_databases: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, live = two_databases
    _migrated(source)
    _migrated(live)
    out = tmp_path / "backup.bin"
    assert _cli(["backup", "--out", str(out)], source, monkeypatch, capsys)[0] == 0

    async def running_bot_refused() -> tuple[int, str]:
        bot_db = Database(live)
        try:
            bot_db.hold_run_lock()
            async with bot_db.engine.connect():  # PostgreSQL: the bot's open connection
                status, _, err = await asyncio.to_thread(
                    _cli, ["restore", str(out)], live, monkeypatch, capsys
                )
                forced = (
                    await asyncio.to_thread(
                        _cli, ["restore", str(out), "--force"], live, monkeypatch, capsys
                    )
                )[0]
            return status * 10 + forced, err
        finally:
            await bot_db.dispose()

    codes, err = asyncio.run(running_bot_refused())

    assert codes == 20, err  # refused with status 2, then restored with --force
    assert "a running Daraja uses" in err


def test_a_tampered_backup_is_refused_and_nothing_is_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    live = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    _migrated(live)
    assert _cli(["admin", "create-operation", "Kenscoff"], live, monkeypatch, capsys)[0] == 0
    out = tmp_path / "backup.db"
    assert _cli(["backup", "--out", str(out)], live, monkeypatch, capsys)[0] == 0
    con = sqlite3.connect(out)
    con.execute("DROP TRIGGER audit_events_no_update")
    con.execute("UPDATE audit_events SET actor = 'tg:666' WHERE seq = 1")
    con.commit()
    con.close()
    assert _cli(["admin", "create-operation", "Furcy"], live, monkeypatch, capsys)[0] == 0

    status, report, err = _cli(["restore", str(out)], live, monkeypatch, capsys)

    assert status == 1
    assert report["ok"] is False
    assert "nothing was restored" in err
    _, ops, _ = _cli(["admin", "operations"], live, monkeypatch, capsys)
    assert [o["operation"] for o in ops] == ["Kenscoff", "Furcy"]  # type: ignore[attr-defined]
    assert list(tmp_path.glob("live.before-restore-*")) == []


def test_a_newer_darajas_backup_is_refused_with_the_upgrade_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    live = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    _migrated(live)
    out = tmp_path / "backup.db"
    assert _cli(["backup", "--out", str(out)], live, monkeypatch, capsys)[0] == 0
    con = sqlite3.connect(out)
    con.execute("UPDATE alembic_version SET version_num = '0999'")
    con.commit()
    con.close()

    status, _, err = _cli(["restore", str(out)], live, monkeypatch, capsys)

    assert status == 2
    assert "written by a newer Daraja" in err
    assert "db upgrade" not in err


def test_backup_refuses_to_overwrite_and_names_a_missing_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    live = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    status, _, err = _cli(["backup"], live, monkeypatch, capsys)
    assert status == 2
    assert f"no database at {tmp_path}/live.db" in err
    assert not (tmp_path / "live.db").exists()  # asking did not create one

    _migrated(live)
    status, taken, _ = _cli(["backup"], live, monkeypatch, capsys)  # default place
    assert status == 0
    default = Path(str(taken["backup"]))
    assert default.parent == tmp_path / "backups"
    assert stat.S_IMODE(default.parent.stat().st_mode) == 0o700
    status, _, err = _cli(["backup", "--out", str(default)], live, monkeypatch, capsys)
    assert status == 2
    assert "exists already" in err


def _operations(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    status, ops, err = _cli(["admin", "operations"], url, monkeypatch, capsys)
    assert status == 0, err
    return [o["operation"] for o in ops]  # type: ignore[attr-defined]


def test_backup_and_restore_show_their_progress_and_ctrl_c_mid_restore_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bot.cli.backup as cli_backup
    from storage import backup

    monkeypatch.setattr(backup, "STEP_PAGES", 8)  # a small database still takes many steps
    live = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    _migrated(live)
    assert _cli(["admin", "create-operation", "Kenscoff"], live, monkeypatch, capsys)[0] == 0
    shelf = tmp_path / "shelf"
    shelf.mkdir(mode=0o700)
    status, taken, err = _cli(["backup", "--out", str(shelf)], live, monkeypatch, capsys)
    assert status == 0, err
    assert Path(str(taken["backup"])).parent == shelf  # a directory: the file goes in it
    assert "copying: 50% (" in err
    assert "warning" not in err
    assert _cli(["admin", "create-operation", "Furcy"], live, monkeypatch, capsys)[0] == 0

    def interrupted(line: str) -> None:
        if line.startswith("writing: "):
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_backup, "_progress", interrupted)
    status, report, err = _cli(["restore", str(taken["backup"])], live, monkeypatch, capsys)

    assert status == 130
    assert report["ok"] is False
    assert "interrupted: nothing was restored" in err
    assert _operations(live, monkeypatch, capsys) == ["Kenscoff", "Furcy"]
    assert not list(tmp_path.glob(".live.db.restore-*"))  # the working copy is gone


def test_backup_warns_when_others_can_open_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    live = f"sqlite+aiosqlite:///{tmp_path}/db/live.db"
    _migrated(live)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)

    status, taken, err = _cli(["backup", "--out", str(shared / "b.db")], live, monkeypatch, capsys)

    assert status == 0
    assert "shared is open to other users (mode 755)" in err
    assert f"chmod 700 {shared}" in err
    assert stat.S_IMODE(Path(str(taken["backup"])).stat().st_mode) == 0o600


def _foreign_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("truncated", "damaged or incomplete"),
        ("random", "is not a Daraja backup"),
        ("foreign", "is a SQLite database but not a Daraja one"),
        ("directory", "is a directory"),
    ],
)
def test_restore_of_a_damaged_or_foreign_file_says_so_and_keeps_the_database(
    kind: str,
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    live = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    _migrated(live)
    assert _cli(["admin", "create-operation", "Kenscoff"], live, monkeypatch, capsys)[0] == 0
    good = tmp_path / "good.db"
    assert _cli(["backup", "--out", str(good)], live, monkeypatch, capsys)[0] == 0
    bad = tmp_path / "bad.db"
    if kind == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "random":
        bad.write_bytes(os.urandom(4096))
    elif kind == "foreign":
        _foreign_sqlite(bad)
    else:
        bad.mkdir()

    status, report, err = _cli(["restore", str(bad)], live, monkeypatch, capsys)

    assert status == 2
    assert report["ok"] is False
    assert said in str(report["error"])
    assert "configuration error" not in err
    assert _operations(live, monkeypatch, capsys) == ["Kenscoff"]
    assert list(tmp_path.glob("live.before-restore-*")) == []


@pytest.mark.postgres
def test_restore_of_a_foreign_or_truncated_dump_is_refused_on_postgresql(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import subprocess

    from storage.backup import pg_env, pg_tool
    from tests.support.postgres import fresh_database_url

    live = fresh_database_url(request, migrated=True)
    assert _cli(["admin", "create-operation", "Kenscoff"], live, monkeypatch, capsys)[0] == 0
    foreign_url = fresh_database_url(request)

    async def foreign_table() -> None:
        from sqlalchemy import text

        db = Database(foreign_url)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE notes (body TEXT)"))
        finally:
            await db.dispose()

    asyncio.run(foreign_table())
    foreign = tmp_path / "foreign.dump"
    subprocess.run(
        [pg_tool("pg_dump"), "--format=custom", f"--file={foreign}"],
        env=pg_env(foreign_url),
        check=True,
    )
    good = tmp_path / "good.dump"
    assert _cli(["backup", "--out", str(good)], live, monkeypatch, capsys)[0] == 0
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])

    async def stamp(revision: str) -> None:
        from sqlalchemy import text

        db = Database(live)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text(f"UPDATE alembic_version SET version_num = '{revision}'"))
        finally:
            await db.dispose()

    asyncio.run(stamp("0999"))  # as a newer Daraja would leave it
    newer = tmp_path / "newer.dump"
    subprocess.run(
        [pg_tool("pg_dump"), "--format=custom", f"--file={newer}"], env=pg_env(live), check=True
    )
    asyncio.run(stamp(head_revision()))

    for bad, said in (
        (foreign, "not of a Daraja database"),
        (truncated, "damaged or incomplete"),
        (newer, "was written by a newer Daraja"),
    ):
        status, report, err = _cli(["restore", str(bad)], live, monkeypatch, capsys)
        assert status == 2, err
        assert said in str(report["error"])
    assert _operations(live, monkeypatch, capsys) == ["Kenscoff"]


def test_restoring_with_another_audit_key_names_the_key_and_restores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DARAJA_AUDIT_HMAC_KEY", "the-key-of-the-field-hq-laptop-0001")
    live = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    _migrated(live)
    assert _cli(["admin", "create-operation", "Kenscoff"], live, monkeypatch, capsys)[0] == 0
    out = tmp_path / "backup.db"
    assert _cli(["backup", "--out", str(out)], live, monkeypatch, capsys)[0] == 0
    spare = f"sqlite+aiosqlite:///{tmp_path}/spare/daraja.db"
    monkeypatch.setenv("DARAJA_AUDIT_HMAC_KEY", "a-spare-laptop-with-another-key-0002")

    status, report, err = _cli(["restore", str(out)], spare, monkeypatch, capsys)

    assert status == 1
    assert report["ok"] is False
    assert "DARAJA_AUDIT_HMAC_KEY is not the one the backup was written with" in err
    assert not (tmp_path / "spare" / "daraja.db").exists() or _revision_of(tmp_path) is None


def _revision_of(tmp_path: Path) -> str | None:
    con = sqlite3.connect(tmp_path / "spare" / "daraja.db")
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        con.close()
    return str(row[0]) if row else None


def test_restore_waits_for_another_writer_then_refuses_and_keeps_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from storage import backup

    monkeypatch.setattr(backup, "LOCK_WAIT_S", 1)
    live = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    _migrated(live)
    assert _cli(["admin", "create-operation", "Kenscoff"], live, monkeypatch, capsys)[0] == 0
    out = tmp_path / "backup.db"
    assert _cli(["backup", "--out", str(out)], live, monkeypatch, capsys)[0] == 0
    assert _cli(["admin", "create-operation", "Furcy"], live, monkeypatch, capsys)[0] == 0
    writer = sqlite3.connect(tmp_path / "live.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a command beside the stopped bot, mid-write
    try:
        status, report, err = _cli(["restore", str(out)], live, monkeypatch, capsys)
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert status == 2
    assert "another process is writing to" in err
    assert "nothing was restored" in str(report["error"])
    assert _operations(live, monkeypatch, capsys) == ["Kenscoff", "Furcy"]


@pytest.mark.parametrize("step", ["copying", "writing"])
def test_a_full_disk_is_one_line_and_leaves_no_partial_file_nor_a_changed_database(
    step: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from storage import backup

    live = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    _migrated(live)
    assert _cli(["admin", "create-operation", "Kenscoff"], live, monkeypatch, capsys)[0] == 0
    good = tmp_path / "good.db"
    assert _cli(["backup", "--out", str(good)], live, monkeypatch, capsys)[0] == 0
    assert _cli(["admin", "create-operation", "Furcy"], live, monkeypatch, capsys)[0] == 0
    real_copy = backup._copy

    def full_disk(
        src: sqlite3.Connection, dst: sqlite3.Connection, progress: object, what: str
    ) -> None:
        if what == step:
            raise sqlite3.OperationalError("database or disk is full")
        real_copy(src, dst, progress, what)  # type: ignore[arg-type]

    monkeypatch.setattr(backup, "_copy", full_disk)
    out = tmp_path / "shelf" / "new.db"
    out.parent.mkdir(mode=0o700)
    argv = ["backup", "--out", str(out)] if step == "copying" else ["restore", str(good)]

    status, report, err = _cli(argv, live, monkeypatch, capsys)

    assert status == 2
    assert "database or disk is full" in str(report["error"])
    if step == "copying":
        assert "no backup was written" in err
        assert list(out.parent.iterdir()) == []  # not even SQLite's journal of the copy
    else:
        assert "the database is as it was" in err
    assert _operations(live, monkeypatch, capsys) == ["Kenscoff", "Furcy"]
