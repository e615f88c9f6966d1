"""The CLI's doors: a database it cannot use gives one line and exit 2, never a traceback.

Each command runs in-process (`bot.cli.main`), against real SQLite files and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bot.cli import main
from bot.cli.doors import explain
from storage.db import Database, head_revision

TOKEN = "123456789:" + "A" * 35
# Every command that opens the deployment's database.
DB_COMMANDS = [
    ["db", "upgrade"],
    ["db", "current"],
    ["admin", "operations"],
    ["admin", "create-operation", "Furcy"],
    ["admin", "people"],
    ["admin", "codes"],
    ["admin", "revoke", "person", "5"],
    ["admin", "set-role", "5", "officer"],
    ["audit", "verify"],
    ["audit", "head"],
    ["audit", "export", "--format", "jsonl"],
    ["run"],
]


def _cli(
    argv: list[str], url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setenv("DARAJA_DATABASE_URL", url)
    monkeypatch.setenv("DARAJA_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("DARAJA_TELEGRAM_API_URL", "http://127.0.0.1:9")  # never reached
    capsys.readouterr()
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # `run` logs its start (models found or not) before it opens the database: only the
    # command's own lines count.
    return status, "".join(line for line in err.splitlines(True) if " WARNING " not in line)


@pytest.fixture
def postgres_database_url(request: pytest.FixtureRequest) -> str:
    from tests.support.postgres import fresh_database_url

    return fresh_database_url(request)


def _newer(url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Migrate, then stamp a revision this code has never heard of (a newer Daraja's)."""
    assert _cli(["db", "upgrade"], url, monkeypatch, capsys)[0] == 0

    async def stamp() -> None:
        db = Database(url)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
        finally:
            await db.dispose()

    asyncio.run(stamp())


@pytest.mark.parametrize("argv", DB_COMMANDS, ids=lambda a: " ".join(a))
def test_a_newer_database_gets_one_clear_line_from_every_command(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/daraja.db"
    _newer(url, monkeypatch, capsys)

    status, err = _cli(argv, url, monkeypatch, capsys)

    assert status == 2
    assert err.strip().splitlines() == [
        "daraja: this database was written by a newer Daraja (revision 0999; this code knows "
        f"up to {head_revision()}); upgrade the code or restore a backup"
    ]
    assert "db upgrade" not in err
    # Nothing was changed: the stamp is still the newer one.
    con = sqlite3.connect(tmp_path / "daraja.db")
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("0999",)]
    con.close()


@pytest.mark.postgres
def test_a_newer_postgresql_database_is_refused_the_same_way(
    postgres_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _newer(postgres_database_url, monkeypatch, capsys)
    for argv in (["db", "upgrade"], ["admin", "operations"], ["audit", "verify"]):
        status, err = _cli(argv, postgres_database_url, monkeypatch, capsys)
        assert status == 2
        assert "written by a newer Daraja" in err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", DB_COMMANDS, ids=lambda a: " ".join(a))
def test_an_uncreatable_database_path_gets_one_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _cli(
        argv, "sqlite+aiosqlite:////proc/no-such-dir/data/daraja.db", monkeypatch, capsys
    )

    assert status == 2
    assert err.strip().splitlines() == [
        "daraja: cannot create the database's directory /proc/no-such-dir/data: "
        "No such file or directory"
    ]


def test_a_directory_given_as_the_database_gets_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _cli(["db", "upgrade"], f"sqlite+aiosqlite:///{tmp_path}", monkeypatch, capsys)

    assert status == 2
    assert err.strip() == f"daraja: the database path {tmp_path} is a directory, not a file"


def test_a_file_that_is_not_a_database_gets_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "daraja.db").write_bytes(b"not a database at all, just some bytes" * 100)

    status, err = _cli(
        ["admin", "operations"], f"sqlite+aiosqlite:///{tmp_path}/daraja.db", monkeypatch, capsys
    )

    assert status == 2
    assert err.strip() == "daraja: the database file is not a SQLite database"


@pytest.mark.parametrize("argv", DB_COMMANDS, ids=lambda a: " ".join(a))
def test_postgresql_down_gets_one_line_without_the_password(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    url = "postgresql+asyncpg://daraja:s3cret-pw@127.0.0.1:9/daraja"

    status, err = _cli(argv, url, monkeypatch, capsys)

    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "cannot connect to the database server" in lines[0]
    assert "s3cret-pw" not in err


def test_a_read_only_database_file_is_named_as_such(tmp_path: Path) -> None:
    # The real error SQLite gives when the file cannot be written (root ignores file modes,
    # so the file is opened read-only instead of made read-only).
    path = tmp_path / "daraja.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.close()
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(OperationalError) as refused, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()

    assert explain(refused.value) == (
        "the database file is read-only: give the bot's user write access"
    )


def test_a_bug_keeps_its_traceback() -> None:
    assert explain(ValueError("a bug")) is None
    assert explain(KeyError("x")) is None


def test_health_names_a_newer_database_without_the_upgrade_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/daraja.db"
    _newer(url, monkeypatch, capsys)
    monkeypatch.setenv("DARAJA_DATABASE_URL", url)
    capsys.readouterr()

    status = main(["health"])

    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL database: this database was written by a newer Daraja" in out
    assert "db upgrade" not in out


def test_empty_listings_say_what_fills_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/daraja.db")
    said: dict[str, str] = {}
    for listing in ("operations", "people", "codes", "chats"):
        capsys.readouterr()
        assert main(["admin", listing]) == 0
        captured = capsys.readouterr()
        assert captured.out == ""  # a script reading stdout sees no rows
        said[listing] = captured.err
    assert "daraja admin create-operation NAME" in said["operations"]
    assert "daraja admin code person" in said["people"]
    assert "/enroll CODE" in said["chats"]
    assert "no enrollment codes" in said["codes"]


def test_an_open_database_directory_is_warned_about_once_per_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from storage.db import create_engine as create_async

    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(0o755)
    engine = create_async(f"sqlite+aiosqlite:///{home}/daraja.db")
    asyncio.run(engine.dispose())

    warnings = [r for r in caplog.records if "open to other users" in r.getMessage()]
    assert len(warnings) == 1


def test_revoking_twice_says_nothing_changed_and_audits_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/daraja.db")
    assert main(["admin", "create-operation", "Kenscoff"]) == 0
    assert (
        main(["admin", "add-unit", "Kenscoff", "KE-3", "--side", "MSS", "--language", "en"]) == 0
    )
    assert main(["admin", "code", "chat", "Kenscoff", "--unit", "KE-3", "--json"]) == 0
    capsys.readouterr()
    assert main(["admin", "codes", "--json"]) == 0
    code_id = str(json.loads(capsys.readouterr().out)[0]["id"])

    assert main(["admin", "revoke", "code", code_id]) == 0
    first = capsys.readouterr().out
    assert main(["admin", "revoke", "code", code_id]) == 0
    second = capsys.readouterr().out
    assert main(["admin", "revoke", "code", code_id, "--json"]) == 0
    third = json.loads(capsys.readouterr().out)

    assert first.startswith("revoked: code\n")
    assert second.startswith("revoked: code (already revoked; nothing changed)")
    assert (third["revoked"], third["already"], third["state"]) == ("code", True, "revoked")
    assert main(["audit", "export", "--format", "jsonl"]) == 0
    events = [json.loads(line)["event_type"] for line in capsys.readouterr().out.splitlines()]
    assert events.count("admin.code_revoked") == 1


def test_an_empty_timezone_is_refused_not_replaced_by_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/daraja.db")
    capsys.readouterr()
    assert main(["admin", "create-operation", "Kenscoff", "--timezone", ""]) == 1
    assert "--timezone is empty" in capsys.readouterr().err
    assert main(["admin", "operations"]) == 0
    assert "Kenscoff" not in capsys.readouterr().out


def test_a_second_bot_on_the_same_database_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from storage.backup import receiver_lock

    url = f"sqlite+aiosqlite:///{tmp_path}/daraja.db"
    first = receiver_lock(tmp_path / "daraja.db")  # the bot already running
    assert first is not None
    try:
        status, err = _cli(["run"], url, monkeypatch, capsys)
    finally:
        os.close(first)

    assert status == 2
    assert f"another Daraja is already running on {tmp_path}/daraja.db" in err


@pytest.mark.postgres
def test_a_second_bot_on_the_same_postgresql_database_is_refused_in_one_line(
    postgres_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first bot holds the database's receiver lock; a second `daraja run` (polling or
    webhook) stops at once, in one line, before reaching Telegram; once the first is gone
    the lock is free again."""
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    first = Database(postgres_database_url)

    async def hold() -> bool:
        await first.upgrade()
        return await first.hold_receiver_lock()

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(hold())
        status, err = _cli(["run"], postgres_database_url, monkeypatch, capsys)
        loop.run_until_complete(first.dispose())
    finally:
        loop.close()

    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith("daraja:")]
    assert lines == [
        "daraja: configuration error: another Daraja is already receiving updates for this "
        "PostgreSQL database: stop it first (a host that died frees it within a minute); only "
        "one process may receive updates (extra delivery workers run with DARAJA_MODE=worker)"
    ]

    async def again() -> bool:
        second = Database(postgres_database_url)
        try:
            return await second.hold_receiver_lock()
        finally:
            await second.dispose()

    assert asyncio.run(again())


def test_a_port_out_of_range_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _cli(
        ["console", "--port", "99999"], f"sqlite+aiosqlite:///{tmp_path}/d.db", monkeypatch, capsys
    )
    assert status == 2
    assert "a port must be 0-65535" in err
    assert explain(OverflowError("not a port at all")) is None  # other overflows are bugs


@pytest.mark.parametrize("where", ["/proc/no-such-dir/models", "FILE/models"])
def test_an_uncreatable_models_directory_gets_one_line_naming_the_setting(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "FILE").write_text("not a directory")
    models = where.replace("FILE", str(tmp_path / "FILE"))
    monkeypatch.setenv("DARAJA_MODELS_DIR", models)
    fixture = (
        Path(__file__).resolve().parents[1] / "fixtures" / "models" / "fixture_en_fr.argosmodel"
    )

    status = main(["models", "install", str(fixture)])

    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1
    assert f"cannot create the models directory {models}" in err[0]
    assert "DARAJA_MODELS_DIR" in err[0]
