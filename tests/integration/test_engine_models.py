"""The whole engine on the real fixture models (SentencePiece + CTranslate2, int8).

The fixture models translate exactly the phrasebook sentences (tests/fixtures/models/
expected.json holds them with placeholders `[0]`, `[1]`...). Each placeholder is filled here
with a real protected span (a callsign, a time, a place...), so the engine masks it back to the
same placeholder and the model sees exactly what it was trained on.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import re
import shutil
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from translation.engine import Engine, EngineConfig
from translation.errors import ModelError
from translation.types import Flag, Route, Verdict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
PHRASEBOOK = Path(__file__).resolve().parents[2] / "tools" / "phrasebook"
SPAN_CORPUS = Path(__file__).resolve().parents[1] / "data" / "span_corpus.jsonl"
FILLERS = (
    "KE-3",
    "14:30",
    "Kenscoff",
    "18.5392,-72.3364",
    "Alpha_2",
    "PNH-UDMO-2",
    "Furcy",
    "@bravo6",
    "07:45",
    "CHARLIE-2",
    "Artibonite",
    "#sitrep",
    "RNDDH",
    "250",
    "12",
    "MSS",
)

pytestmark = pytest.mark.skipif(
    not (FIXTURES / "expected.json").exists(), reason="fixture models not built yet"
)


def expected() -> dict[str, list[dict[str, str]]]:
    data: dict[str, list[dict[str, str]]] = json.loads(
        (FIXTURES / "expected.json").read_text(encoding="utf-8")
    )
    return data


def fill(text: str) -> str:
    """Replace placeholder [n] by the n-th filler span."""
    return re.sub(r"\[(\d+)\]", lambda m: FILLERS[int(m.group(1))], text)


def install_fixtures(root: Path) -> None:
    from translation.store import ModelStore

    store = ModelStore(root)
    for archive in sorted(FIXTURES.glob("*.argosmodel")):
        store.install_file(archive)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    install_fixtures(root)
    return root


@pytest.fixture
async def engine(models_dir: Path) -> AsyncIterator[Engine]:
    eng = Engine.from_models_dir(models_dir, EngineConfig(threads=1, beam_size=2))
    yield eng
    await eng.close()


def _direction(key: str) -> tuple[str, str]:
    src, tgt = key.split("-")
    return src, tgt


async def test_every_phrasebook_sentence_translates_exactly(engine: Engine) -> None:
    wrong: list[str] = []
    routes: dict[str, set[Route]] = {}
    for key, pairs in sorted(expected().items()):
        src, tgt = _direction(key)
        results = await asyncio.gather(
            *(engine.translate(fill(p["source"]), tgt, source=src) for p in pairs)
        )
        for pair, result in zip(pairs, results, strict=True):
            if result.text != fill(pair["target"]):
                wrong.append(f"{key}: {pair['source']!r} -> {result.text!r}")
            routes.setdefault(key, set()).add(result.route)
    assert wrong == []
    assert routes["ht-en"] == {Route.DIRECT}
    for key in ("ht-sw", "sw-ht", "fr-sw", "sw-fr"):
        if key in routes:  # served by the multilingual fixture model, with target prefixes
            assert routes[key] == {Route.MULTILINGUAL}, key


async def test_without_a_multilingual_model_ht_to_sw_pivots(engine: Engine) -> None:
    if "ht-sw" in expected():
        pytest.skip("the multilingual fixture model serves ht-sw")
    data = expected()
    en_to_sw = {p["source"]: p["target"] for p in data["en-sw"]}
    ht, en = next((p["source"], p["target"]) for p in data["ht-en"] if p["target"] in en_to_sw)
    result = await engine.translate(fill(ht), "sw", source="ht")
    assert result.route is Route.PIVOT
    assert result.text == fill(en_to_sw[en])


async def test_ht_to_fr_pivots_through_english(engine: Engine) -> None:
    data = expected()
    en_to_fr = {p["source"]: p["target"] for p in data["en-fr"]}
    cases = [
        (p["source"], en_to_fr[p["target"]]) for p in data["ht-en"] if p["target"] in en_to_fr
    ]
    assert cases
    for ht, fr in cases[:20]:
        result = await engine.translate(fill(ht), "fr", source="ht")
        assert result.route is Route.PIVOT
        assert len(result.models) == 2
        assert result.text == fill(fr)


# Three phrasebook rows (by their English column) every direction's models were trained on,
# each with its own spans: the second and third sentences' placeholders are [2].. and [5] once
# the whole message is masked.
THREE_SENTENCES = (
    ("Unit [0] arrived at [1].", ("KE-3", "Kenscoff")),
    ("[0] wounded and [1] dead at [2].", ("2", "1", "14:30")),
    ("We need a medevac at [0].", ("18.5392,-72.3364",)),
)
LANGUAGES = ("ht", "fr", "en", "sw")


def phrasebook_rows() -> dict[str, dict[str, str]]:
    """Phrasebook rows by their English sentence (placeholders numbered in English order)."""
    rows: dict[str, dict[str, str]] = {}
    for path in sorted(PHRASEBOOK.glob("*.tsv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                rows[row["en"]] = row
    return rows


def three_sentence_message(language: str) -> str:
    """The three sentences in one language, spans filled in, as one message."""
    rows = phrasebook_rows()
    return " ".join(
        re.sub(r"\[(\d+)\]", partial(_filler, fillers), rows[en][language])
        for en, fillers in THREE_SENTENCES
    )


def _filler(fillers: tuple[str, ...], match: re.Match[str]) -> str:
    return fillers[int(match.group(1))]


async def test_a_message_of_known_sentences_translates_exactly_in_all_12_directions(
    engine: Engine,
) -> None:
    wrong: dict[str, str] = {}
    for src, tgt in itertools.permutations(LANGUAGES, 2):
        result = await engine.translate(three_sentence_message(src), tgt, source=src)
        # Exact, and judged ok (informational flags such as "uncalibrated" may remain).
        if result.text != three_sentence_message(tgt) or result.verdict is not Verdict.OK:
            wrong[f"{src}-{tgt}"] = f"{result.text!r} {result.flags}"
    assert wrong == {}


async def test_200_concurrent_calls_are_batched_and_matched(engine: Engine) -> None:
    pairs = expected()["sw-en"]
    calls = [pairs[i % len(pairs)] for i in range(200)]
    # Distinct messages: a different span per call keeps dedup and cache out of the count.
    texts = [fill(p["source"]).replace("KE-3", f"KE-{i}") for i, p in enumerate(calls)]
    results = await asyncio.gather(*(engine.translate(t, "en", source="sw") for t in texts))
    for i, (pair, result) in enumerate(zip(calls, results, strict=True)):
        assert result.text == fill(pair["target"]).replace("KE-3", f"KE-{i}")
    assert engine.stats().model_calls < 200 // 4  # batched across messages


async def test_repeats_hit_the_cache(engine: Engine) -> None:
    pair = expected()["en-ht"][0]
    first = await engine.translate(fill(pair["source"]), "ht", source="en")
    calls = engine.stats().model_calls
    second = await engine.translate(fill(pair["source"]), "ht", source="en")
    assert second == first
    assert engine.stats().model_calls == calls


@pytest.mark.skipif(not SPAN_CORPUS.exists(), reason="span corpus not present")
async def test_span_corpus_spans_are_byte_identical(engine: Engine) -> None:
    items = [json.loads(x) for x in SPAN_CORPUS.read_text(encoding="utf-8").splitlines() if x]
    targets = {"ht": "en", "fr": "en", "en": "sw", "sw": "ht"}
    results = await asyncio.gather(
        *(engine.translate(it["text"], targets[it["lang"]], source=it["lang"]) for it in items)
    )
    lost = [
        (it["text"], span, r.text)
        for it, r in zip(items, results, strict=True)
        for span in set(it["spans"])
        if r.text.count(span) < it["spans"].count(span)
    ]
    assert lost == []


async def test_self_test_passes_on_the_fixture_models(engine: Engine) -> None:
    # Built-in sentences (outside the phrasebook: loose output, but non-empty, spans kept) ...
    report = await engine.self_test()
    assert report.checks
    assert report.ok, report.failures
    # ... and exact known sentences per pair.
    cases = {
        _direction(key): [(fill(p["source"]), fill(p["target"])) for p in pairs[:3]]
        for key, pairs in expected().items()
    }
    exact = await engine.self_test(cases)
    assert exact.ok, exact.failures
    assert {(c.source, c.target) for c in exact.checks} >= set(cases)


async def test_same_language_is_not_translated(engine: Engine) -> None:
    same = await engine.translate("Hold your position.", "en", source="en")
    assert same.route is Route.SAME
    assert same.text == "Hold your position."
    assert same.models == ()


async def test_corrupt_package_is_refused_with_the_fix(models_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    ht_en = next(
        meta.parent
        for meta in copy.rglob("metadata.json")
        if json.loads(meta.read_text(encoding="utf-8")).get("from_code") == "ht"
        and json.loads(meta.read_text(encoding="utf-8")).get("to_code") == "en"
    )
    model_bin = next(ht_en.rglob("model.bin"))
    data = bytearray(model_bin.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_bin.write_bytes(bytes(data))
    eng = Engine.from_models_dir(copy, EngineConfig(threads=1))
    try:
        with pytest.raises(ModelError, match="daraja models"):
            await eng.translate("Tann lòd.", "en", source="ht")
        # Other packages still serve.
        pair = expected()["en-fr"][0]
        assert (await eng.translate(fill(pair["source"]), "fr", source="en")).text == fill(
            pair["target"]
        )
    finally:
        await eng.close()


@pytest.mark.parametrize("verify", [True, False], ids=["checksums", "no-checksums"])
async def test_a_broken_package_gives_way_to_a_working_one_for_the_same_pair(
    models_dir: Path, tmp_path: Path, verify: bool, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    # A second ht→en package, routed first (its id sorts first), whose SentencePiece model is
    # broken: with checksums on it fails verification, without them it fails to load.
    shutil.copytree(copy / "fixture_ht_en", copy / "aaa_ht_en")
    (copy / "aaa_ht_en" / "sentencepiece.model").write_bytes(b"not a sentencepiece model")
    sources = [fill(p["source"]) for p in expected()["ht-en"][:3]]
    reference = Engine.from_models_dir(models_dir, EngineConfig(threads=1))
    try:
        wanted = [(await reference.translate(t, "en", source="ht")).text for t in sources]
    finally:
        await reference.close()
    eng = Engine.from_models_dir(copy, EngineConfig(threads=1, verify_checksums=verify))
    try:
        for text, want in zip(sources, wanted, strict=True):
            result = await eng.translate(text, "en", source="ht")
            assert result.text == want
            assert result.models == ("fixture_ht_en",)
    finally:
        await eng.close()
    dropped = [r for r in caplog.records if "aaa_ht_en cannot be loaded" in r.getMessage()]
    assert len(dropped) == 1  # logged once, then no longer tried


def test_cli_translate_prints_translation_route_and_flags(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    pair = expected()["ht-en"][0]
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(models_dir))
    assert main(["translate", "--to", "en", "--from", "ht", "--json", fill(pair["source"])]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["text"] == fill(pair["target"])
    assert out["route"] == "direct"
    assert out["models"]
    assert 0 < out["score"] <= 1
    assert Flag.SPAN_REPAIRED.value not in out["flags"]

    assert main(["translate", "--to", "sw", "--from", "ht", fill(pair["source"])]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert "route" in captured.err


def test_cli_translate_unknown_language_is_one_line(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("DARAJA_MODELS_DIR", str(models_dir))
    assert main(["translate", "--to", "xx", "hello"]) == 1
    err = capsys.readouterr().err
    assert "unknown language code" in err
    assert "Traceback" not in err
