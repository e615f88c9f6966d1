"""`daraja health` reads the database with the plain drivers, on every backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from storage.db import Database


async def test_migrated_database_is_healthy_on_every_backend(
    db: Database,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("DARAJA_DATABASE_URL", database_url)
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    assert main(["health", "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["database"]["detail"].startswith("reachable, at head revision")
    assert ":***@" not in checks["database"]["detail"]


async def test_unreachable_server_is_named_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "models").mkdir()
    url = f"postgresql+asyncpg://daraja:hunter2@127.0.0.1:{port}/daraja"
    monkeypatch.setenv("DARAJA_DATABASE_URL", url)
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    assert main(["health", "--json"]) == 1
    out = capsys.readouterr().out
    assert "hunter2" not in out
    detail = {c["name"]: c for c in json.loads(out)["checks"]}["database"]["detail"]
    shown = f"postgresql+asyncpg://daraja:<secret>@127.0.0.1:{port}/daraja: unreach"
    assert detail.startswith(shown)
