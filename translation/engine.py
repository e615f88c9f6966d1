"""The translation engine: one async API over the installed models.

    engine = Engine.from_models_dir(path, EngineConfig(threads=2))
    t = await engine.translate("Inite KE-3 rive Kenscoff 14:30", "sw", chat_languages=("ht",))
    ts = await engine.translate_many(text, ["en", "sw"])   # one Translation per target

Per message: clean the text (lone surrogates refused, control characters dropped) -> detect the
language (unless given) -> find protected spans -> mask them as placeholders -> segment ->
route (direct, multilingual or pivot) -> batched inference -> check that every placeholder came
back (else translate around the span and reinsert it verbatim, flag SPAN_REPAIRED) ->
reassemble -> unmask -> quality flags -> `Translation`. Each segment reaches the model with its
placeholders numbered from `[0]`, as the sentence alone would (`spans.number_locally`).

Choices where the brief left room:
- Empty or whitespace-only text is not an error: it comes back unchanged with `Route.SAME` and
  `source_decided_by="empty"` (there is nothing a reader could miss).
- Lone UTF-16 surrogates raise `BadText` (the caller shows the original instead).
- C0/C1 control characters other than tab and newline are removed before translation.
- A segment without any letter (only numbers, placeholders, punctuation, emoji) is never sent
  to a model: it is copied as is.
- Pairs whose model failed the start-up self-test are not served (routing falls back to another
  route when there is one, else `MissingModel` names the failed model and the fix).
- A package that cannot be loaded (corrupt files, failed checksum) is logged once, marked
  broken in the router, and the message is routed again: the next package for the pair (or
  the pivot) serves it, so one bad package never stops a route another package can serve.

Nothing is loaded at construction: packages are listed on first use, each model is verified
(SHA-256) and loaded on its first use, once, under a per-model lock.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, overload

from translation.batching import Batcher
from translation.cache import LRUCache
from translation.calibration import CalibrationBook
from translation.chain import (
    CachedTranslation,
    CompositeTranslation,
    Hypothesis,
    PackageTranslation,
    SegmentTranslation,
)
from translation.ct2 import (
    DecodingOptions,
    ModelRuntime,
    RuntimeOptions,
    SegmentRequest,
    SegmentResult,
    confidence,
)
from translation.errors import BadText, MissingModel, ModelError, TranslationError
from translation.qe import CONSERVATIVE, Thresholds, assess, round_trip_similarity
from translation.routing import Hop, PackageInfo, Plan, Router, check_code
from translation.selftest import BUILTIN_SENTENCES, PairCheck, SelfTestReport, shipped_cases
from translation.spans import number_globally, number_locally, separate
from translation.types import Flag, LanguageGuess, Route, Translation

log = logging.getLogger(__name__)

_PLACEHOLDER_RE = re.compile(r"\[\d+\]")
# What a model may emit for a placeholder: spacing variants are accepted by spans.unmask too.
_OUTPUT_PLACEHOLDER_RE = re.compile(
    r"\[[ \t\u00a0\u202f]{0,3}([0-9]{1,9})[ \t\u00a0\u202f]{0,3}\]"
)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
# Texts longer than this are prepared (spans, segmentation) in a thread, off the event loop.
_INLINE_PREPARE_CHARS = 4000


@dataclass(frozen=True)
class EngineConfig:
    """Engine knobs, free of any settings framework (bot/ maps DARAJA_* settings onto it)."""

    threads: int = 0  # CTranslate2 intra-op threads per model (0: CTranslate2's default)
    inter_threads: int = 1  # batches one model runs in parallel
    compute_type: str = "int8"
    batch_size: int = 32  # most segments in one inference call
    batch_wait_ms: float = 5.0  # how long a batch waits for company
    beam_size: int = 2
    length_penalty: float = 1.0
    cache_size: int = 4096  # translated segments kept (0: no cache)
    max_input_tokens: int = 200  # longer segments are split (models raise past their table)
    max_decoding_length: int = 250  # stays inside 256-position tables (fixture models)
    min_decoding_length: int = 1  # benchmarks pin it to max_decoding_length
    max_segment_chars: int = 400
    low_confidence: float = 0.35  # score below this flags LOW_CONFIDENCE (without QE)
    # Quality estimation (translation/qe.py): round trip, critical content, output language
    # and calibrated thresholds; off, only the heuristic flags and `low_confidence` apply.
    quality_estimation: bool = True
    lexicon_dir: Path | None = None  # operator's critical-word lists, added to the bundled ones
    language_uncertain_below: float = 0.5  # detection confidence below this flags it
    inference_timeout_s: float = 300.0  # a batch slower than this fails with ModelError
    verify_checksums: bool = True  # SHA-256 of each package checked when it is loaded
    device: str = "cpu"

    def decoding(self) -> DecodingOptions:
        """Decoder options for the runtime."""
        return DecodingOptions(
            beam_size=self.beam_size,
            length_penalty=self.length_penalty,
            max_input_tokens=self.max_input_tokens,
            max_decoding_length=self.max_decoding_length,
            min_decoding_length=self.min_decoding_length,
        )

    def runtime(self) -> RuntimeOptions:
        """Translator construction options for the runtime."""
        return RuntimeOptions(
            device=self.device,
            compute_type=self.compute_type,
            intra_threads=self.threads,
            inter_threads=self.inter_threads,
        )


class PackageSource(Protocol):
    """Where installed packages come from (`translation.store.ModelStore`)."""

    def list(self) -> Sequence[PackageInfo]:
        """Installed packages."""
        ...

    def verify(self, pkg: Any) -> None:
        """Raise ModelIntegrityError when the package's files changed since install."""
        ...


RuntimeFactory = Callable[[PackageInfo], ModelRuntime]


@dataclass(frozen=True)
class TextTools:
    """The text steps of the pipeline (language id, spans, segmentation, quality)."""

    detect: Callable[..., LanguageGuess]
    find_spans: Callable[..., Sequence[Any]]
    mask: Callable[[str, Sequence[Any]], Any]
    unmask: Callable[..., tuple[str, bool]]
    segment: Callable[..., Any]
    segments: Callable[[Any], list[str]]
    reassemble: Callable[[Any, list[str]], str]
    flags_for: Callable[..., tuple[Flag, ...]]
    # The glossary protected when a caller passes none (the mission's place names, acronyms).
    default_glossary: Callable[[], Any] = lambda: None
    # Critical-content lexicons for quality estimation (translation.critical.Lexicons).
    lexicons: Callable[[], Any] = lambda: None

    @classmethod
    def default(cls) -> TextTools:
        """The real implementations from translation.langid/spans/segment/quality."""
        from translation import critical, glossary, langid, quality, segment, spans

        return cls(
            detect=langid.detect,
            find_spans=spans.find_spans,
            mask=spans.mask,
            unmask=spans.unmask,
            segment=segment.segment,
            segments=segment.segments,
            reassemble=segment.reassemble,
            flags_for=quality.flags_for,
            default_glossary=glossary.default_glossary,
            lexicons=critical.default_lexicons,
        )


@dataclass
class _Prepared:
    text: str  # cleaned source text
    spans: tuple[str, ...]
    masked: Any
    segmented: Any
    parts: list[str]  # the segments, each numbered from [0] (what the model sees)
    numbers: list[tuple[int, ...]]  # per segment: the message-wide number of each placeholder
    split_by_segmenter: bool

    def globally(self, outputs: Sequence[str]) -> list[str]:
        """Translated segments with their message-wide placeholder numbers back."""
        return [number_globally(o, n) for o, n in zip(outputs, self.numbers, strict=True)]


@dataclass
class _Loaded:
    runtime: ModelRuntime
    batcher: Batcher[SegmentRequest, SegmentResult]


# A loaded model is known by package id and installed-tree digest: a reinstalled package with
# new content is a different model, while an unchanged one survives a reload.
_ModelKey = tuple[str, str]


def _model_key(pkg: PackageInfo) -> _ModelKey:
    return (pkg.package_id, pkg.sha256)


# How long a reload waits for translations begun on the old models before closing them anyway.
_RETIRE_WAIT_S = 300.0


@dataclass
class EngineStats:
    """Counters for tests, benchmarks and metrics."""

    model_calls: int = 0
    segments_inferred: int = 0
    deduplicated: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    loaded_models: tuple[str, ...] = field(default=())


def clean_text(text: object) -> str:
    """Refuse non-text and lone surrogates; drop control characters except tab and newline."""
    if not isinstance(text, str):
        raise BadText(f"expected text, got {type(text).__name__}")
    if _SURROGATE_RE.search(text):
        raise BadText(
            "the text contains invalid characters (lone UTF-16 surrogates); "
            "send it again as plain text"
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_RE.sub("", text)


def _has_words(segment: str) -> bool:
    """Whether a segment has letters a model should translate (placeholders excluded)."""
    rest = _PLACEHOLDER_RE.sub(" ", segment)
    return any(unicodedata.category(ch).startswith("L") for ch in rest)


def _placeholders(text: str) -> list[int]:
    """Placeholder numbers in a text, sorted (a lost or doubled one changes the list)."""
    return sorted(int(n) for n in _OUTPUT_PLACEHOLDER_RE.findall(text))


def _span_text(span: Any) -> str:
    for attr in ("text", "value", "original"):
        value = getattr(span, attr, None)
        if isinstance(value, str):
            return value
    return str(span)


def _masked_text(masked: Any) -> str:
    for attr in ("text", "masked"):
        value = getattr(masked, attr, None)
        if isinstance(value, str):
            return value
    raise TypeError(f"cannot read the masked text of {type(masked).__name__}")


class Engine:
    """Offline translation over installed packages with cross-message batching."""

    def __init__(
        self,
        store: PackageSource,
        config: EngineConfig | None = None,
        *,
        runtime_factory: RuntimeFactory | None = None,
        text_tools: TextTools | None = None,
        calibration: CalibrationBook | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.calibration = calibration or CalibrationBook(getattr(store, "root", None))
        self._lexicon_set: Any = None
        self._store = store
        self._runtime_factory = runtime_factory or self._load_ct2
        self._text = text_tools
        self._cache: LRUCache[Hashable, Hypothesis] = LRUCache(self.config.cache_size)
        # One worker per parallel batch plus one so a model can load while another infers.
        self._executor = ThreadPoolExecutor(
            max_workers=self.config.inter_threads + 1, thread_name_prefix="daraja-mt"
        )
        self._router: Router | None = None
        self._router_lock = asyncio.Lock()
        self._loaded: dict[_ModelKey, _Loaded] = {}
        self._load_locks: dict[_ModelKey, asyncio.Lock] = {}
        self._broken: dict[str, ModelError] = {}
        self._closed = False
        # Translations in progress per generation of the package list (bumped by reload), so
        # models a reload drops are closed only once what began on them has finished.
        self._generation = 0
        self._active: dict[int, int] = {}

    @classmethod
    def from_models_dir(cls, path: Path, config: EngineConfig | None = None) -> Engine:
        """An engine over the packages installed in a model directory."""
        from translation.store import ModelStore

        return cls(ModelStore(Path(path)), config, calibration=CalibrationBook(Path(path)))

    # ---- set-up --------------------------------------------------------------------------

    @property
    def text_tools(self) -> TextTools:
        """The pipeline's text steps (the real modules unless injected)."""
        if self._text is None:
            self._text = TextTools.default()
        return self._text

    async def router(self) -> Router:
        """The router over the installed packages (listed once, on first use)."""
        if self._router is None:
            async with self._router_lock:
                if self._router is None:
                    packages = await asyncio.to_thread(self._store.list)
                    self._router = Router(packages)
        return self._router

    async def reload(self) -> tuple[list[str], list[str]]:
        """Re-read installed packages (after `daraja models install/remove`).

        New translations use the new list at once; translations already under way finish on
        the models they started with, which are closed afterwards. Returns the package ids
        added and removed."""
        async with self._router_lock:
            before = {p.package_id for p in self._router.packages} if self._router else set()
            packages = await asyncio.to_thread(self._store.list)
            self._router = Router(packages)
            self._broken.clear()
            root = self.calibration.path.parent if self.calibration.path else None
            self.calibration = CalibrationBook(root)
            retired = self._generation
            self._generation += 1
        after = {p.package_id for p in packages}
        await self._retire(retired)
        return sorted(after - before), sorted(before - after)

    async def _retire(self, generation: int) -> None:
        """Close loaded models the current packages no longer use, once every translation of
        `generation` or older has finished (bounded by _RETIRE_WAIT_S)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _RETIRE_WAIT_S
        while any(n for g, n in self._active.items() if g <= generation):
            if loop.time() > deadline:
                log.warning("models reloaded: closing old models with translations still open")
                break
            await asyncio.sleep(0.05)
        keep = {_model_key(p) for p in self._router.packages} if self._router else set()
        stale = [key for key in self._loaded if key not in keep]
        for key in stale:
            loaded = self._loaded.pop(key)
            self._load_locks.pop(key, None)
            await loaded.batcher.close()
            loaded.runtime.close()
            log.info("model %s unloaded", key[0])

    def _enter(self) -> int:
        gen = self._generation
        self._active[gen] = self._active.get(gen, 0) + 1
        return gen

    def _leave(self, gen: int) -> None:
        left = self._active[gen] - 1
        if left:
            self._active[gen] = left
        else:
            del self._active[gen]

    def _load_ct2(self, pkg: PackageInfo) -> ModelRuntime:
        from translation.ct2 import Ct2Runtime

        return Ct2Runtime.load(
            pkg.package_id,
            pkg.model_dir,
            pkg.sp_model,
            options=self.config.runtime(),
            decoding=self.config.decoding(),
            target_sp_model=getattr(pkg, "target_sp_model", None),
        )

    def _verify_and_load(self, pkg: PackageInfo) -> ModelRuntime:
        if self.config.verify_checksums:
            self._store.verify(pkg)
        return self._runtime_factory(pkg)

    async def _batcher(self, hop: Hop) -> Batcher[SegmentRequest, SegmentResult]:
        """The shared batcher of a hop's model, loading the model on first use (once)."""
        pkg = hop.package
        name = pkg.package_id
        key = _model_key(pkg)
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded.batcher
        lock = self._load_locks.setdefault(key, asyncio.Lock())
        async with lock:
            loaded = self._loaded.get(key)
            if loaded is not None:
                return loaded.batcher
            if name in self._broken:
                raise self._broken[name]
            if self._closed:
                raise ModelError("the translation engine is closed")
            loop = asyncio.get_running_loop()
            try:
                runtime = await loop.run_in_executor(self._executor, self._verify_and_load, pkg)
            except ModelError as exc:
                self._broken[name] = exc
                log.error("model %s cannot be used: %s", name, exc)
                raise
            except Exception as exc:
                err = ModelError(
                    f"package {name} cannot be loaded ({type(exc).__name__}: {exc}); reinstall "
                    f"it: `daraja models remove {name}` then `daraja models install ...`"
                )
                self._broken[name] = err
                raise err from exc
            batcher: Batcher[SegmentRequest, SegmentResult] = Batcher(
                runtime.translate,
                name=name,
                max_batch=self.config.batch_size,
                max_wait_s=self.config.batch_wait_ms / 1000.0,
                executor=self._executor,
                concurrency=self.config.inter_threads,
                timeout_s=self.config.inference_timeout_s,
            )
            self._loaded[key] = _Loaded(runtime, batcher)
            log.info("model %s loaded", name)
            return batcher

    def _chain(self, plan: Plan) -> SegmentTranslation:
        hops: list[SegmentTranslation] = [
            CachedTranslation(PackageTranslation(hop, self._batcher), self._cache)
            for hop in plan.hops
        ]
        chain = hops[0]
        for nxt in hops[1:]:
            chain = CompositeTranslation(chain, nxt)
        return chain

    # ---- translation ---------------------------------------------------------------------

    async def translate(
        self,
        text: str,
        target: str,
        *,
        source: str | None = None,
        chat_languages: Sequence[str] = (),
        author_language: str | None = None,
        glossary: Any = None,
    ) -> Translation:
        """Translate one message into one language."""
        (result,) = await self.translate_many(
            text,
            [target],
            source=source,
            chat_languages=chat_languages,
            author_language=author_language,
            glossary=glossary,
        )
        return result

    @overload
    async def translate_many(
        self,
        text: str,
        targets: Iterable[str],
        *,
        source: str | None = ...,
        chat_languages: Sequence[str] = ...,
        author_language: str | None = ...,
        glossary: Any = ...,
        return_exceptions: Literal[False] = ...,
    ) -> list[Translation]: ...

    @overload
    async def translate_many(
        self,
        text: str,
        targets: Iterable[str],
        *,
        source: str | None = ...,
        chat_languages: Sequence[str] = ...,
        author_language: str | None = ...,
        glossary: Any = ...,
        return_exceptions: Literal[True],
    ) -> list[Translation | TranslationError]: ...

    async def translate_many(
        self,
        text: str,
        targets: Iterable[str],
        *,
        source: str | None = None,
        chat_languages: Sequence[str] = (),
        author_language: str | None = None,
        glossary: Any = None,
        return_exceptions: bool = False,
    ) -> list[Translation] | list[Translation | TranslationError]:
        """Translate one message into several languages concurrently, one result per target.

        With `return_exceptions=True` a target that fails (e.g. a missing model) gives its
        `TranslationError` in place of a result instead of failing the others.
        """
        if self._closed:
            raise ModelError("the translation engine is closed")
        gen = self._enter()
        try:
            return await self._translate_many(
                text, list(targets), source, chat_languages, author_language, glossary,
                return_exceptions,
            )  # fmt: skip
        finally:
            self._leave(gen)

    async def _translate_many(
        self,
        text: str,
        targets: list[str],
        source: str | None,
        chat_languages: Sequence[str],
        author_language: str | None,
        glossary: Any,
        return_exceptions: bool,
    ) -> list[Translation] | list[Translation | TranslationError]:
        if glossary is None:
            glossary = self.text_tools.default_glossary()
        router = await self.router()
        known = router.languages
        clean = clean_text(text)
        if source is not None:
            check_code(source, known)
        if not return_exceptions:
            for tgt in targets:
                check_code(tgt, known)
        if not clean.strip():
            return [self._empty(clean, tgt, source) for tgt in targets]
        guess = await self._detect(clean, source, chat_languages, author_language, glossary)
        if len(clean) > _INLINE_PREPARE_CHARS:
            prepared = await asyncio.to_thread(self._prepare, clean, glossary)
        else:
            prepared = self._prepare(clean, glossary)
        outcomes = await asyncio.gather(
            *(self._translate_one(router, prepared, guess, tgt, glossary) for tgt in targets),
            return_exceptions=True,
        )
        results: list[Translation | TranslationError] = []
        for outcome in outcomes:
            if isinstance(outcome, TranslationError):
                if not return_exceptions:
                    raise outcome
                results.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append(outcome)
        return results

    def _empty(self, text: str, target: str, source: str | None) -> Translation:
        return Translation(
            text=text,
            source=source or target,
            target=target,
            source_decided_by="empty",
            route=Route.SAME,
        )

    async def _detect(
        self,
        text: str,
        source: str | None,
        chat_languages: Sequence[str],
        author_language: str | None,
        glossary: Any,
    ) -> LanguageGuess:
        if source is not None:
            return LanguageGuess(source, "given", 1.0)
        detect = self.text_tools.detect
        return await asyncio.to_thread(
            lambda: detect(
                text,
                chat_languages=tuple(chat_languages),
                author_language=author_language,
                glossary=glossary,
            )
        )

    def _prepare(self, text: str, glossary: Any) -> _Prepared:
        tools = self.text_tools
        spans = tools.find_spans(text, glossary)
        masked = tools.mask(text, spans)
        segmented = tools.segment(_masked_text(masked), max_chars=self.config.max_segment_chars)
        # Masking numbers spans across the message; the models know each sentence numbered
        # from [0], so a later sentence's [3], [4] would be placeholders they never saw.
        local = [number_locally(part) for part in tools.segments(segmented)]
        hard = bool(getattr(segmented, "hard_split", False) or getattr(segmented, "split", False))
        return _Prepared(
            text=text,
            spans=tuple(_span_text(s) for s in spans),
            masked=masked,
            segmented=segmented,
            parts=[part for part, _ in local],
            numbers=[numbers for _, numbers in local],
            split_by_segmenter=hard,
        )

    async def _translate_one(
        self,
        router: Router,
        prep: _Prepared,
        guess: LanguageGuess,
        target: str,
        glossary: Any,
    ) -> Translation:
        check_code(target, router.languages)
        flags: list[Flag] = []
        if guess.decided_by != "given" and guess.confidence < self.config.language_uncertain_below:
            flags.append(Flag.LANGUAGE_UNCERTAIN)
        if guess.language == target:
            return Translation(
                text=prep.text,
                source=guess.language,
                target=target,
                source_decided_by=guess.decided_by,
                route=Route.SAME,
                flags=tuple(flags),
                spans=prep.spans,
            )
        plan, chain, (output, log_prob, used_model, repaired, split) = await self._run_routed(
            router, guess.language, target, prep.parts
        )
        tools = self.text_tools
        masked_out = tools.reassemble(prep.segmented, prep.globally(output))
        final, ok = tools.unmask(masked_out, prep.masked, target, glossary)
        if not ok:
            # Every segment kept its placeholders, yet the whole does not unmask: rebuild every
            # segment around its spans so they are reinserted verbatim.
            log.warning(
                "unmask failed after segment checks (%s); repairing whole message",
                "+".join(plan.models),
            )
            rebuilt = [await self._repair(chain, part) for part in prep.parts]
            final, ok = tools.unmask(
                tools.reassemble(prep.segmented, prep.globally([h.text for h in rebuilt])),
                prep.masked,
                target,
                glossary,
            )
            repaired = True
            if not ok:
                final = prep.text  # never deliver altered spans: show the original instead
        score = confidence(log_prob) if used_model else 1.0
        qe = self.config.quality_estimation and used_model
        thresholds = self.thresholds(plan, guess.language, target) if qe else None
        flags.extend(
            tools.flags_for(
                prep.text,
                final,
                source_lang=guess.language,
                target_lang=target,
                score=score,
                low_confidence=(thresholds.ok_score if thresholds else self.config.low_confidence),
                glossary=glossary,
            )
        )
        if not used_model and Flag.PASSTHROUGH in flags:
            flags.remove(Flag.PASSTHROUGH)  # numbers and names only: copying them is right
        if repaired:
            flags.append(Flag.SPAN_REPAIRED)
        if split or prep.split_by_segmenter:
            flags.append(Flag.TRUNCATED_INPUT)
        round_trip: float | None = None
        back_text: str | None = None
        if thresholds is not None:
            back = await self._round_trip(router, prep, output, guess.language, target, glossary)
            if back is not None:
                round_trip, back_text = back
            flags.extend(
                assess(
                    source=prep.text,
                    source_lang=guess.language,
                    output=final,
                    target_lang=target,
                    score=score,
                    round_trip=round_trip,
                    thresholds=thresholds,
                    lexicons=self._lexicons(),
                    detect=tools.detect,
                )
            )
        return Translation(
            text=final,
            source=guess.language,
            target=target,
            source_decided_by=guess.decided_by,
            route=plan.route,
            models=plan.models,
            score=round(score, 4),
            flags=tuple(dict.fromkeys(flags)),
            spans=prep.spans,
            round_trip=None if round_trip is None else round(round_trip, 1),
            back_text=back_text,
        )

    async def _run_routed(
        self, router: Router, source: str, target: str, parts: Sequence[str]
    ) -> tuple[Plan, SegmentTranslation, tuple[list[str], float, bool, bool, bool]]:
        """Plan and run a route; a package that cannot be loaded is taken out of routing and
        the next route is tried (MissingModel once no candidate is left)."""
        while True:
            try:
                plan = router.plan(source, target)
            except MissingModel:
                # Nothing left but packages that cannot be loaded: say why the first one fails.
                unloadable = self._unloadable_candidates(router, source, target)
                if unloadable:
                    raise self._broken[unloadable[0]] from None
                raise
            chain = self._chain(plan)
            try:
                return plan, chain, await self._run_parts(chain, parts)
            except ModelError:
                unloadable = [m for m in plan.models if m in self._broken]
                if not unloadable:
                    raise  # a loaded model failed (e.g. a timeout): not a reason to drop it
                for name in unloadable:
                    if name not in router.broken:
                        router.broken[name] = str(self._broken[name])[:300]
                        log.error(
                            "package %s cannot be loaded and is no longer routed; "
                            "trying the next model for %s→%s",
                            name,
                            source,
                            target,
                        )

    def _unloadable_candidates(self, router: Router, source: str, target: str) -> list[str]:
        """Packages that could serve source→target (directly or as a pivot leg) but failed
        to load, in routing order."""
        hops = router.hops_for(source, target, skip_failed=False)
        if router.pivot not in (source, target):
            hops += router.hops_for(source, router.pivot, skip_failed=False)
            hops += router.hops_for(router.pivot, target, skip_failed=False)
        return list(dict.fromkeys(h.model for h in hops if h.model in self._broken))

    async def check(
        self, text: str, candidate: str, source: str, target: str, *, glossary: Any = None
    ) -> Translation:
        """Quality-estimate a translation made elsewhere (a reference set's candidate, another
        engine's output): the same checks as for the engine's own, without a model score."""
        if glossary is None:
            glossary = self.text_tools.default_glossary()
        router = await self.router()
        check_code(source, router.languages)
        check_code(target, router.languages)
        src = self._prepare(clean_text(text), glossary)
        out = self._prepare(clean_text(candidate), glossary)
        try:
            forward = router.plan(source, target)
        except TranslationError:
            forward = Plan(Route.NONE, ())
        thresholds = self.thresholds(forward, source, target)
        tools = self.text_tools
        flags = list(
            tools.flags_for(
                src.text,
                out.text,
                source_lang=source,
                target_lang=target,
                score=None,
                glossary=glossary,
            )
        )
        round_trip: float | None = None
        back_text: str | None = None
        try:
            reverse = router.plan(target, source)
        except TranslationError:
            reverse = None
        if reverse is not None and reverse.hops:
            chain = self._chain(reverse)
            back, _, _, _, _ = await self._run_parts(chain, out.parts)
            masked_back = tools.reassemble(out.segmented, back)
            round_trip = round_trip_similarity(_masked_text(src.masked), masked_back)
            back_text, _ = tools.unmask(masked_back, out.masked, source, glossary)
        flags.extend(
            assess(
                source=src.text,
                source_lang=source,
                output=out.text,
                target_lang=target,
                score=None,
                round_trip=round_trip,
                thresholds=thresholds,
                lexicons=self._lexicons(),
                detect=tools.detect,
            )
        )
        return Translation(
            text=out.text,
            source=source,
            target=target,
            source_decided_by="given",
            route=forward.route,
            models=forward.models,
            flags=tuple(dict.fromkeys(flags)),
            spans=src.spans,
            round_trip=None if round_trip is None else round(round_trip, 1),
            back_text=back_text,
        )

    def package_digest(self, package_id: str) -> str:
        """The recorded digest of an installed package ("" if unknown): calibrations are tied
        to it."""
        router = self._router
        for pkg in router.packages if router is not None else ():
            if pkg.package_id == package_id:
                return str(getattr(pkg, "sha256", ""))
        return ""

    def thresholds(self, plan: Plan, source: str, target: str) -> Thresholds:
        """The quality bars of a route: calibrated for its models, else conservative."""
        if not plan.hops:
            return CONSERVATIVE
        return self.calibration.thresholds(
            source,
            target,
            [h.model for h in plan.hops],
            [getattr(h.package, "sha256", "") for h in plan.hops],
        )

    def _lexicons(self) -> Any:
        if self._lexicon_set is None:
            from translation.critical import Lexicons, default_lexicons

            if self.config.lexicon_dir is not None:
                self._lexicon_set = Lexicons(self.config.lexicon_dir)
            else:
                self._lexicon_set = self.text_tools.lexicons() or default_lexicons()
        return self._lexicon_set

    async def _round_trip(
        self,
        router: Router,
        prep: _Prepared,
        output: list[str],
        source: str,
        target: str,
        glossary: Any,
    ) -> tuple[float | None, str] | None:
        """The output translated back by the reverse route (batched with all other traffic,
        cached like it) and its chrF against the source; None without a reverse route."""
        try:
            plan = router.plan(target, source)
        except TranslationError:
            return None
        if not plan.hops:
            return None
        chain = self._chain(plan)
        todo = [i for i, part in enumerate(output) if _has_words(part)]
        back = list(output)
        if todo:
            hyps = await chain.translate_segments(
                [output[i] for i in todo], [prep.parts[i] for i in todo]
            )
            for i, hyp in zip(todo, hyps, strict=True):
                back[i] = hyp.text
        tools = self.text_tools
        masked_back = tools.reassemble(prep.segmented, back)
        similarity = round_trip_similarity(_masked_text(prep.masked), masked_back)
        text, ok = tools.unmask(masked_back, prep.masked, source, glossary)
        if not ok:
            from translation.qe import without_placeholders

            text = without_placeholders(masked_back)
        return similarity, text

    async def _run_parts(
        self, chain: SegmentTranslation, parts: Sequence[str]
    ) -> tuple[list[str], float, bool, bool, bool]:
        """Translate the segments that need a model; repair lost placeholders per segment."""
        todo = [i for i, part in enumerate(parts) if _has_words(part)]
        hyps = await chain.translate_segments([parts[i] for i in todo]) if todo else []
        out = list(parts)
        weighted = 0.0
        weight = 0
        repaired = False
        split = False
        for i, hyp in zip(todo, hyps, strict=True):
            if _placeholders(hyp.text) != _placeholders(parts[i]):
                hyp = await self._repair(chain, parts[i])
                repaired = True
            out[i] = hyp.text
            weighted += hyp.log_prob * hyp.tokens
            weight += hyp.tokens
            split = split or hyp.split
        return out, (weighted / weight if weight else 0.0), bool(todo), repaired, split

    async def _repair(self, chain: SegmentTranslation, part: str) -> Hypothesis:
        """Translate the text between placeholders separately and put the spans back."""
        pieces = re.split(r"(\[\d+\])", part)
        todo = [
            i
            for i, piece in enumerate(pieces)
            if not _PLACEHOLDER_RE.fullmatch(piece) and _has_words(piece)
        ]
        # Whitespace and separators around a piece (", " after a span) are kept as written.
        hyps = (
            await chain.translate_segments([separate(pieces[i])[1] for i in todo]) if todo else []
        )
        weighted = 0.0
        weight = 0
        split = False
        for i, hyp in zip(todo, hyps, strict=True):
            lead, _words, trail = separate(pieces[i])
            # The model may still invent a placeholder; strip any so the count stays exact.
            body = separate(_OUTPUT_PLACEHOLDER_RE.sub("", hyp.text))[1]
            pieces[i] = f"{lead}{body}{trail}"
            weighted += hyp.log_prob * hyp.tokens
            weight += hyp.tokens
            split = split or hyp.split
        log_prob = weighted / weight if weight else 0.0
        return Hypothesis("".join(pieces), log_prob, max(1, weight), split)

    # ---- trust ---------------------------------------------------------------------------

    async def self_test(
        self, expected: Mapping[tuple[str, str], Sequence[tuple[str, str]]] | None = None
    ) -> SelfTestReport:
        """Run known sentences through every installed model and direction; fail bad pairs.

        `expected` maps (source, target) to (sentence, exact translation) pairs; a package may
        also ship them as `"self_test": [{"from", "to", "source", "expected"}]` in its
        metadata.json. Without either, the built-in sentences must come back non-empty with
        their numbers intact. Failing hops are recorded and no longer routed.
        """
        gen = self._enter()
        try:
            router = await self.router()
            checks: list[PairCheck] = []
            for pkg in router.packages:
                shipped = await asyncio.to_thread(shipped_cases, pkg)
                for src, tgt in router.pairs():
                    hops = [
                        h for h in router.hops_for(src, tgt, skip_failed=False) if h.package is pkg
                    ]
                    if not hops:
                        continue
                    hop = hops[0]
                    cases = list((expected or {}).get((src, tgt), ())) or shipped.get(
                        (src, tgt), []
                    )
                    check = await self._check_hop(router, hop, cases)
                    checks.append(check)
                    if check.ok:
                        router.failed.discard(hop.key)
                    else:
                        router.failed.add(hop.key)
                        log.error(
                            "self-test failed for %s→%s (%s): %s; this pair is not served",
                            src,
                            tgt,
                            hop.model,
                            check.reason,
                        )
            return SelfTestReport(tuple(checks))
        finally:
            self._leave(gen)

    async def _check_hop(
        self, router: Router, hop: Hop, cases: Sequence[tuple[str, str]]
    ) -> PairCheck:
        plan = Plan(Route.MULTILINGUAL if hop.package.multilingual else Route.DIRECT, (hop,))
        chain = self._chain(plan)
        exact = bool(cases)
        sentences = [c[0] for c in cases] or list(BUILTIN_SENTENCES.get(hop.source, ()))
        if not sentences:
            return PairCheck(hop.source, hop.target, hop.model, True, "no known sentences")
        tools = self.text_tools
        glossary = tools.default_glossary()
        try:
            for i, sentence in enumerate(sentences):
                prep = self._prepare(sentence, glossary)
                out, _, _, _repaired, _ = await self._run_parts(chain, prep.parts)
                final, ok = tools.unmask(
                    tools.reassemble(prep.segmented, prep.globally(out)),
                    prep.masked,
                    hop.target,
                    glossary,
                )
                if exact and final != cases[i][1]:
                    return PairCheck(
                        hop.source,
                        hop.target,
                        hop.model,
                        False,
                        f"known sentence {i + 1} came back different",
                    )
                if not final.strip():
                    return PairCheck(hop.source, hop.target, hop.model, False, "empty output")
                if not ok or any(s not in final for s in prep.spans):
                    return PairCheck(
                        hop.source, hop.target, hop.model, False, "numbers or names were altered"
                    )
        except TranslationError as exc:
            return PairCheck(hop.source, hop.target, hop.model, False, str(exc))
        return PairCheck(hop.source, hop.target, hop.model, True)

    # ---- lifecycle -----------------------------------------------------------------------

    def stats(self) -> EngineStats:
        """Counters summed over the loaded models."""
        loaded = list(self._loaded.values())
        return EngineStats(
            model_calls=sum(x.batcher.calls for x in loaded),
            segments_inferred=sum(x.batcher.items for x in loaded),
            deduplicated=sum(x.batcher.deduplicated for x in loaded),
            cache_hits=self._cache.hits,
            cache_misses=self._cache.misses,
            loaded_models=tuple(sorted(key[0] for key in self._loaded)),
        )

    async def close(self) -> None:
        """Stop batching, release the models and the worker threads."""
        if self._closed:
            return
        self._closed = True
        for loaded in list(self._loaded.values()):
            await loaded.batcher.close()
            loaded.runtime.close()
        self._loaded.clear()
        await asyncio.to_thread(self._executor.shutdown, wait=True)
