"""The `daraja` command line as an operator meets it: fast help, clear errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def daraja(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """`daraja ARGS` run in-process (`bot.cli.main`), as the console script runs it."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse: usage errors and --help/--version
            status = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return Result(status, out, err)

    return run


def test_help_lists_commands_without_heavy_imports() -> None:
    code = (
        "import sys; from bot.cli import build_parser; build_parser(['--help']);"
        "heavy = {'ctranslate2', 'telegram', 'sqlalchemy', 'argostranslate', 'numpy', 'aiohttp'}"
        " & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"


def test_help_lists_the_commands(daraja: Callable[..., Result]) -> None:
    result = daraja("--help")
    assert result.returncode == 0
    for command in ("run", "db", "admin"):
        assert command in result.stdout


def test_version(daraja: Callable[..., Result]) -> None:
    result = daraja("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("daraja ")


def test_db_upgrade_needs_no_token_and_no_network(
    tmp_path: Path, daraja: Callable[..., Result]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    result = daraja("db", "upgrade", env={"DARAJA_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "head" in result.stdout
    current = daraja("db", "current", env={"DARAJA_DATABASE_URL": url})
    assert current.returncode == 0


def test_bad_setting_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, daraja: Callable[..., Result]
) -> None:
    result = daraja("db", "upgrade", env={"DARAJA_ADMIN_IDS": "1,two"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "daraja: configuration error: DARAJA_ADMIN_IDS: 'two' is not a Telegram user id "
        "(expected comma-separated numbers)"
    ]


def test_run_without_token_explains(tmp_path: Path, daraja: Callable[..., Result]) -> None:
    result = daraja("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "DARAJA_TELEGRAM_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_admin_cli_round_trip(tmp_path: Path, daraja: Callable[..., Result]) -> None:
    env = {"DARAJA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/a.db"}
    assert (
        daraja("admin", "create-operation", "Furcy", "--language", "ht", env=env).returncode == 0
    )
    added = daraja(
        "admin", "add-unit", "Furcy", "PNH-1", "--side", "PNH", "--language", "ht", env=env
    )
    assert added.returncode == 0, added.stderr
    code = daraja(
        "admin",
        "--json",
        "code",
        "person",
        "Furcy",
        "--unit",
        "PNH-1",
        "--role",
        "officer",
        env=env,
    )
    assert code.returncode == 0, code.stderr
    assert '"use": "/join DRJ-' in code.stdout
    bad = daraja(
        "admin", "code", "person", "Furcy", "--unit", "PNH-9", "--role", "officer", env=env
    )
    assert bad.returncode == 1
    assert "no unit 'PNH-9'" in bad.stderr
    # The audit log names the OS user who ran each command, and the database is private.
    import pwd
    import sqlite3
    import stat

    with sqlite3.connect(tmp_path / "a.db") as conn:
        actors = {row[0] for row in conn.execute("SELECT actor FROM audit_events")}
    assert actors == {f"os:{pwd.getpwuid(os.getuid()).pw_name}"}
    assert stat.S_IMODE((tmp_path / "a.db").stat().st_mode) == 0o600


@pytest.mark.parametrize("args", [["nonsense"], ["db"], ["admin", "code"]])
def test_usage_errors_exit_2(args: list[str], daraja: Callable[..., Result]) -> None:
    assert daraja(*args).returncode == 2
