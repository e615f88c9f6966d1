"""Offline speech-to-text for voice notes: Whisper on CTranslate2 through faster-whisper.

Knows nothing of Telegram or the database. `Transcriber` is the interface (unit tests use a
fake); `WhisperTranscriber` decodes the audio (PyAV, bundled with its wheel), picks the
language among the chat's languages only, and transcribes with a small beam and a capped
temperature fallback. Every outcome is a `Transcript` with a `status`: a voice note that cannot
be transcribed never raises, so the caller can always tell the sender why.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from translation.voice_store import VoiceModel, VoiceStore

log = logging.getLogger(__name__)

# Whisper's own defaults for "this decode failed, try a higher temperature": a mean
# log-probability below this or a gzip compression ratio above this (a repetition loop).
MIN_AVG_LOGPROB = -1.0
MAX_COMPRESSION_RATIO = 2.4
# Shown as a transcript only above this mean log-probability (DARAJA_VOICE_MIN_LOGPROB):
# Whisper's -1.0 let through base's Kreyòl and French on espeak-ng speech at 95% and 75% WER
# (-0.90, -0.70), while every English note, tiny.en or base, scored -0.4 or better.
SHOWN_AVG_LOGPROB = -0.6
NO_SPEECH_PROB = 0.6
# The fallback re-decodes at higher temperatures only this far: past it Whisper invents text.
TEMPERATURES = (0.0, 0.2, 0.4)
SAMPLE_RATE = 16000

# Statuses (each has a catalog line `voice.status.<status>`).
OK = "ok"
STATUSES = ("ok", "unusable", "no_speech", "empty", "corrupt", "too_long", "no_model", "busy")


@dataclass(frozen=True)
class Transcript:
    """What came out of one voice note."""

    status: str  # one of STATUSES
    text: str = ""
    language: str | None = None
    model: str | None = None
    duration: float | None = None  # seconds of audio
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    language_probability: float | None = None
    seconds: float | None = None  # wall time spent transcribing
    segments: tuple[str, ...] = field(default=())

    def scores(self) -> dict[str, Any]:
        """The figures an auditor reads beside the transcript (JSON-ready)."""
        out: dict[str, Any] = {"status": self.status, "language": self.language}
        out["model"] = self.model
        for name in ("duration", "avg_logprob", "compression_ratio", "no_speech_prob"):
            value = getattr(self, name)
            out[name] = None if value is None else round(float(value), 3)
        out["language_probability"] = (
            None if self.language_probability is None else round(self.language_probability, 3)
        )
        return out


class Transcriber(Protocol):
    """Turns one voice note's bytes into a `Transcript` (blocking; run it off the loop)."""

    def supports(self, languages: Sequence[str]) -> bool:
        """Whether any installed model can transcribe one of these languages."""
        ...

    def transcribe(
        self, audio: bytes, *, languages: Sequence[str], duration_hint: float | None = None
    ) -> Transcript:
        """Transcribe, forcing the language to `languages[0]` when it is the only one, else
        choosing among `languages` only."""
        ...


def verdict(
    avg_logprob: float,
    compression_ratio: float,
    no_speech_prob: float,
    *,
    min_logprob: float = SHOWN_AVG_LOGPROB,
) -> str:
    """The status a decoded transcript earns from Whisper's own scores."""
    if no_speech_prob > NO_SPEECH_PROB and avg_logprob < MIN_AVG_LOGPROB:
        return "no_speech"
    if avg_logprob < min_logprob or compression_ratio > MAX_COMPRESSION_RATIO:
        return "unusable"
    return OK


class WhisperTranscriber:
    """faster-whisper over the models of a `VoiceStore`, within a fixed thread budget."""

    def __init__(
        self,
        store: VoiceStore,
        *,
        cpu_threads: int = 1,
        beam_size: int = 1,
        compute_type: str = "int8",
        max_seconds: float = 600.0,
        min_logprob: float = SHOWN_AVG_LOGPROB,
    ) -> None:
        self.store = store
        self.min_logprob = min_logprob
        self.cpu_threads = max(1, cpu_threads)
        self.beam_size = min(max(1, beam_size), 2)
        self.compute_type = compute_type
        self.max_seconds = max_seconds
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def supports(self, languages: Sequence[str]) -> bool:
        """Whether any installed model can transcribe one of these languages."""
        return any(self.store.for_language(lang) is not None for lang in languages)

    def _model(self, entry: VoiceModel) -> Any:
        # Loaded once, under a lock (the worker thread and a bench may ask together); the
        # checksums are verified before CTranslate2 reads the weights.
        with self._lock:
            found = self._models.get(entry.name)
            if found is None:
                from faster_whisper import WhisperModel

                self.store.verify(entry)
                found = WhisperModel(
                    str(entry.path),
                    device="cpu",
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    num_workers=1,
                    local_files_only=True,
                )
                self._models[entry.name] = found
            return found

    def transcribe(
        self, audio: bytes, *, languages: Sequence[str], duration_hint: float | None = None
    ) -> Transcript:
        """Decode and transcribe one voice note; every failure is a status, never a raise."""
        started = time.monotonic()
        if not audio:
            return Transcript("empty")
        if duration_hint is not None and duration_hint > self.max_seconds:
            return Transcript("too_long", duration=duration_hint)
        candidates = [lang for lang in languages if self.store.for_language(lang) is not None]
        if not candidates:
            return Transcript("no_model")
        try:
            from faster_whisper import decode_audio

            samples = decode_audio(io.BytesIO(audio), sampling_rate=SAMPLE_RATE)
        except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds for a bad file
            log.info("voice note could not be decoded: %s", type(exc).__name__)
            return Transcript("corrupt")
        duration = len(samples) / SAMPLE_RATE
        if duration == 0:
            return Transcript("corrupt")
        if duration > self.max_seconds:
            return Transcript("too_long", duration=duration)
        try:
            return self._run(samples, candidates, duration, started)
        except Exception:  # a broken model: the note is still relayed
            # The traceback goes to the log (it holds no message content), never to a chat.
            log.warning("voice model failed", exc_info=True)
            return Transcript("no_model", duration=duration)

    def _run(
        self, samples: Any, candidates: list[str], duration: float, started: float
    ) -> Transcript:
        language, probability = candidates[0], None
        entry = self.store.for_language(language)
        assert entry is not None
        model = self._model(entry)
        if len(candidates) > 1:
            multi = [c for c in candidates if _name(self.store.for_language(c)) == entry.name]
            if len(multi) > 1 and entry.multilingual:
                # Detection restricted to the chat's languages: Whisper's own top guess
                # is often a language nobody in the operation speaks.
                _, _, probs = model.detect_language(samples)
                ranked = sorted(((p, lang) for lang, p in probs if lang in multi), reverse=True)
                if ranked:
                    probability, language = ranked[0]
        segments, info = model.transcribe(
            samples,
            language=language,
            beam_size=self.beam_size,
            best_of=self.beam_size,
            temperature=list(TEMPERATURES),
            compression_ratio_threshold=MAX_COMPRESSION_RATIO,
            log_prob_threshold=MIN_AVG_LOGPROB,
            no_speech_threshold=NO_SPEECH_PROB,
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        done = list(segments)
        texts = tuple(s.text.strip() for s in done if s.text.strip())
        if not texts:
            return Transcript(
                "no_speech", language=language, model=entry.name, duration=duration,
                seconds=time.monotonic() - started,
            )  # fmt: skip
        weight = sum(max(s.end - s.start, 0.01) for s in done)
        avg = sum(s.avg_logprob * max(s.end - s.start, 0.01) for s in done) / weight
        ratio = max(s.compression_ratio for s in done)
        no_speech = min(s.no_speech_prob for s in done)
        status = verdict(avg, ratio, no_speech, min_logprob=self.min_logprob)
        return Transcript(
            status,
            text=" ".join(texts) if status == OK else "",
            language=language,
            model=entry.name,
            duration=duration,
            avg_logprob=avg,
            compression_ratio=ratio,
            no_speech_prob=no_speech,
            language_probability=probability
            if probability is not None
            else getattr(info, "language_probability", None),
            seconds=time.monotonic() - started,
            segments=texts,
        )


def _name(model: VoiceModel | None) -> str | None:
    return None if model is None else model.name
