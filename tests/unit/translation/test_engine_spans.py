"""Protected spans through the whole engine (real spans/segment/quality code), with a model
that mangles placeholders: every span of the span corpus must come back byte-identical."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.unit.translation.engine_fakes import FakePackage, FakeStore, standard_packages
from translation.ct2 import SegmentRequest, SegmentResult
from translation.engine import Engine, EngineConfig, TextTools
from translation.types import Flag

CORPUS = Path(__file__).resolve().parents[2] / "data" / "span_corpus.jsonl"


class ManglingRuntime:
    """Echoes segments but damages placeholders the way small models do, in turn."""

    def __init__(self, pkg: FakePackage) -> None:
        self.name = pkg.package_id
        self.calls = 0

    def translate(self, requests: Sequence[SegmentRequest]) -> list[SegmentResult]:
        out = []
        for req in requests:
            self.calls += 1
            text = req.text
            match self.calls % 4:
                case 0:  # drop the first placeholder
                    text = re.sub(r"\[\d+\]", "", text, count=1)
                case 1:  # renumber one
                    text = re.sub(r"\[(\d+)\]", r"[\g<1>9]", text, count=1)
                case 2:  # duplicate one
                    text = re.sub(r"(\[\d+\])", r"\1 \1", text, count=1)
                case _:  # keep them
                    pass
            out.append(SegmentResult(f"{text} ~", -0.2, max(1, len(text.split()))))
        return out

    def close(self) -> None:
        pass


def corpus() -> list[dict[str, object]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.skipif(not CORPUS.exists(), reason="span corpus not present")
async def test_every_span_of_the_corpus_survives_a_mangling_model() -> None:
    engine = Engine(
        FakeStore(standard_packages()),
        EngineConfig(batch_wait_ms=1),
        runtime_factory=ManglingRuntime,
        text_tools=TextTools.default(),
    )
    items = corpus()
    assert len(items) >= 200
    try:
        targets = {"ht": "en", "fr": "en", "en": "sw", "sw": "fr"}
        results = [
            await engine.translate(
                str(item["text"]), targets[str(item["lang"])], source=str(item["lang"])
            )
            for item in items
        ]
    finally:
        await engine.close()
    kept = 0
    total = 0
    repaired = 0
    for item, result in zip(items, results, strict=True):
        spans = [str(s) for s in item["spans"]]  # type: ignore[attr-defined]
        assert list(result.spans) == spans, item["text"]
        for span in set(spans):
            total += 1
            kept += result.text.count(span) >= spans.count(span)
        repaired += Flag.SPAN_REPAIRED in result.flags
    assert kept == total  # 100% byte-identical
    assert repaired > len(items) // 4  # the mangling happened and was repaired
