"""Settings reach the engine; over-long token sequences split at word starts."""

from __future__ import annotations

import pytest

from bot.engines.factory import engine_config
from bot.settings import load_settings
from translation.ct2 import split_tokens


def test_translation_settings_map_onto_the_engine_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DARAJA_TRANSLATION_THREADS", "2")
    monkeypatch.setenv("DARAJA_TRANSLATION_INTER_THREADS", "3")
    monkeypatch.setenv("DARAJA_TRANSLATION_COMPUTE_TYPE", "float32")
    monkeypatch.setenv("DARAJA_TRANSLATION_BATCH_SIZE", "48")
    monkeypatch.setenv("DARAJA_TRANSLATION_BATCH_WAIT_MS", "7.5")
    monkeypatch.setenv("DARAJA_TRANSLATION_BEAM_SIZE", "4")
    monkeypatch.setenv("DARAJA_TRANSLATION_CACHE_SIZE", "10")
    cfg = engine_config(load_settings())
    assert (cfg.threads, cfg.inter_threads, cfg.compute_type) == (2, 3, "float32")
    assert (cfg.batch_size, cfg.batch_wait_ms, cfg.beam_size, cfg.cache_size) == (48, 7.5, 4, 10)


def test_split_tokens_bounds_every_chunk_and_prefers_word_starts() -> None:
    tokens = [
        "\u2581unit",
        "s",
        "\u2581move",
        "\u2581north",
        "\u2581now",
        "\u2581and",
        "\u2581hold",
    ]
    chunks = split_tokens(tokens, 3)
    assert all(len(c) <= 3 for c in chunks)
    assert [t for c in chunks for t in c] == tokens  # nothing lost
    assert all(c[0].startswith("\u2581") for c in chunks)


def test_split_tokens_without_word_starts_still_bounds() -> None:
    tokens = ["a"] * 10
    chunks = split_tokens(tokens, 4)
    assert [len(c) for c in chunks] == [4, 4, 2]
