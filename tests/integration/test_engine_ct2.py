"""The CTranslate2 runtime on a small random-weight model: bounds, prefixes, scores, batching."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from translation.bench import QUICK, build_random_model
from translation.ct2 import (
    BOUND_EXTRA,
    BOUND_RATIO,
    Ct2Runtime,
    DecodingOptions,
    RuntimeOptions,
    SegmentRequest,
)
from translation.errors import ModelError


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_random_model(tmp_path_factory.mktemp("ct2"), QUICK)


def load(model: tuple[Path, Path], **decoding: int) -> Ct2Runtime:
    opts = DecodingOptions(**{"beam_size": 1, "max_decoding_length": 20, **decoding})
    return Ct2Runtime.load(
        "random", model[0], model[1], options=RuntimeOptions(intra_threads=1), decoding=opts
    )


def test_overlong_input_is_split_instead_of_crashing(random_model: tuple[Path, Path]) -> None:
    # The model has 512 positions; 2,000 words would raise inside CTranslate2 unsplit.
    runtime = load(random_model, max_input_tokens=64)
    text = " ".join(["patrol road north"] * 700)
    (result,) = runtime.translate([SegmentRequest(text)])
    assert result.split
    assert result.log_prob <= 0.0
    (short,) = runtime.translate([SegmentRequest("patrol road north")])
    assert not short.split


def test_one_result_per_request_in_order_and_empty_input(random_model: tuple[Path, Path]) -> None:
    runtime = load(random_model)
    texts = ["unit arrived", "", "road closed", "unit arrived"]
    results = runtime.translate([SegmentRequest(t) for t in texts])
    assert len(results) == 4
    assert results[1].text == ""
    assert results[0] == results[3]


def test_a_back_translation_stops_near_the_length_of_what_it_translates_back_to(
    random_model: tuple[Path, Path],
) -> None:
    # The random model never ends a sentence by itself: decoding runs to the limit.
    runtime = load(random_model, min_decoding_length=60, max_decoding_length=60)
    text = "unit arrived at the bridge near the market"
    (free,) = runtime.translate([SegmentRequest(text)])
    (bounded,) = runtime.translate([SegmentRequest(text, bound="unit arrived")])
    assert free.tokens == 60
    assert bounded.tokens <= int(len(runtime.encode("unit arrived")) * BOUND_RATIO) + BOUND_EXTRA
    # In a batch with ordinary requests nothing is cut short.
    mixed = runtime.translate([SegmentRequest(text, bound="unit arrived"), SegmentRequest(text)])
    assert [r.tokens for r in mixed] == [60, 60]


def test_back_translations_batched_together_each_stop_at_their_own_bound(
    random_model: tuple[Path, Path],
) -> None:
    # A short message's runaway back-translation does not decode as long as a long one's.
    runtime = load(random_model, min_decoding_length=60, max_decoding_length=60)
    text = "unit arrived at the bridge near the market"
    short, long = "unit arrived", "unit arrived at the bridge near the market before the night"
    results = runtime.translate([SegmentRequest(text, bound=b) for b in (short, long, short)])
    caps = [int(len(runtime.encode(b)) * BOUND_RATIO) + BOUND_EXTRA for b in (short, long, short)]
    assert caps[0] < caps[1]
    assert [r.tokens for r in results] == caps


def test_target_prefix_is_not_in_the_output(random_model: tuple[Path, Path]) -> None:
    runtime = load(random_model, min_decoding_length=5, max_decoding_length=5)
    prefix = ("\u2581x7",)
    (plain,) = runtime.translate([SegmentRequest("unit arrived", target_prefix=prefix)])
    assert not plain.text.startswith("x7")


def test_missing_model_files_name_the_package_and_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"package broken: .*model.bin is missing.*reinstall"):
        Ct2Runtime.load(
            "broken",
            tmp_path,
            tmp_path / "sp.model",
            options=RuntimeOptions(),
            decoding=DecodingOptions(),
        )


SPAN_CORPUS = Path(__file__).resolve().parents[1] / "data" / "span_corpus.jsonl"


@pytest.mark.skipif(not SPAN_CORPUS.exists(), reason="span corpus not present")
async def test_spans_survive_a_real_model_that_knows_no_placeholders(
    random_model: tuple[Path, Path],
) -> None:
    """A random-weight model drops or garbles placeholders; the engine repairs every one."""
    import json

    from translation.bench import _BenchPackage, _BenchStore
    from translation.engine import Engine, EngineConfig
    from translation.types import Flag

    pkg = _BenchPackage(model_dir=random_model[0], sp_model=random_model[1])
    engine = Engine(
        _BenchStore(pkg),
        EngineConfig(threads=1, beam_size=1, max_decoding_length=24, max_input_tokens=32),
    )
    items = [json.loads(x) for x in SPAN_CORPUS.read_text(encoding="utf-8").splitlines() if x]
    items = [it for it in items if it["lang"] == "en"]
    try:
        results = await asyncio.gather(
            *(engine.translate(it["text"], "fr", source="en") for it in items)
        )
        long = await engine.translate("patrol north " * 200, "fr", source="en")
    finally:
        await engine.close()
    lost = [
        (it["text"], span, r.text)
        for it, r in zip(items, results, strict=True)
        for span in set(it["spans"])
        if r.text.count(span) < it["spans"].count(span)
    ]
    assert lost == []
    assert any(Flag.SPAN_REPAIRED in r.flags for r in results)
    assert Flag.TRUNCATED_INPUT in long.flags


def _package(random_model: tuple[Path, Path], out: Path) -> Path:
    """A real .argosmodel (en->fr) around the random model."""
    import json
    import zipfile

    archive = out / "random_en_fr.argosmodel"
    meta = {
        "package_version": "1.0",
        "type": "translate",
        "from_code": "en",
        "to_code": "fr",
        "name": "random test model",
    }
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("random_en_fr/metadata.json", json.dumps(meta))
        zf.write(random_model[1], "random_en_fr/sentencepiece.model")
        for f in sorted(random_model[0].iterdir()):
            zf.write(f, f"random_en_fr/model/{f.name}")
    return archive


async def test_store_checksum_is_checked_when_a_model_loads(
    random_model: tuple[Path, Path], tmp_path: Path
) -> None:
    from translation.engine import Engine, EngineConfig
    from translation.errors import ModelError
    from translation.store import ModelStore

    root = tmp_path / "models"
    ModelStore(root).install_file(_package(random_model, tmp_path))
    engine = Engine.from_models_dir(root, EngineConfig(threads=1, max_decoding_length=8))
    try:
        ok = await engine.translate("unit north", "fr", source="en")
        assert ok.models == ("random_en_fr",)
    finally:
        await engine.close()

    model_bin = next(root.rglob("model.bin"))
    data = bytearray(model_bin.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_bin.write_bytes(bytes(data))
    engine = Engine.from_models_dir(root, EngineConfig(threads=1, max_decoding_length=8))
    try:
        for _ in range(2):  # refused every time, without a reload attempt hanging
            with pytest.raises(ModelError, match=r"random_en_fr.*daraja models remove"):
                await engine.translate("unit north", "fr", source="en")
        report = await engine.self_test()
        assert [(c.source, c.target, c.ok) for c in report.checks] == [("en", "fr", False)]
    finally:
        await engine.close()
