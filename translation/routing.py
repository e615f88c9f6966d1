"""Routing: which installed packages serve a language pair, and how.

Order of preference for source -> target:
  1. a direct package (one model for exactly that pair),
  2. a multilingual package declaring both languages (target chosen by a target prefix token,
     source marked by a source prefix token when the package declares one),
  3. a pivot through English: source -> en, then en -> target, each hop by 1. or 2.
Among equal choices the package id decides, so a route is stable across restarts. Hops that
failed the start-up self-test, and packages that could not be loaded (`broken`), are skipped:
the next candidate for the pair serves instead.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from translation.errors import MissingModel, UnsupportedLanguage
from translation.types import LANGUAGES, PIVOT_LANGUAGE, Route

_CODE_RE = re.compile(r"^[a-z]{2,3}$")


class PackageInfo(Protocol):
    """What routing and the engine need from an installed package (`store.InstalledPackage`)."""

    @property
    def package_id(self) -> str: ...
    @property
    def from_codes(self) -> tuple[str, ...]: ...
    @property
    def to_codes(self) -> tuple[str, ...]: ...
    @property
    def multilingual(self) -> bool: ...
    @property
    def target_prefixes(self) -> dict[str, str]: ...
    @property
    def source_prefixes(self) -> dict[str, str]: ...
    @property
    def model_dir(self) -> Path: ...
    @property
    def sp_model(self) -> Path: ...
    @property
    def sha256(self) -> str: ...

    def serves(self, src: str, tgt: str) -> bool:
        """Whether this package translates src -> tgt."""
        ...


@dataclass(frozen=True)
class Hop:
    """One model call: a package translating source -> target, with its prefix tokens."""

    package: PackageInfo
    source: str
    target: str
    source_prefix: tuple[str, ...] = ()
    target_prefix: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        """Name of the package serving this hop, as reported in results."""
        return self.package.package_id

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of this hop's package and direction (self-test bookkeeping)."""
        return (self.package.package_id, self.source, self.target)


@dataclass(frozen=True)
class Plan:
    """A route and its hops, in order."""

    route: Route
    hops: tuple[Hop, ...]

    @property
    def models(self) -> tuple[str, ...]:
        """Package ids of the hops, in order."""
        return tuple(h.model for h in self.hops)


def check_code(code: str, known: Collection[str]) -> str:
    """Return a known language code or raise UnsupportedLanguage saying which ones exist."""
    if not isinstance(code, str) or not _CODE_RE.match(code) or code not in known:
        shown = code if isinstance(code, str) else type(code).__name__
        raise UnsupportedLanguage(
            f"unknown language code {shown[:20]!r}; use one of {', '.join(sorted(known))} "
            "(other languages need a model: see `daraja models catalog`)"
        )
    return code


class Router:
    """Plans routes over a fixed set of installed packages."""

    def __init__(self, packages: Iterable[PackageInfo], *, pivot: str = PIVOT_LANGUAGE) -> None:
        self.packages: tuple[PackageInfo, ...] = tuple(
            sorted(packages, key=lambda p: p.package_id)
        )
        self.pivot = pivot
        self.failed: set[tuple[str, str, str]] = set()  # hop keys that failed the self-test
        self.broken: dict[str, str] = {}  # package id -> why it could not be loaded

    @property
    def languages(self) -> frozenset[str]:
        """Codes Daraja accepts: the four built-in ones plus any an installed package declares."""
        codes = set(LANGUAGES)
        for pkg in self.packages:
            codes.update(pkg.from_codes)
            codes.update(pkg.to_codes)
        return frozenset(codes)

    def hops_for(self, src: str, tgt: str, *, skip_failed: bool = True) -> list[Hop]:
        """All single-model hops for a pair: direct packages first, then multilingual ones."""
        direct: list[Hop] = []
        multi: list[Hop] = []
        for pkg in self.packages:
            if not pkg.serves(src, tgt):
                continue
            if pkg.multilingual:
                tp = pkg.target_prefixes.get(tgt)
                sp = pkg.source_prefixes.get(src)
                multi.append(Hop(pkg, src, tgt, (sp,) if sp else (), (tp,) if tp else ()))
            else:
                direct.append(Hop(pkg, src, tgt))
        hops = direct + multi
        if skip_failed:
            hops = [h for h in hops if h.key not in self.failed and h.model not in self.broken]
        return hops

    def pairs(self) -> list[tuple[str, str]]:
        """Every (source, target) pair some installed package serves in one hop."""
        found: set[tuple[str, str]] = set()
        for pkg in self.packages:
            for src in pkg.from_codes:
                for tgt in pkg.to_codes:
                    if src != tgt and pkg.serves(src, tgt):
                        found.add((src, tgt))
        return sorted(found)

    def plan(self, src: str, tgt: str) -> Plan:
        """Choose the route for src -> tgt, or raise MissingModel naming what to install."""
        known = self.languages
        check_code(src, known)
        check_code(tgt, known)
        if src == tgt:
            return Plan(Route.SAME, ())
        hops = self.hops_for(src, tgt)
        if hops:
            first = hops[0]
            return Plan(
                Route.MULTILINGUAL if first.package.multilingual else Route.DIRECT, (first,)
            )
        if self.pivot not in (src, tgt):
            one = self.hops_for(src, self.pivot)
            two = self.hops_for(self.pivot, tgt)
            if one and two:
                return Plan(Route.PIVOT, (one[0], two[0]))
        raise self._missing(src, tgt)

    def _missing(self, src: str, tgt: str) -> MissingModel:
        candidates = self.hops_for(src, tgt, skip_failed=False)
        broken = [h for h in candidates if h.model in self.broken]
        if broken:
            return MissingModel(
                f"the model for {src}→{tgt} ({broken[0].model}) cannot be loaded "
                f"({self.broken[broken[0].model]}) and no other model serves the pair; "
                f"reinstall it (`daraja models remove {broken[0].model}`, then "
                f"`daraja models install {src}-{tgt}`) or see `daraja models catalog`",
                source=src,
                target=tgt,
            )
        failed = [h for h in candidates if h.key in self.failed]
        if failed:
            return MissingModel(
                f"the model for {src}→{tgt} ({failed[0].model}) failed its self-test at start "
                f"and is not used; reinstall it (`daraja models remove {failed[0].model}`, then "
                f"`daraja models install {src}-{tgt}`) or see `daraja models catalog`",
                source=src,
                target=tgt,
            )
        if self.pivot not in (src, tgt):
            legs = [
                f"{a}-{b}"
                for a, b in ((src, self.pivot), (self.pivot, tgt))
                if not self.hops_for(a, b)
            ]
            hint = (
                f"install a {src}-{tgt} model, a multilingual model covering both, or the "
                f"missing pivot leg(s) {' and '.join(legs)}"
            )
        else:
            hint = f"install a {src}-{tgt} model or a multilingual model covering both"
        return MissingModel(
            f"no installed model translates {src}→{tgt}: {hint}; run "
            f"`daraja models install {src}-{tgt}` (see `daraja models catalog` for where to get "
            "offline models)",
            source=src,
            target=tgt,
        )


@dataclass(frozen=True)
class Overlap:
    """A pair several installed packages serve in one hop: which one is used, and why."""

    source: str
    target: str
    winner: str
    others: tuple[str, ...]
    reason: str


def overlaps(packages: Iterable[PackageInfo]) -> list[Overlap]:
    """Every pair served by more than one package, with the package routing picks for it."""
    router = Router(packages)
    found: list[Overlap] = []
    for src, tgt in router.pairs():
        hops = router.hops_for(src, tgt, skip_failed=False)
        if len(hops) < 2:
            continue
        winner, rest = hops[0], hops[1:]
        same_kind = [h for h in rest if h.package.multilingual == winner.package.multilingual]
        if same_kind:
            reason = "first by package id among packages of the same kind"
            if len(same_kind) < len(rest):
                reason = "a direct package is preferred over a multilingual one, then " + reason
        else:
            reason = "a direct package is preferred over a multilingual one"
        found.append(Overlap(src, tgt, winner.model, tuple(h.model for h in rest), reason))
    return found
