"""`daraja health`: the verdict a container HEALTHCHECK acts on (exit status and --json)."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from storage.db import Database


def health(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    status = main(["health", "--json"])
    return status, json.loads(capsys.readouterr().out)


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path) -> Path:
    """A migrated SQLite database and a models directory, as after `daraja db upgrade`."""
    db_path = tmp_path / "daraja.db"
    shutil.copyfile(sqlite_template, db_path)
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{db_path}")
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


def test_healthy_deployment_exits_0(deployment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, result = health(capsys)
    assert status == 0
    assert result["ok"] is True
    assert list(by_name(result)) == ["settings", "database", "models", "inbox"]
    assert by_name(result)["inbox"]["counts"] == {"failed": 0, "waiting": 0}


def test_plain_output_names_each_check(
    deployment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health"]) == 0
    out = capsys.readouterr().out
    assert "ok   database: reachable, at head revision" in out


def test_bad_setting_is_unhealthy_and_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DARAJA_DATABASE_URL", "mysql://nope")
    status, result = health(capsys)
    assert status == 1
    assert result["checks"] == [
        {"name": "settings", "ok": False, "detail": result["checks"][0]["detail"]}
    ]
    assert "DARAJA_DATABASE_URL" in result["checks"][0]["detail"]


def test_missing_database_file_is_reported_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/none.db")
    status, result = health(capsys)
    assert status == 1
    assert "daraja db upgrade" in by_name(result)["database"]["detail"]
    assert not (tmp_path / "none.db").exists()


def test_database_behind_the_code_is_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    sqlite3.connect(tmp_path / "old.db").close()  # exists, never migrated
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/old.db")
    status, result = health(capsys)
    assert status == 1
    detail = by_name(result)["database"]["detail"]
    assert detail.startswith("at revision (empty), code expects")


def test_missing_models_dir_is_unhealthy(
    deployment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(deployment / "nowhere"))
    status, result = health(capsys)
    assert status == 1
    assert by_name(result)["models"]["ok"] is False


class _Healthz(BaseHTTPRequestHandler):
    answer: tuple[int, dict[str, Any]] = (200, {"status": "ok"})

    def do_GET(self) -> None:
        status, body = self.answer if self.path == "/healthz" else (404, {})
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bot_healthz(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Healthz]]:
    """A stand-in for the running bot's /healthz on a free loopback port."""
    handler = type("Handler", (_Healthz,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DARAJA_METRICS_PORT", str(server.server_address[1]))
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_running_bot_is_asked_when_metrics_port_is_set(
    deployment: Path, bot_healthz: type[_Healthz], capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = health(capsys)
    assert status == 0
    assert by_name(result)["bot"] == {"name": "bot", "ok": True, "detail": "/healthz: ok"}
    bot_healthz.answer = (503, {"status": "database unreadable (OperationalError)"})
    status, result = health(capsys)
    assert status == 1
    assert by_name(result)["bot"]["detail"] == (
        "/healthz answered 503 database unreadable (OperationalError)"
    )


def test_bot_not_running_is_unhealthy(
    deployment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DARAJA_METRICS_PORT", str(port))
    status, result = health(capsys)
    assert status == 1
    assert "is `daraja run` up?" in by_name(result)["bot"]["detail"]


def test_a_stuck_bot_is_told_apart_from_one_that_is_down(
    deployment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    import bot.cli.health as health_cli

    monkeypatch.setattr(health_cli, "HTTP_TIMEOUT_S", 0.2)
    with socket.socket() as s:  # listens (the kernel accepts) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        monkeypatch.setenv("DARAJA_METRICS_PORT", str(s.getsockname()[1]))
        status, result = health(capsys)
    assert status == 1
    detail = by_name(result)["bot"]["detail"]
    assert "the bot is up but stuck or overloaded" in detail
    assert "is `daraja run` up?" not in detail


def test_failed_updates_are_counted_for_the_operator_without_failing_the_check(
    deployment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from storage.models import InboxUpdate

    async def store() -> None:
        db = Database(f"sqlite+aiosqlite:///{deployment / 'daraja.db'}")
        async with db.transaction() as s:
            s.add_all(
                [
                    InboxUpdate(update_id=1, payload="{}", state="failed",
                                error="unparseable: TypeError: missing 'type'"),
                    InboxUpdate(update_id=2, payload="{}", state="failed",
                                error="unroutable: ValueError: chat id is a dict"),
                    InboxUpdate(update_id=3, payload="{}", state="failed",
                                error="unparseable: KeyError: 'date'"),
                    InboxUpdate(update_id=4, payload="{}", state="new"),
                    InboxUpdate(update_id=5, payload="{}", state="done"),
                ]
            )  # fmt: skip
        await db.dispose()

    asyncio.run(store())
    status, result = health(capsys)
    assert status == 0
    inbox = by_name(result)["inbox"]
    assert inbox["ok"] is True
    assert inbox["counts"] == {
        "failed": 3, "waiting": 1, "failed_unparseable": 2, "failed_unroutable": 1,
    }  # fmt: skip
    assert inbox["detail"] == "3 failed update(s) kept (unparseable 2, unroutable 1), 1 waiting"


def test_an_unset_audit_key_is_a_loud_warning_not_a_failure(
    deployment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = health(capsys)
    assert status == 0
    assert len(result["warnings"]) == 1
    assert result["warnings"][0].startswith("DARAJA_AUDIT_HMAC_KEY is not set")
    assert main(["health"]) == 0
    assert "WARN DARAJA_AUDIT_HMAC_KEY is not set" in capsys.readouterr().out
    monkeypatch.setenv("DARAJA_AUDIT_HMAC_KEY", "a-long-random-audit-key")
    assert health(capsys)[1]["warnings"] == []


def test_a_running_bot_vouches_for_the_database_without_it_being_opened(
    deployment: Path,
    bot_healthz: type[_Healthz],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Under load the bot's own reading of the database is the cheap truth: health must not
    # open the file again (here it would fail: the path does not exist).
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{deployment}/elsewhere.db")
    status, result = health(capsys)
    assert status == 0
    assert by_name(result)["database"]["detail"] == "read by the running bot (its /healthz is ok)"
    assert not (deployment / "elsewhere.db").exists()


def test_a_bot_that_answers_503_still_gets_the_database_checked(
    deployment: Path, bot_healthz: type[_Healthz], capsys: pytest.CaptureFixture[str]
) -> None:
    bot_healthz.answer = (503, {"status": "starting"})
    status, result = health(capsys)
    assert status == 1
    assert by_name(result)["database"]["detail"].startswith("reachable, at head revision")


def test_a_check_that_hangs_gives_a_verdict_instead_of_a_hang() -> None:
    import time

    from bot.cli.health import Check, bounded

    release = threading.Event()

    def hung() -> Check:
        release.wait(30)
        return Check("database", True, "too late")

    try:
        verdict = bounded("database", hung, time.monotonic() + 0.2)
    finally:
        release.set()
    assert verdict.ok is False
    assert "no answer within" in verdict.detail


def test_a_check_that_raises_gives_a_verdict_not_a_traceback() -> None:
    import time

    from bot.cli.health import Check, bounded

    def broken() -> Check:
        raise RuntimeError("Event loop is closed")

    verdict = bounded("database", broken, time.monotonic() + 5)
    assert verdict == Check("database", False, "check failed (RuntimeError)")


def test_database_from_a_newer_daraja_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    con = sqlite3.connect(tmp_path / "new.db")
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    con.execute("INSERT INTO alembic_version VALUES ('9999')")
    con.commit()
    con.close()
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/new.db")
    status, result = health(capsys)
    assert status == 1
    assert "written by a newer Daraja" in by_name(result)["database"]["detail"]


def test_the_head_revision_read_from_the_files_is_alembics() -> None:
    from bot.cli.health import head_revision
    from storage.db import head_revision as alembic_head

    assert head_revision() == alembic_head()
