"""Small fakes for the engine's unit tests: packages, a store, a recording model runtime.

The fake runtime "translates" by tagging each segment with the model's target language, so a
test can read which hops a text went through (`Unit [0] >en >fr` went ht -> en -> fr) and
placeholders survive unless the runtime is told to drop them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from translation.ct2 import SegmentRequest, SegmentResult
from translation.errors import ModelIntegrityError
from translation.types import Flag, LanguageGuess


@dataclass(frozen=True)
class FakePackage:
    """Stand-in for store.InstalledPackage with the attributes the engine reads."""

    package_id: str
    from_codes: tuple[str, ...]
    to_codes: tuple[str, ...]
    multilingual: bool = False
    target_prefixes: dict[str, str] = field(default_factory=dict, hash=False)
    source_prefixes: dict[str, str] = field(default_factory=dict, hash=False)
    model_dir: Path = Path("/nonexistent/model")
    sp_model: Path = Path("/nonexistent/sentencepiece.model")
    sha256: str = "0" * 64

    def serves(self, src: str, tgt: str) -> bool:
        """Whether this package translates src -> tgt."""
        return src != tgt and src in self.from_codes and tgt in self.to_codes


def direct(src: str, tgt: str) -> FakePackage:
    """A one-pair package."""
    return FakePackage(f"{src}_{tgt}", (src,), (tgt,))


def multi(name: str, codes: Sequence[str]) -> FakePackage:
    """A multilingual package with NLLB-style target prefixes."""
    prefixes = {c: f"__{c}__" for c in codes}
    return FakePackage(name, tuple(codes), tuple(codes), True, prefixes)


def standard_packages() -> list[FakePackage]:
    """ht/fr/sw <-> en direct, plus a multilingual ht/sw/fr model (like the fixtures)."""
    pkgs = [
        direct(a, b)
        for a, b in (
            ("ht", "en"),
            ("en", "ht"),
            ("fr", "en"),
            ("en", "fr"),
            ("sw", "en"),
            ("en", "sw"),
        )
    ]
    pkgs.append(multi("multi_ht_sw", ("ht", "sw")))
    return pkgs


class FakeStore:
    """A package list; `corrupt` names packages whose checksum check fails."""

    def __init__(self, packages: Sequence[FakePackage], corrupt: Sequence[str] = ()) -> None:
        self.packages = list(packages)
        self.corrupt = set(corrupt)
        self.verified: list[str] = []

    def list(self) -> list[FakePackage]:
        """Installed packages."""
        return list(self.packages)

    def verify(self, pkg: Any) -> None:
        """Fail for packages marked corrupt."""
        self.verified.append(pkg.package_id)
        if pkg.package_id in self.corrupt:
            raise ModelIntegrityError(
                f"package {pkg.package_id}: files changed since install; reinstall it with "
                f"`daraja models install`"
            )


class FakeRuntime:
    """Records every batch; output is the input tagged with the target language."""

    def __init__(self, pkg: FakePackage, recorder: Recorder) -> None:
        self.name = pkg.package_id
        self.pkg = pkg
        self.recorder = recorder

    def translate(self, requests: Sequence[SegmentRequest]) -> list[SegmentResult]:
        """Tag each request; drop placeholders or raise when the recorder says so."""
        self.recorder.record(self.name, [r.text for r in requests])
        if self.recorder.gate is not None:
            self.recorder.gate.wait(timeout=10)
        out = []
        for req in requests:
            if self.recorder.explode and self.recorder.explode in req.text:
                raise RuntimeError("model exploded")
            tgt = req.target_prefix[0].strip("_") if req.target_prefix else self.pkg.to_codes[0]
            text = req.text
            if self.recorder.drop_placeholders and "drop" in text:
                text = re.sub(r"\[\d+\]", "", text)
            out.append(
                SegmentResult(f"{text} >{tgt}", -0.1, max(1, len(text.split())), len(text) > 350)
            )
        return out

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class Recorder:
    """What the fake runtimes saw, and switches that make them misbehave."""

    batches: list[tuple[str, list[str]]] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    explode: str | None = None  # raise when a segment contains this
    drop_placeholders: bool = False  # lose placeholders in segments containing "drop"
    gate: threading.Event | None = None  # block inference until set
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, model: str, texts: list[str]) -> None:
        """Remember one batch."""
        with self._lock:
            self.batches.append((model, texts))

    def factory(self) -> Callable[[Any], FakeRuntime]:
        """A runtime factory that counts loads."""

        def make(pkg: Any) -> FakeRuntime:
            with self._lock:
                self.loads.append(pkg.package_id)
            return FakeRuntime(pkg, self)

        return make

    @property
    def segments(self) -> list[str]:
        """Every segment inferred, in order."""
        return [t for _, texts in self.batches for t in texts]


# ---- stand-ins for translation.langid / spans / segment / quality ---------------------------

_SPAN_RE = re.compile(r"\d+(?::\d+)?|\b[A-Z]{2,}-\d+\b")


@dataclass(frozen=True)
class FakeSpan:
    """A protected span."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class FakeMasked:
    """Masked text and its spans."""

    text: str
    spans: tuple[FakeSpan, ...]


@dataclass(frozen=True)
class FakeSegmented:
    """Parts and the separators between them."""

    parts: tuple[str, ...]
    seps: tuple[str, ...]


def fake_detect(
    text: str,
    *,
    candidates: Sequence[str] = ("ht", "fr", "en", "sw"),
    chat_languages: Sequence[str] = (),
    author_language: str | None = None,
    glossary: Any = None,
) -> LanguageGuess:
    """The author's language, else the chat's, else a marker word, else English."""
    if author_language:
        return LanguageGuess(author_language, "prior:author", 0.9)
    if chat_languages:
        return LanguageGuess(chat_languages[0], "prior:chat", 0.8)
    if text.startswith("Inite"):
        return LanguageGuess("ht", "classifier", 0.95)
    return LanguageGuess("en", "classifier", 0.3)


def fake_find_spans(text: str, glossary: Any = None) -> list[FakeSpan]:
    """Numbers, times and unit ids."""
    return [FakeSpan(m.group(), m.start(), m.end()) for m in _SPAN_RE.finditer(text)]


def fake_mask(text: str, spans: Sequence[FakeSpan]) -> FakeMasked:
    """Replace spans with [0], [1], ..."""
    out = []
    pos = 0
    for i, span in enumerate(spans):
        out.append(text[pos : span.start])
        out.append(f"[{i}]")
        pos = span.end
    out.append(text[pos:])
    return FakeMasked("".join(out), tuple(spans))


def fake_unmask(
    output: str, masked: FakeMasked, target: str, glossary: Any = None
) -> tuple[str, bool]:
    """Put spans back; not ok when a placeholder is missing or repeated."""
    ok = all(output.count(f"[{i}]") == 1 for i in range(len(masked.spans)))
    for i, span in enumerate(masked.spans):
        output = output.replace(f"[{i}]", span.text)
    return output, ok


def fake_segment(text: str, *, max_chars: int = 400) -> FakeSegmented:
    """Split at line breaks and after '. '; parts longer than max_chars are cut."""
    pieces = re.split(r"(\n+|(?<=\.) )", text)
    parts: list[str] = []
    seps: list[str] = []
    for i, piece in enumerate(pieces):
        if i % 2:
            seps.append(piece)
            continue
        while len(piece) > max_chars:
            parts.append(piece[:max_chars])
            seps.append("")
            piece = piece[max_chars:]
        parts.append(piece)
    return FakeSegmented(tuple(parts), tuple(seps))


def fake_segments(s: FakeSegmented) -> list[str]:
    """The parts to translate."""
    return list(s.parts)


def fake_reassemble(s: FakeSegmented, translated: list[str]) -> str:
    """Parts joined with their original separators."""
    out = [translated[0]]
    for sep, part in zip(s.seps, translated[1:], strict=True):
        out.append(sep)
        out.append(part)
    return "".join(out)


def fake_flags_for(
    source: str,
    output: str,
    *,
    source_lang: str,
    target_lang: str,
    score: float | None,
    low_confidence: float = 0.35,
    glossary: Any = None,
) -> tuple[Flag, ...]:
    """Empty output and low confidence only."""
    flags: list[Flag] = []
    if not output.strip():
        flags.append(Flag.EMPTY)
    if score is not None and score < low_confidence:
        flags.append(Flag.LOW_CONFIDENCE)
    if output == source:
        flags.append(Flag.PASSTHROUGH)
    return tuple(flags)


def fake_text_tools() -> Any:
    """TextTools built from the stand-ins above."""
    from translation.engine import TextTools

    return TextTools(
        detect=fake_detect,
        find_spans=fake_find_spans,
        mask=fake_mask,
        unmask=fake_unmask,
        segment=fake_segment,
        segments=fake_segments,
        reassemble=fake_reassemble,
        flags_for=fake_flags_for,
    )
