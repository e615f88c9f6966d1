"""The committed fixture models, installed through the store and run on CTranslate2.

Every phrasebook sentence must come out exactly as `expected.json` says, with the engine's
decoding settings (int8; beam 2 and greedy). Also: the OPUS-MT conversion path on a real
Marian-format model, and (optionally, DARAJA_RETRAIN_CHECK=1) a byte-identical retrain.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from translation.store import InstalledPackage, ModelStore

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
EXPECTED: dict[str, list[dict[str, str]]] = json.loads(
    (FIXTURES / "expected.json").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    store = ModelStore(tmp_path_factory.mktemp("models"))
    for entry in MANIFEST["packages"].values():
        store.install_file(FIXTURES / entry["file"])
    return store


def translate(pkg: InstalledPackage, src: str, tgt: str, texts: list[str], beam: int) -> list[str]:
    """What the engine does for one segment batch (no span masking: inputs already masked)."""
    import ctranslate2
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(pkg.sp_model))
    decoder = spm.SentencePieceProcessor(model_file=str(pkg.target_sp_model or pkg.sp_model))
    prefix_src = [pkg.source_prefixes[src]] if src in pkg.source_prefixes else []
    prefix_tgt = [pkg.target_prefixes[tgt]] if tgt in pkg.target_prefixes else []
    translator = ctranslate2.Translator(
        str(pkg.model_dir), device="cpu", compute_type="int8", intra_threads=1
    )
    batch = [prefix_src + sp.encode(t, out_type=str) for t in texts]
    results = translator.translate_batch(
        batch,
        target_prefix=[prefix_tgt] * len(batch) if prefix_tgt else None,
        beam_size=beam,
        max_decoding_length=250,
    )
    return [decoder.decode_pieces(r.hypotheses[0][len(prefix_tgt) :]) for r in results]


def package_for(store: ModelStore, src: str, tgt: str) -> InstalledPackage:
    [pkg] = [p for p in store.list() if p.serves(src, tgt)]
    return pkg


@pytest.mark.parametrize("direction", sorted(EXPECTED))
@pytest.mark.parametrize("beam", [1, 2])
def test_every_phrasebook_sentence_is_exact(store: ModelStore, direction: str, beam: int) -> None:
    src, tgt = direction.split("-")
    pkg = package_for(store, src, tgt)
    store.verify(pkg)
    pairs = EXPECTED[direction]
    got = translate(pkg, src, tgt, [p["source"] for p in pairs], beam)
    wrong = [
        (p["source"], g, p["target"]) for p, g in zip(pairs, got, strict=True) if g != p["target"]
    ]
    assert wrong == []


def test_directions_cover_the_routing_cases() -> None:
    assert {"ht-en", "en-ht", "fr-en", "en-fr", "sw-en", "en-sw"} <= set(EXPECTED)
    assert {"ht-sw", "sw-ht", "fr-sw", "sw-fr"} <= set(EXPECTED)
    # Neither direct nor multilingual: the engine must pivot through English.
    assert "ht-fr" not in EXPECTED
    assert "fr-ht" not in EXPECTED


def test_known_operational_sentences(store: ModelStore) -> None:
    cases: list[tuple[str, str, str, str]] = [
        (
            "ht",
            "en",
            "Inite [0] rive [1] [2], bezwen ranfò.",
            "Unit [0] arrived at [1] [2], need reinforcements.",
        ),
        ("en", "sw", "We need reinforcements.", "Tunahitaji msaada."),
        ("sw", "en", "Majeruhi [0].", "[0] wounded."),
        ("en", "ht", "[0] wounded.", "[0] blese."),
        ("fr", "en", "Nous sommes sous le feu.", "We are under fire."),
        ("en", "fr", "Wait for orders.", "Attendez les ordres."),
        ("ht", "sw", "Nou bezwen ranfò.", "Tunahitaji msaada."),
        ("sw", "fr", "Kikosi [0] kimefika [1].", "L'unité [0] est arrivée à [1]."),
    ]
    for src, tgt, text, want in cases:
        [got] = translate(package_for(store, src, tgt), src, tgt, [text], beam=2)
        assert got == want, (src, tgt, text)


def test_reordered_placeholders_are_renumbered_by_source_order() -> None:
    # en "Wait at [0] for unit [1]." is ht "Tann inite [1] nan [0]." in the phrasebook; as a
    # source the Kreyòl gets its own order, as the engine's masking numbers it.
    ht_en = {p["source"]: p["target"] for p in EXPECTED["ht-en"]}
    assert ht_en["Tann inite [0] nan [1]."] == "Wait at [1] for unit [0]."


def test_opus_mt_zip_converts_without_torch_and_translates_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import main

    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    archive = FIXTURES / "opus-mt-fixture-ht-en.zip"
    out = tmp_path / "ht_en.argosmodel"
    status = main(
        [
            "models",
            "convert-opus-mt",
            str(archive),
            "--from",
            "ht",
            "--to",
            "en",
            "--out",
            str(out),
            "--install",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    store = ModelStore(tmp_path / "models")
    [pkg] = store.list()
    assert pkg.package_id == "opus-mt-ht_en"
    assert pkg.source == "converted:opus-mt"
    store.verify(pkg)
    pairs = EXPECTED["ht-en"]
    got = translate(pkg, "ht", "en", [p["source"] for p in pairs], beam=2)
    assert got == [p["target"] for p in pairs]


def test_conversion_is_deterministic(tmp_path: Path) -> None:
    from translation.convert import convert_opus_mt

    archive = FIXTURES / "opus-mt-fixture-ht-en.zip"
    a = convert_opus_mt(archive, "ht", "en", tmp_path / "a.argosmodel")
    b = convert_opus_mt(archive, "ht", "en", tmp_path / "b.argosmodel")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("DARAJA_RETRAIN_CHECK") != "1",
    reason="retraining needs PyTorch (tools/requirements-train.txt); set DARAJA_RETRAIN_CHECK=1",
)
def test_retraining_gives_byte_identical_artifacts() -> None:
    python = os.environ.get("DARAJA_TRAIN_PYTHON", "/tmp/trainenv/bin/python")
    done = subprocess.run(
        [
            python,
            "tools/train_fixtures.py",
            "--check",
            "--out",
            str(FIXTURES),
            "--only",
            "fixture_en_ht",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "fixture_en_ht: identical" in done.stdout


def test_packages_stay_small_enough_to_commit() -> None:
    for name, entry in MANIFEST["packages"].items():
        assert (FIXTURES / entry["file"]).stat().st_size < 1_500_000, name
