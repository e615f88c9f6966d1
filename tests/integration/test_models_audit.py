"""Model installs and removals are audited: auditors see every change of the translation models."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.bundled_models import BUNDLED_DIR

ROOT = Path(__file__).resolve().parents[2]


def _daraja(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DARAJA_")}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, **env, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_install_and_remove_are_recorded_in_the_audit_log(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    env = {
        "DARAJA_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "DARAJA_MODELS_DIR": str(tmp_path / "models"),
    }
    package = BUNDLED_DIR / "fixture_ht_en.argosmodel"
    installed = _daraja("models", "install", str(package), env=env)
    assert installed.returncode == 0, installed.stderr
    removed = _daraja("models", "remove", "fixture_ht_en", env=env)
    assert removed.returncode == 0, removed.stderr
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
    verify = _daraja("audit", "verify", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
