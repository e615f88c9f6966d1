"""`daraja bench translate --quick --json` runs end to end and prints valid JSON (no timings)."""

from __future__ import annotations

import json

import pytest

from bot.cli import main


def test_bench_translate_quick_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "bench",
            "translate",
            "--quick",
            "--json",
            "--messages",
            "16",
            "--repeats",
            "1",
            "--threads",
            "1",
        ]
    )
    assert status == 0
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    for key in (
        "raw_msgs_per_s",
        "engine_msgs_per_s",
        "sequential_msgs_per_s",
        "engine_vs_raw",
        "engine_vs_sequential",
        "import_translation_ms",
        "rss_mb",
    ):
        assert result[key] > 0, key
    assert result["messages"] == 16
    # Every batch size the raw translator was timed at is compared, and batch 1 too.
    by_batch = result["engine_vs_raw_by_batch"]
    assert "1" in by_batch
    assert all(ratio > 0 for ratio in by_batch.values())
    assert "(b) engine" in out.err  # progress goes to stderr


def test_bench_translate_says_which_peers_are_absent(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "bench",
            "translate",
            "--quick",
            "--json",
            "--messages",
            "8",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--libretranslate",
            "/nonexistent/bin/libretranslate",
            "--argos-python",
            "/nonexistent/bin/python",
        ]
    )
    assert status == 0
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    peers = result["peers"]["peers"]
    assert peers["libretranslate"].startswith("absent")
    assert peers["argostranslate"].startswith("absent")
    assert "libretranslate_msgs_per_s" not in result["peers"]
    assert "libretranslate: absent" in out.out
