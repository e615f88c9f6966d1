"""Models installed or removed while the bot runs are picked up, logged and audited."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from bot.app import build_services
from bot.cli import main
from bot.engines.bundled import BUNDLED_DIR
from bot.engines.watch import ModelWatcher
from bot.settings import load_settings
from translation.store import ModelStore
from translation.types import Flag


def _models_events(db: Path) -> list[dict[str, object]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT payload FROM audit_events WHERE event_type = 'models.reloaded' ORDER BY seq"
        ).fetchall()
    finally:
        con.close()
    return [json.loads(r[0]) for r in rows]


async def test_a_bot_started_without_models_uses_one_installed_later(tmp_path: Path) -> None:
    db_path = tmp_path / "daraja.db"
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{db_path}", models_dir=tmp_path / "models"
    )
    services = build_services(settings)
    await services.db.upgrade()
    watcher = ModelWatcher(services, interval=0)
    try:
        before = await services.relay.translator.translate_many("Bonjou", ["en"], source="ht")
        assert Flag.NO_MODEL in before[0].flags
        assert await watcher.check() is False  # nothing changed yet

        ModelStore(settings.models_dir).install_file(BUNDLED_DIR / "fixture_ht_en.argosmodel")
        assert await watcher.check() is True

        after = await services.relay.translator.translate_many("Bonjou", ["en"], source="ht")
        assert Flag.NO_MODEL not in after[0].flags
        assert after[0].models == ("fixture_ht_en",)
        assert services.status is not None
        assert services.status.translator is services.relay.translator

        ModelStore(settings.models_dir).remove("fixture_ht_en")
        assert await watcher.check() is True
        gone = await services.relay.translator.translate_many("Bonjou", ["en"], source="ht")
        assert Flag.NO_MODEL in gone[0].flags
    finally:
        engine = getattr(services.relay.translator, "engine", None)
        if engine is not None:
            await engine.close()
        await services.db.dispose()
    events = _models_events(db_path)
    assert [(e["added"], e["removed"]) for e in events] == [
        (["fixture_ht_en"], []),
        ([], ["fixture_ht_en"]),
    ]


def _renamed(archive: Path, name: str, out: Path) -> Path:
    """The same model packaged under another package id (a second package for its pair)."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out / f"{name}.argosmodel", "w") as dst:
        top = src.namelist()[0].split("/", 1)[0]
        for info in src.infolist():
            dst.writestr(name + info.filename[len(top) :], src.read(info))
    return out / f"{name}.argosmodel"


def test_install_warns_when_two_packages_serve_one_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/daraja.db")
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    assert main(["models", "install", str(BUNDLED_DIR / "fixture_ht_en.argosmodel")]) == 0
    assert "warning" not in capsys.readouterr().err
    second = _renamed(BUNDLED_DIR / "fixture_ht_en.argosmodel", "another_ht_en", tmp_path)
    assert main(["models", "install", str(second)]) == 0
    err = capsys.readouterr().err
    assert "warning: ht→en is served by another_ht_en, fixture_ht_en" in err
    assert "another_ht_en is used (first by package id" in err

    assert main(["models", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["overlaps"] == [
        {
            "pair": "ht-en",
            "used": "another_ht_en",
            "not_used": ["fixture_ht_en"],
            "why": "first by package id among packages of the same kind",
        }
    ]
    assert main(["models", "list"]) == 0
    assert "ht→en: uses another_ht_en" in capsys.readouterr().out
