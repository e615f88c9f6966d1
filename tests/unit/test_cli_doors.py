"""Small doors of the command line: each wrong input gets one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/daraja.db")
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


def test_an_unknown_time_zone_is_refused_and_not_stored(
    deployment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["admin", "create-operation", "Olympus", "--timezone", "Mars/Olympus"]) == 1
    err = capsys.readouterr().err
    assert "'Mars/Olympus' is not a known time zone" in err
    assert "America/Port-au-Prince" in err
    assert main(["admin", "--json", "operations"]) == 0
    assert "Olympus" not in capsys.readouterr().out
