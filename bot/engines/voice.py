"""Build the voice-note transcriber from Daraja's settings (DARAJA_VOICE_*)."""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings
    from translation.speech import WhisperTranscriber

log = logging.getLogger(__name__)


def voice_available() -> bool:
    """Whether the optional extra (daraja[voice]: faster-whisper) is installed."""
    return importlib.util.find_spec("faster_whisper") is not None


def build_transcriber(settings: Settings) -> WhisperTranscriber | None:
    """A transcriber over DARAJA_VOICE_MODELS_DIR; None without the extra or a model (voice
    notes are then relayed with a line saying no transcription is available)."""
    from translation.voice_store import VoiceStore

    store = VoiceStore(settings.voice_models_dir)
    if not store.models():
        return None
    if not voice_available():
        log.warning("voice models are installed but daraja[voice] is not: no transcription")
        return None
    from translation.speech import WhisperTranscriber

    return WhisperTranscriber(
        store,
        cpu_threads=settings.voice_threads,
        beam_size=settings.voice_beam_size,
        max_seconds=settings.voice_max_seconds,
        min_logprob=settings.voice_min_logprob,
    )


def translation_threads(settings: Settings) -> int:
    """CTranslate2's intra-op threads for translation: as set, or (0) every core but those
    transcription may use when a voice model is installed, so the two never oversubscribe."""
    if settings.translation_threads:
        return settings.translation_threads
    from translation.voice_store import VoiceStore

    if not VoiceStore(settings.voice_models_dir).models():
        return 0
    return max(1, (os.cpu_count() or 1) - settings.voice_threads)
