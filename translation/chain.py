"""Segment translators composed like argos-translate's `ITranslation` wrappers.

`SegmentTranslation` is the interface: translate a list of segments from one language into
another. `PackageTranslation` sends segments to one model through its batcher, `CachedTranslation`
wraps any translation with a bounded LRU cache, `CompositeTranslation` chains two (a pivot).
A LibreTranslate client can implement the same interface later. Objects here are cheap and
stateless apart from the cache and batcher they are handed: the engine builds them per route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

from translation.batching import Batcher
from translation.cache import LRUCache
from translation.ct2 import SegmentRequest, SegmentResult
from translation.routing import Hop


@dataclass(frozen=True)
class Hypothesis:
    """A translated segment: text, mean token log-probability, output length, split flag."""

    text: str
    log_prob: float
    tokens: int
    split: bool = False


class SegmentTranslation(Protocol):
    """Translates segments from `source` to `target`."""

    source: str
    target: str

    @property
    def models(self) -> tuple[str, ...]:
        """Names of the models involved, in order."""
        ...

    @property
    def key(self) -> Hashable:
        """Identity for caching: equal keys give equal translations."""
        ...

    async def translate_segments(
        self, segments: Sequence[str], bounds: Sequence[str] | None = None
    ) -> list[Hypothesis]:
        """One hypothesis per segment, in order; `bounds` (back-translations) are the texts
        each output should be about as long as."""
        ...


BatcherProvider = Callable[[Hop], Awaitable[Batcher[SegmentRequest, SegmentResult]]]


class PackageTranslation:
    """One hop on one installed model, through the model's shared batcher."""

    def __init__(self, hop: Hop, batcher: BatcherProvider) -> None:
        self.hop = hop
        self.source = hop.source
        self.target = hop.target
        self._batcher = batcher

    @property
    def models(self) -> tuple[str, ...]:
        """The package serving this hop."""
        return (self.hop.model,)

    @property
    def key(self) -> Hashable:
        """Package identity (with checksum: a reinstalled model is a new model) and prefixes."""
        pkg = self.hop.package
        return (pkg.package_id, pkg.sha256, self.hop.source_prefix, self.hop.target_prefix)

    async def translate_segments(
        self, segments: Sequence[str], bounds: Sequence[str] | None = None
    ) -> list[Hypothesis]:
        """Submit every segment; the batcher merges them with other callers' segments."""
        batcher = await self._batcher(self.hop)
        hop = self.hop
        results = await asyncio.gather(
            *(
                batcher.submit(SegmentRequest(seg, hop.source_prefix, hop.target_prefix, bound))
                for seg, bound in zip(segments, bounds or [""] * len(segments), strict=True)
            )
        )
        return [Hypothesis(r.text, r.log_prob, r.tokens, r.split) for r in results]


class CachedTranslation:
    """Serves repeated segments from a bounded LRU cache shared by the engine."""

    def __init__(
        self, underlying: SegmentTranslation, cache: LRUCache[Hashable, Hypothesis]
    ) -> None:
        self.underlying = underlying
        self.source = underlying.source
        self.target = underlying.target
        self._cache = cache

    @property
    def models(self) -> tuple[str, ...]:
        """The wrapped translation's models."""
        return self.underlying.models

    @property
    def key(self) -> Hashable:
        """Same identity as the wrapped translation."""
        return self.underlying.key

    async def translate_segments(
        self, segments: Sequence[str], bounds: Sequence[str] | None = None
    ) -> list[Hypothesis]:
        """Look each segment up; translate only the misses (each distinct miss once). A
        bounded (back-)translation is cached apart: it may have been cut short."""
        out: list[Hypothesis | None] = []
        misses: dict[tuple[str, str], list[int]] = {}
        for i, seg in enumerate(segments):
            bound = bounds[i] if bounds else ""
            hit = self._cache.get((self.key, seg, bound) if bound else (self.key, seg))
            out.append(hit)
            if hit is None:
                misses.setdefault((seg, bound), []).append(i)
        if misses:
            todo = list(misses)
            done = await self.underlying.translate_segments(
                [seg for seg, _ in todo], [bound for _, bound in todo] if bounds else None
            )
            for (seg, bound), hyp in zip(todo, done, strict=True):
                self._cache.put((self.key, seg, bound) if bound else (self.key, seg), hyp)
                for i in misses[(seg, bound)]:
                    out[i] = hyp
        return [h for h in out if h is not None]


class CompositeTranslation:
    """Two translations chained (source -> pivot -> target); log-probabilities add up."""

    def __init__(self, first: SegmentTranslation, second: SegmentTranslation) -> None:
        self.first = first
        self.second = second
        self.source = first.source
        self.target = second.target

    @property
    def models(self) -> tuple[str, ...]:
        """Both hops' models, in order."""
        return (*self.first.models, *self.second.models)

    @property
    def key(self) -> Hashable:
        """Both hops' identities."""
        return (self.first.key, self.second.key)

    async def translate_segments(
        self, segments: Sequence[str], bounds: Sequence[str] | None = None
    ) -> list[Hypothesis]:
        """Translate into the pivot language, then from it; confidence is the product."""
        mid = await self.first.translate_segments(segments, bounds)
        end = await self.second.translate_segments([h.text for h in mid], bounds)
        return [
            Hypothesis(b.text, a.log_prob + b.log_prob, b.tokens, a.split or b.split)
            for a, b in zip(mid, end, strict=True)
        ]
