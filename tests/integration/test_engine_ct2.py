"""The CTranslate2 runtime on a small random-weight model: bounds, prefixes, scores, batching."""

from __future__ import annotations

from pathlib import Path

import pytest

from translation.bench import QUICK, build_random_model
from translation.ct2 import Ct2Runtime, DecodingOptions, RuntimeOptions, SegmentRequest
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
