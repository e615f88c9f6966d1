"""Quality estimation on the real fixture models: nonsense is flagged, the phrasebook is not.

The fixture models reproduce the phrasebook and produce fluent nonsense for anything else, so
the held-out set (tests/data/heldout.tsv, operational messages that are not in the phrasebook)
must come out doubtful or unusable, and the phrasebook with real spans (tests/data/inbook.tsv)
must come out ok wherever the model reproduces the reference. The full figures, every pair,
are in the notes (`daraja eval`); these tests run a few pairs of each kind.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.support.models import install_fixture_models
from translation.engine import Engine
from translation.evaluate import evaluate, evaluate_changes
from translation.refset import ChangeSet, ParallelSet, load
from translation.types import Flag, Verdict

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
# One pair per route kind: direct, pivot, multilingual.
PAIRS = [("en", "fr"), ("ht", "fr"), ("sw", "ht")]
# `daraja ARGS` run in-process: (*args, env=..., stdin=...) -> its status and output.
Daraja = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_fixture_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
async def engine(models_dir: Path) -> AsyncIterator[Engine]:
    eng = Engine.from_models_dir(models_dir)
    yield eng
    await eng.close()


async def test_out_of_phrasebook_translations_are_flagged(engine: Engine) -> None:
    refset = load(DATA / "heldout.tsv", (await engine.router()).languages)
    assert isinstance(refset, ParallelSet)
    assert len(refset.rows) >= 150
    reports, _ = await evaluate(engine, refset, PAIRS)
    for report in reports:
        assert report.rate(Verdict.DOUBTFUL, Verdict.UNUSABLE) >= 0.95, report.as_dict()


async def test_phrasebook_translations_that_match_their_reference_are_not_flagged(
    engine: Engine,
) -> None:
    refset = load(DATA / "inbook.tsv", (await engine.router()).languages)
    assert isinstance(refset, ParallelSet)
    reports, _ = await evaluate(engine, refset, PAIRS)
    matching = sum(r.matching for r in reports)
    assert matching > 400
    assert sum(r.matching_flagged for r in reports) / matching <= 0.05


async def test_every_negation_and_number_change_is_flagged(engine: Engine) -> None:
    changes = load(DATA / "critical_changes.tsv", (await engine.router()).languages)
    assert isinstance(changes, ChangeSet)
    report = await evaluate_changes(engine, changes)
    assert report.missed == []
    assert report.flags.get(str(Flag.MEANING_CHANGED)) == report.candidates


async def test_the_back_translation_says_what_the_reader_got(engine: Engine) -> None:
    good = await engine.translate("Hold your position.", "fr", source="en")
    assert good.verdict is Verdict.OK
    assert good.back_text == "Hold your position."
    assert Flag.ROUND_TRIP_SIMILAR in good.flags
    bad = await engine.translate("We counted twelve displaced families.", "fr", source="en")
    assert bad.verdict is not Verdict.OK
    assert bad.back_text
    assert bad.back_text != "We counted twelve displaced families."


@pytest.fixture
def daraja(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Daraja:
    """`daraja ARGS` in-process (`bot.cli.main`), with only the given DARAJA_* settings (the
    developer's are already out, tests/conftest.py) and `stdin` as its standard input."""
    from bot.cli import main

    def run(
        *args: str, env: dict[str, str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            m.setattr(sys, "stdin", io.StringIO(stdin or ""))
            capsys.readouterr()
            status = main(list(args))
            out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["daraja", *args], status, out, err)

    return run


def test_eval_reports_per_pair_figures_and_refuses_a_bad_set(
    models_dir: Path, tmp_path: Path, daraja: Daraja
) -> None:
    env = {"DARAJA_MODELS_DIR": str(models_dir)}
    small = tmp_path / "small.tsv"
    small.write_text(
        "en\tfr\nHold your position.\tTenez votre position.\n"
        "We counted twelve displaced families.\tNous avons compté douze familles déplacées.\n",
        encoding="utf-8",
    )
    done = daraja("eval", str(small), "--json", "--pairs", "en-fr", env=env)
    assert done.returncode == 0, done.stderr
    (pair,) = json.loads(done.stdout)["pairs"]
    assert pair["pair"] == "en-fr"
    assert pair["verdicts"] == {"ok": 1, "doubtful": 0, "unusable": 1}
    assert pair["chrf"] is not None
    assert pair["bleu"] is not None
    assert pair["latency_ms_mean"] > 0
    bad = tmp_path / "bad.tsv"
    bad.write_text("en\tfr\nHello.\tBonjour.\n\n", encoding="utf-8")
    refused = daraja("eval", str(bad), env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"daraja: {bad} line 3: empty line (remove it)"


def test_translate_batch_answers_every_line_in_order(models_dir: Path, daraja: Daraja) -> None:
    lines = [
        json.dumps({"text": "Hold your position.", "to": "fr", "from": "en"}),
        "{not json",
        json.dumps({"text": "Tann lòd.", "to": "en"}),
    ]
    done = daraja(
        "translate",
        "--batch",
        env={"DARAJA_MODELS_DIR": str(models_dir)},
        stdin="\n".join(lines) + "\n",
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["line"] for a in answers] == [1, 2, 3]
    assert answers[0]["text"] == "Tenez votre position."
    assert answers[0]["verdict"] == "ok"
    assert "not JSON" in answers[1]["error"]
    assert answers[2]["text"] == "Wait for orders."
    assert done.returncode == 1  # one line failed


def test_calibration_is_stored_beside_the_models_and_listed(
    tmp_path: Path, daraja: Daraja
) -> None:
    models = install_fixture_models(tmp_path / "models")
    env = {"DARAJA_MODELS_DIR": str(models)}
    before = daraja("models", "list", env=env)
    assert "uncalibrated" in before.stdout
    done = daraja("models", "calibrate", str(DATA / "inbook.tsv"), "--pairs", "en-fr", env=env)
    assert done.returncode == 0, done.stderr
    stored = json.loads((models / "calibration.json").read_text(encoding="utf-8"))
    assert stored["pairs"]["en-fr"]["models"] == ["fixture_en_fr"]
    listed = daraja("models", "list", env=env).stdout
    line = next(x for x in listed.splitlines() if "fixture_en_fr" in x)
    assert "calibrated (en-fr)" in line


def test_install_refuses_a_model_below_the_bar(tmp_path: Path, daraja: Daraja) -> None:
    from bot.engines.bundled import BUNDLED_DIR

    env = {
        "DARAJA_MODELS_DIR": str(tmp_path / "models"),
        "DARAJA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}",
    }
    package = str(BUNDLED_DIR / "fixture_en_fr.argosmodel")
    heldout = str(DATA / "heldout.tsv")
    refused = daraja("models", "install", package, "--eval", heldout, "--min-chrf", "40", env=env)
    assert refused.returncode == 1
    assert "below --min-chrf 40" in refused.stderr
    assert not (tmp_path / "models" / "fixture_en_fr").exists()
    kept = daraja("models", "install", package, "--eval", heldout, "--min-chrf", "5", env=env)
    assert kept.returncode == 0, kept.stderr
    assert (tmp_path / "models" / "fixture_en_fr").is_dir()
