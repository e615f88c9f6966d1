"""Which language a voice note is transcribed in: the chat's, and only the chat's."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.support.voice import silence_note
from translation.speech import WhisperTranscriber
from translation.voice_store import MANIFEST, VoiceModel, VoiceStore


class FakeWhisper:
    """Answers like faster-whisper's WhisperModel; Whisper's own guess is German."""

    def __init__(self) -> None:
        self.forced: list[str | None] = []

    def detect_language(self, audio: Any) -> tuple[str, float, list[tuple[str, float]]]:
        probs = [("de", 0.6), ("en", 0.25), ("ht", 0.1), ("fr", 0.05)]
        return "de", 0.6, probs

    def transcribe(self, audio: Any, **options: Any) -> tuple[Any, Any]:
        self.forced.append(options["language"])
        segment = SimpleNamespace(
            text=" Konvwa a rive.", start=0.0, end=2.0, avg_logprob=-0.2,
            compression_ratio=1.1, no_speech_prob=0.01,
        )  # fmt: skip
        return iter([segment]), SimpleNamespace(language_probability=1.0)


class Transcriber(WhisperTranscriber):
    def __init__(self, store: VoiceStore, fake: FakeWhisper) -> None:
        super().__init__(store)
        self.fake = fake

    def _model(self, entry: VoiceModel) -> Any:
        return self.fake


def _store(root: Path) -> VoiceStore:
    folder = root / "small"
    folder.mkdir(parents=True)
    manifest = {
        "name": "small",
        "languages": ["ht", "fr", "en", "sw"],
        "multilingual": True,
        "files": {},
        "size": 1,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return VoiceStore(root)


def test_mixed_group_detects_among_its_own_languages_only(tmp_path: Path) -> None:
    fake = FakeWhisper()
    result = Transcriber(_store(tmp_path), fake).transcribe(
        silence_note(1), languages=["ht", "en"]
    )
    # Whisper's top guess (German) is nobody's language here: English wins among ht and en.
    assert fake.forced == ["en"]
    assert result.language == "en"
    assert result.language_probability == 0.25
    assert result.status == "ok"


def test_one_language_group_forces_it_without_detection(tmp_path: Path) -> None:
    fake = FakeWhisper()
    result = Transcriber(_store(tmp_path), fake).transcribe(silence_note(1), languages=["ht"])
    assert fake.forced == ["ht"]
    assert result.language == "ht"
    assert result.text == "Konvwa a rive."
