"""The model runtime: SentencePiece + CTranslate2 for one installed package.

`ModelRuntime` is the seam between the engine and inference: a blocking `translate` that takes
a batch of segment requests and returns one result per request. `Ct2Runtime` implements it on a
CTranslate2 `Translator`; unit tests use small fakes. ctranslate2 and sentencepiece are imported
only when a model is loaded, so `import translation` stays cheap.

Bounds: CTranslate2 raises for positions beyond the model's table, so an input longer than
`max_input_tokens` is split at word starts into several model inputs (the result says so), and
the decoder is capped by `max_decoding_length` and by a multiple of the input length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from translation.errors import ModelError

if TYPE_CHECKING:
    import ctranslate2
    import sentencepiece

_WORD_START = "\u2581"  # SentencePiece's word-boundary marker


@dataclass(frozen=True)
class SegmentRequest:
    """One segment for one model: the text plus the prefix tokens that select languages."""

    text: str
    source_prefix: tuple[str, ...] = ()
    target_prefix: tuple[str, ...] = ()
    # A back-translation should come out about as long as this text (the segment it
    # translates back to): decoding stops at BOUND_RATIO times its tokens plus BOUND_EXTRA.
    bound: str = ""


# A back-translation longer than this already differs from its source: no need to decode more.
# On the bundled models no in-phrasebook back-translation comes near it (the longest: the
# source's length) and the held-out and critical-change verdicts are those of 1.5 x + 8.
BOUND_RATIO = 1.2
BOUND_EXTRA = 4


@dataclass(frozen=True)
class SegmentResult:
    """One translated segment with the model's mean token log-probability."""

    text: str
    log_prob: float  # mean log-probability per output token (<= 0); exp() is a 0..1 confidence
    tokens: int  # output tokens (weights the segment in a message's score)
    split: bool = False  # the input exceeded the model's maximum length and was split


@dataclass(frozen=True)
class DecodingOptions:
    """How the decoder searches and how long inputs and outputs may be."""

    beam_size: int = 2
    length_penalty: float = 1.0
    max_input_tokens: int = 200
    max_decoding_length: int = 250  # stays inside 256-position tables (fixture models)
    min_decoding_length: int = 1
    # Output is capped at ratio x input tokens + 16 (a runaway repeat loop stops early).
    decoding_ratio: float = 3.0


@dataclass(frozen=True)
class RuntimeOptions:
    """CTranslate2 Translator construction options."""

    device: str = "cpu"
    compute_type: str = "int8"
    intra_threads: int = 0
    inter_threads: int = 1


class ModelRuntime(Protocol):
    """Blocking inference for one model; called from a worker thread, never the event loop."""

    name: str

    def translate(self, requests: Sequence[SegmentRequest]) -> list[SegmentResult]:
        """Translate a batch; one result per request, in order."""
        ...

    def close(self) -> None:
        """Release the model's memory."""
        ...


def split_tokens(tokens: Sequence[str], limit: int) -> list[list[str]]:
    """Split a token sequence into chunks of at most `limit`, preferring word starts."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    chunks: list[list[str]] = []
    rest = list(tokens)
    while len(rest) > limit:
        cut = limit
        # Walk back to the last word start inside the window (not position 0: no progress).
        for i in range(limit, max(0, limit // 2), -1):
            if rest[i].startswith(_WORD_START):
                cut = i
                break
        chunks.append(rest[:cut])
        rest = rest[cut:]
    chunks.append(rest)
    return chunks


class Ct2Runtime:
    """SentencePiece tokenization and CTranslate2 inference for one package."""

    def __init__(
        self,
        name: str,
        translator: ctranslate2.Translator,
        sp: sentencepiece.SentencePieceProcessor,
        decoding: DecodingOptions,
        target_sp: sentencepiece.SentencePieceProcessor | None = None,
    ) -> None:
        self.name = name
        self._translator: ctranslate2.Translator | None = translator
        self._sp = sp
        # OPUS-MT ships separate source and target SentencePiece models.
        self._target_sp = target_sp or sp
        self.decoding = decoding

    @classmethod
    def load(
        cls,
        name: str,
        model_dir: Path,
        sp_model: Path,
        *,
        options: RuntimeOptions,
        decoding: DecodingOptions,
        target_sp_model: Path | None = None,
    ) -> Ct2Runtime:
        """Load a CTranslate2 model directory and its SentencePiece model(s) (blocking)."""
        import ctranslate2
        import sentencepiece

        fix = f"reinstall it: `daraja models remove {name}` then `daraja models install ...`"
        if not (model_dir / "model.bin").is_file():
            raise ModelError(f"package {name}: {model_dir}/model.bin is missing; {fix}")
        for path in (sp_model, target_sp_model):
            if path is not None and not path.is_file():
                raise ModelError(f"package {name}: SentencePiece model {path} is missing; {fix}")
        processors: list[sentencepiece.SentencePieceProcessor] = []
        for path in (sp_model, target_sp_model):
            if path is None:
                continue
            try:
                processors.append(sentencepiece.SentencePieceProcessor(model_file=str(path)))
            except Exception as exc:
                raise ModelError(
                    f"package {name}: cannot read {path.name} ({exc}); {fix}"
                ) from exc
        try:
            translator = ctranslate2.Translator(
                str(model_dir),
                device=options.device,
                compute_type=options.compute_type,
                inter_threads=options.inter_threads,
                intra_threads=options.intra_threads,
            )
        except Exception as exc:
            raise ModelError(f"package {name}: cannot load the model ({exc}); {fix}") from exc
        target_sp = processors[1] if len(processors) > 1 else None
        return cls(name, translator, processors[0], decoding, target_sp)

    def encode(self, text: str) -> list[str]:
        """SentencePiece pieces of a text."""
        pieces: list[str] = self._sp.encode(text, out_type=str)
        return pieces

    def decode(self, pieces: Sequence[str]) -> str:
        """Text of SentencePiece pieces (handles byte-fallback pieces)."""
        text: str = self._target_sp.decode_pieces(list(pieces))
        return text

    def translate(self, requests: Sequence[SegmentRequest]) -> list[SegmentResult]:
        """Tokenize, split over-long inputs, translate in one call, detokenize and score."""
        if self._translator is None:
            raise ModelError(f"model {self.name} is closed")
        opts = self.decoding
        sources: list[list[str]] = []
        prefixes: list[list[str] | None] = []
        owner: list[int] = []  # model input -> request index
        split = [False] * len(requests)
        for index, req in enumerate(requests):
            # Room for the source prefix and the end-of-sentence token the model appends.
            limit = max(1, opts.max_input_tokens - len(req.source_prefix) - 1)
            tokens = self.encode(req.text)
            if not tokens:
                continue  # nothing to translate (models answer empty input with noise)
            chunks = split_tokens(tokens, limit)
            split[index] = len(chunks) > 1
            for chunk in chunks:
                sources.append([*req.source_prefix, *chunk])
                prefixes.append(list(req.target_prefix) or None)
                owner.append(index)
        longest = max((len(s) for s in sources), default=1)
        longest_prefix = max((len(p or ()) for p in prefixes), default=0)
        max_len = min(
            opts.max_decoding_length,
            max(
                opts.min_decoding_length, int(longest * opts.decoding_ratio) + 16 + longest_prefix
            ),
        )
        beam_size = opts.beam_size
        kwargs: dict[str, Any] = {}
        if requests and all(req.bound for req in requests):
            # Every request is a back-translation, a check rather than a copy anyone reads
            # closely: greedy, and each stops at its own bound (the pinned minimum included),
            # not at the longest one's: a batch mixes short and long messages, and a runaway
            # back-translation of a short one would otherwise decode as long as the longest.
            caps = [
                int(len(self.encode(req.bound)) * BOUND_RATIO)
                + BOUND_EXTRA
                + len(req.target_prefix)
                for req in requests
            ]
            max_len = min(max_len, max((caps[i] for i in owner), default=1))
            stops = [min(max_len, caps[i]) for i in owner]
            beam_size = 1
            # Greedy search calls this for each token of each input (prefix tokens included,
            # step counted from 0); True ends that input's decoding.
            kwargs["callback"] = lambda step: step.step + 1 >= stops[step.batch_id]
        if any(p is not None for p in prefixes):
            kwargs["target_prefix"] = prefixes
        if not sources:
            return [SegmentResult("", 0.0, 1) for _ in requests]
        outputs = self._translator.translate_batch(
            sources,
            beam_size=beam_size,
            length_penalty=opts.length_penalty,
            max_input_length=opts.max_input_tokens,
            max_decoding_length=max_len,
            min_decoding_length=min(opts.min_decoding_length, max_len),
            return_scores=True,
            **kwargs,
        )
        parts: list[list[tuple[str, float, int]]] = [[] for _ in requests]
        for out, prefix, index in zip(outputs, prefixes, owner, strict=True):
            tokens = list(out.hypotheses[0])
            if prefix and tokens[: len(prefix)] == prefix:
                tokens = tokens[len(prefix) :]
            score = float(out.scores[0]) if out.scores else 0.0
            parts[index].append((self.decode(tokens), score, max(1, len(tokens))))
        results: list[SegmentResult] = []
        for index, chunk_parts in enumerate(parts):
            if not chunk_parts:
                results.append(SegmentResult("", 0.0, 1))
                continue
            weight = sum(n for _, _, n in chunk_parts)
            log_prob = sum(s * n for _, s, n in chunk_parts) / weight
            text = " ".join(t for t, _, _ in chunk_parts if t)
            results.append(SegmentResult(text, min(0.0, log_prob), weight, split[index]))
        return results

    def close(self) -> None:
        """Drop the Translator (CTranslate2 frees the weights when it is collected)."""
        self._translator = None


def confidence(log_prob: float) -> float:
    """A 0..1 confidence from a mean token log-probability."""
    return max(0.0, min(1.0, math.exp(log_prob)))
