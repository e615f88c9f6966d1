"""Real peers to measure Daraja against: argostranslate and a LibreTranslate server, each run
in its own environment (a separate virtualenv), never imported into Daraja's process.

    lt = find_libretranslate()            # the `libretranslate` executable, or None
    home = PeerHome(tmp, threads=2, beam_size=1, decoding_length=32)
    home.add_package_dir(pkg_dir)        # or home.add_archive(".argosmodel")
    home.seed(python_of(lt))             # spaCy sentencizer cache: nothing is downloaded
    async with LibreTranslateServer(lt, home) as server: ...   # server.url

Offline, as the real `libretranslate` 1.9.6 needs it (measured, see README "LibreTranslate"):
- `ARGOS_CHUNK_TYPE=SPACY` with a seeded spaCy cache: the default MiniSBD splitter downloads
  its model on first use and answers 500 offline; the seed is a blank multilingual spaCy
  pipeline (rule-based `sentencizer`, no model weights) saved where argostranslate looks;
- at least two installed packages: with fewer, LibreTranslate fetches the package index at
  start;
- `HTTP(S)_PROXY` pointed at a closed port (loopback excepted), so any other attempt to reach
  the network fails at once instead of waiting.

For a like-for-like benchmark the peers' CTranslate2 decoding length can be pinned, as
Daraja's benchmark pins its own (`decoding_length`): a `sitecustomize` on the peer's
`PYTHONPATH` wraps `ctranslate2.Translator` to pass `min/max_decoding_length`; everything else
(sentence splitting, tokenization, one call per message, beam size, threads) is the peer's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

_SITECUSTOMIZE = '''\
import os

_LEN = os.environ.get("DARAJA_PEER_DECODING_LENGTH")
if _LEN:
    import ctranslate2

    _Real = ctranslate2.Translator

    class _Pinned:
        """ctranslate2.Translator with the benchmark's pinned decoding length."""

        def __init__(self, *args, **kwargs):
            self._real = _Real(*args, **kwargs)

        def translate_batch(self, *args, **kwargs):
            kwargs["min_decoding_length"] = int(_LEN)
            kwargs["max_decoding_length"] = int(_LEN)
            return self._real.translate_batch(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._real, name)

    ctranslate2.Translator = _Pinned
'''

_SEED = """\
import pathlib, sys
import spacy
cache = pathlib.Path(sys.argv[1])
cache.mkdir(parents=True, exist_ok=True)
spacy.blank("xx").to_disk(cache)
(cache / "senter").mkdir(exist_ok=True)
(cache / "senter" / "model").write_bytes(b"")  # what argostranslate checks for
"""

_ARGOS_ONE_AT_A_TIME = """\
import json, sys, time
from argostranslate import translate
job = json.load(sys.stdin)
langs = {lang.code: lang for lang in translate.get_installed_languages()}
tr = langs[job["source"]].get_translation(langs[job["target"]])
for text in job["warmup"]:
    tr.translate(text)
t0 = time.perf_counter()
out = [tr.translate(text) for text in job["texts"]]
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "outputs": out}))
"""


def find_libretranslate(explicit: str | None = None) -> Path | None:
    """The `libretranslate` executable: `explicit` if given, else the one on PATH."""
    found = explicit or shutil.which("libretranslate")
    if not found:
        return None
    path = Path(found)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def python_of(executable: Path) -> Path:
    """The interpreter of the environment an executable was installed into."""
    return executable.parent / "python"


def has_module(python: Path, module: str) -> bool:
    """Whether `module` imports in that interpreter (checked in a subprocess)."""
    if not python.exists():
        return False
    probe = subprocess.run(  # noqa: S603 - a peer's interpreter, fixed code
        [
            str(python),
            "-c",
            f"import importlib.util,sys; sys.exit(not importlib.util.find_spec({module!r}))",
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    return probe.returncode == 0


class PeerHome:
    """A private argostranslate home (packages, caches, settings) for peer processes."""

    def __init__(
        self,
        root: Path,
        *,
        threads: int = 0,
        beam_size: int = 1,
        decoding_length: int | None = None,
        compute_type: str = "int8",
    ) -> None:
        self.root = root
        self.packages = root / "packages"
        self.packages.mkdir(parents=True, exist_ok=True)
        self.threads = threads
        self.beam_size = beam_size
        self.decoding_length = decoding_length
        self.compute_type = compute_type
        (root / "site").mkdir(exist_ok=True)
        (root / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")

    def add_archive(self, archive: Path) -> None:
        """Unpack an `.argosmodel` (one top-level directory) into the packages directory."""
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(self.packages)

    def add_package_dir(self, source: Path, name: str, metadata: dict[str, Any]) -> None:
        """Install a package directory (model/ and sentencepiece.model) by symlinks."""
        target = self.packages / name
        target.mkdir()
        for entry in source.iterdir():
            if entry.name != "metadata.json":
                (target / entry.name).symlink_to(entry.resolve())
        (target / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")

    def env(self) -> dict[str, str]:
        """The peer's environment: private dirs, offline splitter, threads, no network."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOS_", "DARAJA_"))}
        closed = "http://127.0.0.1:9"
        env.update(
            HOME=str(self.root),
            XDG_DATA_HOME=str(self.root / "data"),
            XDG_CACHE_HOME=str(self.root / "cache"),
            XDG_CONFIG_HOME=str(self.root / "config"),
            ARGOS_PACKAGES_DIR=str(self.packages),
            ARGOS_CHUNK_TYPE="SPACY",
            ARGOS_DEVICE_TYPE="cpu",
            ARGOS_INTRA_THREADS=str(self.threads),
            ARGOS_INTER_THREADS="1",
            ARGOS_BEAM_SIZE=str(self.beam_size),
            ARGOS_COMPUTE_TYPE=self.compute_type,
            HTTP_PROXY=closed,
            HTTPS_PROXY=closed,
            http_proxy=closed,
            https_proxy=closed,
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            PYTHONPATH=str(self.root / "site"),
        )
        if self.decoding_length:
            env["DARAJA_PEER_DECODING_LENGTH"] = str(self.decoding_length)
        return env

    def seed(self, python: Path) -> None:
        """Write the spaCy sentencizer cache argostranslate's SPACY splitter loads."""
        cache = self.root / "cache" / "argos-translate" / "spacy"
        subprocess.run(  # noqa: S603 - a peer's interpreter, fixed code
            [str(python), "-c", _SEED, str(cache)],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=300,
        )


def argos_one_at_a_time(
    python: Path,
    home: PeerHome,
    texts: Sequence[str],
    source: str,
    target: str,
    *,
    warmup: Sequence[str] = (),
) -> tuple[float, list[str]]:
    """Seconds real argostranslate takes to translate `texts` one call each, and its outputs."""
    job = json.dumps(
        {"source": source, "target": target, "texts": list(texts), "warmup": list(warmup)}
    )
    done = subprocess.run(  # noqa: S603 - a peer's interpreter, fixed code
        [str(python), "-c", _ARGOS_ONE_AT_A_TIME],
        input=job,
        env=home.env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"argostranslate peer failed: {done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), [str(t) for t in result["outputs"]]


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LibreTranslateServer:
    """A real LibreTranslate server on loopback, started from its own environment."""

    def __init__(
        self,
        executable: Path,
        home: PeerHome,
        *,
        threads: int = 1,
        args: Sequence[str] = (),
        ready_timeout_s: float = 300.0,
    ) -> None:
        self.executable = executable
        self.home = home
        self.threads = threads
        self.args = list(args)
        self.ready_timeout_s = ready_timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = home.root / "libretranslate.log"

    def start(self) -> LibreTranslateServer:
        """Start the server and wait until `/languages` answers (it loads every package)."""
        cmd = [
            str(self.executable),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--threads",
            str(self.threads),
            "--disable-web-ui",
            *self.args,
        ]
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - the peer's own executable
                cmd, env=self.home.env(), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"libretranslate exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/languages", timeout=5.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"libretranslate not ready in {self.ready_timeout_s:g}s")

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 20 s)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(20)

    async def __aenter__(self) -> LibreTranslateServer:
        return await asyncio.to_thread(self.start)

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the server's output (for a failure message)."""
        try:
            return self._log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def peer_report(libretranslate: Path | None, argos_python: Path | None) -> dict[str, str]:
    """Which peers can run here, and why not when they cannot (for the benchmark's output)."""
    report: dict[str, str] = {}
    if libretranslate is None:
        report["libretranslate"] = (
            "absent: no `libretranslate` executable (PATH or --libretranslate)"
        )
    elif not has_module(python_of(libretranslate), "spacy"):
        venv = python_of(libretranslate).parent.parent
        report["libretranslate"] = f"unusable offline: spaCy is not installed in {venv}"
    else:
        report["libretranslate"] = f"found: {libretranslate}"
    if argos_python is None:
        report["argostranslate"] = (
            "absent: no environment with argostranslate and spaCy (--argos-python, or the "
            "libretranslate environment)"
        )
    elif not (has_module(argos_python, "argostranslate") and has_module(argos_python, "spacy")):
        report["argostranslate"] = f"absent: {argos_python} lacks argostranslate or spaCy"
    else:
        report["argostranslate"] = f"found: {argos_python}"
    return report


def default_argos_python(libretranslate: Path | None, explicit: str | None) -> Path | None:
    """The interpreter to run argostranslate in: `explicit`, else the LibreTranslate one."""
    if explicit:
        return Path(explicit)
    if libretranslate is not None:
        return python_of(libretranslate)
    return None


if __name__ == "__main__":  # pragma: no cover - manual check of a peer environment
    lt = find_libretranslate(sys.argv[1] if len(sys.argv) > 1 else None)
    print(json.dumps(peer_report(lt, default_argos_python(lt, None)), indent=2))
