"""`daraja demo`, the README's main command: exit 0, exact translations, a verified log."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.support import processes

ROOT = Path(__file__).resolve().parents[2]


def test_demo_plays_the_operation_and_verifies_the_log(tmp_path: Path) -> None:
    # Its own process group: the bot the demo starts goes with it on a timeout or a failure.
    result = processes.run(
        [sys.executable, "-m", "bot.cli", "demo", "--json", "--keep", str(tmp_path / "keep")],
        timeout=600,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "HOME": str(tmp_path),
            # The suite's bytecode cache (tests/conftest.py), when it has one.
            **{k: v for k, v in os.environ.items() if k == "PYTHONPYCACHEPREFIX"},
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    transcript = json.loads(result.stdout)
    assert transcript["missing"] == []
    assert transcript["audit"]["ok"] is True
    groups = transcript["groups"]

    def bot_texts(code: str) -> str:
        return "\n".join(m["text"] for m in groups[code]["messages"] if m["bot"])

    # The Kreyòl officer's report as the other teams read it: direct (en), multilingual (sw)
    # and through English (fr).
    assert "Unit KE-3 arrived at Kenscoff." in bot_texts("KE-3")
    assert "Kikosi KE-3 kimefika Kenscoff." in bot_texts("KE-SW-1")
    assert "L'unité KE-3 est arrivée à Kenscoff." in bot_texts("PNH-CMD")
    # The FLASH order reaches the Swahili team in Swahili.
    assert "Subiri amri." in bot_texts("KE-SW-1")
    # The English casualty report in Kreyòl and French: numbers and coordinates untouched.
    assert "Inite KE-3 nan pozisyon 18.5392,-72.3364, 2 blese" in bot_texts("PNH-UDMO-2")
    assert "18.5392,-72.3364" in bot_texts("PNH-CMD")
    # Every unit acknowledged the FLASH, and /acks shows all four.
    assert transcript["acks"].count("✅") == 4
    assert "⏳" not in transcript["acks"]
    assert (tmp_path / "keep" / "daraja.db").exists()
