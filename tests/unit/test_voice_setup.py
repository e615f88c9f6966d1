"""How the voice extra shares the cores with translation, and what it verdicts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bot.engines.voice import build_transcriber, translation_threads
from bot.settings import load_settings
from translation.speech import verdict
from translation.voice_store import MANIFEST, VoiceStore


def _fake_model(root: Path, name: str = "tiny.en") -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text(
        json.dumps(
            {"name": name, "languages": ["en"], "multilingual": False, "files": {}, "size": 1}
        )
    )


def test_translation_leaves_the_voice_threads_free_once_a_voice_model_is_installed(
    tmp_path: Path,
) -> None:
    settings = load_settings(voice_models_dir=tmp_path / "voice", voice_threads=1)
    assert translation_threads(settings) == 0  # no voice model: all cores, as before
    assert build_transcriber(settings) is None
    _fake_model(tmp_path / "voice")
    assert translation_threads(settings) == max(1, (os.cpu_count() or 1) - 1)
    pinned = load_settings(
        voice_models_dir=tmp_path / "voice", voice_threads=1, translation_threads=3
    )
    assert translation_threads(pinned) == 3  # an explicit setting stands
    assert build_transcriber(settings) is not None


def test_largest_model_serves_a_language(tmp_path: Path) -> None:
    _fake_model(tmp_path, "tiny.en")
    big = tmp_path / "base"
    big.mkdir()
    (big / MANIFEST).write_text(
        json.dumps(
            {
                "name": "base",
                "languages": ["ht", "fr", "en", "sw"],
                "multilingual": True,
                "files": {},
                "size": 10,
            }
        )
    )
    store = VoiceStore(tmp_path)
    found = store.for_language("en")
    assert found is not None
    assert found.name == "base"
    assert store.for_language("de") is None


def test_doubtful_decodes_are_unusable_and_silence_is_no_speech() -> None:
    assert verdict(-0.3, 1.2, 0.05) == "ok"
    assert verdict(-1.4, 1.2, 0.1) == "unusable"  # low mean log-probability
    assert verdict(-0.9, 1.2, 0.1) == "unusable"  # base's garbled Kreyòl scored -0.90
    assert verdict(-0.9, 1.2, 0.1, min_logprob=-1.0) == "ok"  # Whisper's own default
    assert verdict(-0.3, 3.1, 0.1) == "unusable"  # a repetition loop compresses well
    assert verdict(-1.4, 1.2, 0.9) == "no_speech"
