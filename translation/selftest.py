"""The start-up self-test's data: known sentences, and the report of which pairs failed.

`Engine.self_test()` runs these through every installed model and direction. A package may
ship exact cases in its metadata.json (`"self_test": [{"from", "to", "source", "expected"}]`);
otherwise the built-in sentences below must come back non-empty with their numbers intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from translation.routing import PackageInfo


@dataclass(frozen=True)
class PairCheck:
    """Outcome of the self-test for one model and direction."""

    source: str
    target: str
    model: str
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class SelfTestReport:
    """What the start-up self-test found, per installed pair."""

    checks: tuple[PairCheck, ...] = ()

    @property
    def failures(self) -> tuple[PairCheck, ...]:
        """Checks that failed."""
        return tuple(c for c in self.checks if not c.ok)

    @property
    def ok(self) -> bool:
        """Whether every installed pair passed."""
        return not self.failures


# Short operational sentences per source language for the self-test when a package ships no
# known sentences of its own. Models may translate them loosely; the test requires an answer
# that is non-empty and keeps the protected number and time.
BUILTIN_SENTENCES: dict[str, tuple[str, ...]] = {
    "en": ("Unit 3 arrived at 14:30.", "We need water."),
    "fr": ("L'unité 3 est arrivée à 14:30.", "Nous avons besoin d'eau."),
    "ht": ("Inite 3 rive a 14:30.", "Nou bezwen dlo."),
    "sw": ("Kitengo 3 kimefika saa 14:30.", "Tunahitaji maji."),
}


def shipped_cases(pkg: PackageInfo) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Known sentences a package ships in its metadata.json (key "self_test"), if any."""
    base = getattr(pkg, "path", None)
    if not isinstance(base, Path):
        return {}
    try:
        meta = json.loads((base / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for item in meta.get("self_test", []) if isinstance(meta, dict) else []:
        try:
            key = (str(item["from"]), str(item["to"]))
            out.setdefault(key, []).append((str(item["source"]), str(item["expected"])))
        except (KeyError, TypeError):
            continue
    return out
