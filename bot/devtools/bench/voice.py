"""`daraja bench voice`: transcription speed and accuracy, and what it costs the text relay.

Speech is synthesized with espeak-ng (Debian package) and encoded like a Telegram voice note
(OGG/Opus, mono, 48 kHz, PyAV). For every installed Whisper model and each note length:
the real-time factor (transcription seconds / audio seconds, model already loaded, at
DARAJA_VOICE_THREADS) and the word error rate against the text spoken. Then `daraja bench
relay`'s burst twice, with the voice model installed (so translation keeps to its share of
the cores): once alone, once while the same transcriber the bot uses transcribes 30 s notes
without pause in a thread of the bot's process; the ratio of copies per second is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Operational English without digits (Whisper writes "2" for "two": digits would count as
# errors that are not errors).
SENTENCES = (
    "The convoy leaves the checkpoint at noon.",
    "Send two vehicles to the north road.",
    "We hold the bridge and wait for orders.",
    "The patrol is moving toward the market.",
    "Report any roadblock on the main route.",
    "The medical team needs an escort now.",
    "All units keep radio silence until dawn.",
    "The school is clear and the street is quiet.",
    "We need more water and fuel at the base.",
    "The commander wants a status report tonight.",
    "Armed men were seen near the church.",
    "Close the gate and stay inside the station.",
)
# The same kind of traffic in the other languages, for multilingual models (espeak-ng voice,
# sentences); one note of about 15 s each.
OTHER_LANGUAGES = {
    "fr": (
        "fr",
        (
            "Le convoi quitte le poste à midi.",
            "Envoyez deux véhicules sur la route du nord.",
            "Nous tenons le pont et attendons les ordres.",
            "La patrouille avance vers le marché.",
        ),
    ),
    "ht": (
        "ht",
        (
            "Konvwa a kite pòs la a midi.",
            "Voye de machin sou wout nò a.",
            "Nou kenbe pon an epi n ap tann lòd.",
            "Patwouy la ap avanse bò mache a.",
        ),
    ),
    "sw": (
        "sw",
        (
            "Msafara unaondoka kituoni saa sita mchana.",
            "Tuma magari mawili kwenye barabara ya kaskazini.",
            "Tunashikilia daraja na tunasubiri amri.",
            "Doria inaelekea sokoni.",
        ),
    ),
}
RATE = 48000


def espeak_path() -> str | None:
    """The espeak-ng binary, if installed."""
    return shutil.which("espeak-ng")


def speak_pcm(text: str, *, voice: str = "en-us", speed: int = 150) -> Any:
    """espeak-ng speech for `text` as 16-bit mono samples at 48 kHz."""
    import av
    import numpy as np

    binary = espeak_path()
    if binary is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(  # noqa: S603 - a fixed binary and arguments
            [binary, "-v", voice, "-s", str(speed), "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        wav = out.read_bytes()
    src: Any
    with av.open(io.BytesIO(wav)) as src:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        chunks = [
            f.to_ndarray().reshape(-1)
            for decoded in src.decode(audio=0)
            for f in resampler.resample(decoded)
        ]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16)


def encode_opus(pcm: Any) -> bytes:
    """16-bit mono 48 kHz samples as an OGG/Opus file, as Telegram sends a voice note."""
    import av
    import numpy as np

    samples = np.asarray(pcm, dtype=np.int16)
    out = io.BytesIO()
    with av.open(out, mode="w", format="ogg") as container:
        stream: Any = container.add_stream("libopus", rate=RATE)
        stream.layout = "mono"
        stream.bit_rate = 32000
        frame_size = 960
        for start in range(0, len(samples), frame_size):
            chunk = samples[start : start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def spoken_note(
    seconds: float, sentences: Sequence[str] = SENTENCES, *, voice: str = "en-us"
) -> tuple[bytes, str, float]:
    """A voice note of about `seconds` of distinct sentences; (OGG bytes, text, duration)."""
    import numpy as np

    gap = np.zeros(int(RATE * 0.35), dtype=np.int16)
    parts: list[Any] = []
    said: list[str] = []
    total = 0
    i = 0
    while total < seconds * RATE:
        sentence = sentences[i % len(sentences)]
        pcm = speak_pcm(sentence, voice=voice)
        parts += [pcm, gap]
        said.append(sentence)
        total += len(pcm) + len(gap)
        i += 1
    samples = np.concatenate(parts)
    return encode_opus(samples), " ".join(said), len(samples) / RATE


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference's length."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def register_voice(sub: Any) -> None:
    """Add `daraja bench voice`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "voice", help="voice notes: real-time factor, WER, relay throughput while transcribing"
    )
    parser.add_argument(
        "--lengths", default="5,15,30", help="note lengths in seconds (default 5,15,30)"
    )
    parser.add_argument("--messages", type=int, default=600, help="relay burst size")
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--no-relay", action="store_true", help="only transcription figures")
    parser.add_argument("--json", action="store_true", help="JSON object on the last line")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from translation.voice_store import VoiceStore

    settings = load_settings()
    store = VoiceStore(settings.voice_models_dir)
    if not store.models():
        print(
            f"daraja bench voice: no voice model in {store.root}; "
            "install one with `daraja models install --voice DIR|ARCHIVE`",
            file=sys.stderr,
        )
        return 2
    if espeak_path() is None:
        print("daraja bench voice: espeak-ng is not installed", file=sys.stderr)
        return 2
    lengths = [float(x) for x in args.lengths.split(",") if x.strip()]
    result: dict[str, Any] = {
        "voice_threads": settings.voice_threads,
        "beam_size": settings.voice_beam_size,
        "compute_type": "int8",
        "models": {},
    }
    notes = {length: spoken_note(length) for length in lengths}
    others = {
        lang: spoken_note(15, sentences, voice=voice)
        for lang, (voice, sentences) in OTHER_LANGUAGES.items()
    }
    for model in store.models():
        result["models"][model.name] = _transcription(
            store, model.name, notes, others if model.multilingual else {}, settings
        )
    if not args.no_relay:
        result["relay"] = asyncio.run(_relay(store, settings, args.messages, args.groups))
    if not args.json:
        for name, rows in result["models"].items():
            for row in rows:
                print(
                    f"{name:>10} {row['language']} {row['audio_s']:>5.1f} s note: "
                    f"RTF {row['rtf']:.3f}  WER {row['wer']:.0%}  ({row['status']})"
                )
        if "relay" in result:
            for key, value in result["relay"].items():
                print(f"{key:>34}: {value}")
    print(json.dumps(result))
    return 0


def _transcription(
    store: Any,
    name: str,
    notes: dict[float, tuple[bytes, str, float]],
    others: dict[str, tuple[bytes, str, float]],
    settings: Any,
) -> list[dict[str, Any]]:
    from translation.speech import WhisperTranscriber
    from translation.voice_store import VoiceStore

    only = VoiceStore(store.root)
    only.models = lambda: [m for m in store.models() if m.name == name]  # type: ignore[method-assign]
    transcriber = WhisperTranscriber(
        only,
        cpu_threads=settings.voice_threads,
        beam_size=settings.voice_beam_size,
        max_seconds=3600,
        min_logprob=settings.voice_min_logprob,
    )
    languages = ["en"]
    transcriber.transcribe(notes[min(notes)][0], languages=languages)  # load and warm up
    rows = []
    runs = [("en", length, note) for length, note in notes.items()]
    runs += [(lang, 15.0, note) for lang, note in others.items()]
    for language, length, (audio, text, duration) in runs:
        started = time.monotonic()
        out = transcriber.transcribe(audio, languages=[language])
        seconds = time.monotonic() - started
        rows.append(
            {
                "language": language,
                "length_s": length,
                "audio_s": round(duration, 2),
                "seconds": round(seconds, 3),
                "rtf": round(seconds / duration, 4),
                "wer": round(wer(text, out.text or " ".join(out.segments)), 4),
                "status": out.status,
                "transcript": (out.text or " ".join(out.segments))[:120],
                "avg_logprob": None if out.avg_logprob is None else round(out.avg_logprob, 3),
            }
        )
    return rows


async def _relay(store: Any, settings: Any, messages: int, groups: int) -> dict[str, Any]:
    """The relay burst alone, then while transcription runs without pause."""
    from bot.devtools.bench.relay import bench_relay
    from bot.services.voice import lower_priority
    from translation.speech import WhisperTranscriber

    def progress(text: str) -> None:
        print(f"bench voice: {text}", file=sys.stderr, flush=True)

    progress("relay burst without transcription")
    alone = await bench_relay(
        messages, groups, limit_s=900, voice_models_dir=settings.voice_models_dir
    )
    transcriber = WhisperTranscriber(
        store, cpu_threads=settings.voice_threads, beam_size=settings.voice_beam_size
    )
    audio, _, duration = spoken_note(30)
    stop = threading.Event()
    loaded = threading.Event()
    done = [0]

    def transcribe_forever() -> None:
        # As the bot's voice worker does: a lower priority, and the model loaded in it.
        lower_priority()
        transcriber.transcribe(audio, languages=["en"])
        loaded.set()
        while not stop.is_set():
            transcriber.transcribe(audio, languages=["en"])
            done[0] += 1

    worker = threading.Thread(target=transcribe_forever, name="voice", daemon=True)
    worker.start()
    await asyncio.to_thread(loaded.wait)
    progress("relay burst while transcribing 30 s notes without pause")
    try:
        busy = await bench_relay(
            messages, groups, limit_s=900, voice_models_dir=settings.voice_models_dir
        )
    finally:
        stop.set()
        await asyncio.to_thread(worker.join)
    ratio = busy["copies_per_s"] / alone["copies_per_s"] if alone["copies_per_s"] else 0.0
    return {
        "messages": messages,
        "groups": groups,
        "copies_per_s_alone": alone["copies_per_s"],
        "copies_per_s_transcribing": busy["copies_per_s"],
        "throughput_ratio": round(ratio, 3),
        "lost": alone["lost"] + busy["lost"],
        "overhead_p95_ms_alone": alone["overhead_p95_ms"],
        "overhead_p95_ms_transcribing": busy["overhead_p95_ms"],
        "translation_p95_ms_alone": alone["translation_p95_ms"],
        "translation_p95_ms_transcribing": busy["translation_p95_ms"],
        "audio_s_transcribed_during_burst": round(done[0] * duration, 1),
    }
