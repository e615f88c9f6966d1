"""Model installs and removals are audited: auditors see every change of the translation models."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from bot.engines.bundled import BUNDLED_DIR


def test_install_and_remove_are_recorded_in_the_audit_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "audit.db"
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    package = BUNDLED_DIR / "fixture_ht_en.argosmodel"
    assert main(["models", "install", str(package)]) == 0, capsys.readouterr().err
    assert main(["models", "remove", "fixture_ht_en"]) == 0, capsys.readouterr().err
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT event_type, actor, payload FROM audit_events WHERE component = 'models' "
            "ORDER BY seq"
        ).fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == ["models.installed", "models.removed"]
    assert '"ht-en"' in rows[0][2]
    assert '"sha256"' in rows[0][2]
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0, capsys.readouterr().out
