"""The engine's pipeline on fake models: routes, batching, cache, spans, errors, self-test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from tests.unit.translation.engine_fakes import (
    FakeStore,
    Recorder,
    direct,
    fake_text_tools,
    standard_packages,
)
from translation.engine import Engine, EngineConfig
from translation.errors import BadText, MissingModel, ModelError, UnsupportedLanguage
from translation.types import Flag, Route, Verdict


def make_engine(recorder: Recorder, store: FakeStore | None = None, **config: object) -> Engine:
    # The pipeline's mechanics are counted without the round trip's extra model calls
    # (test_engine_quality.py covers quality estimation).
    config.setdefault("quality_estimation", False)
    cfg = EngineConfig(batch_wait_ms=2, **config)  # type: ignore[arg-type]
    return Engine(
        store or FakeStore(standard_packages()),
        cfg,
        runtime_factory=recorder.factory(),
        text_tools=fake_text_tools(),
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def engine(recorder: Recorder) -> AsyncIterator[Engine]:
    eng = make_engine(recorder)
    yield eng
    await eng.close()


async def test_direct_translation_reports_route_model_and_score(engine: Engine) -> None:
    t = await engine.translate("Unit arrived", "en", source="ht")
    assert t.text == "Unit arrived >en"
    assert (t.source, t.target, t.source_decided_by) == ("ht", "en", "given")
    assert t.route is Route.DIRECT
    assert t.models == ("ht_en",)
    assert t.score is not None
    assert 0.0 < t.score <= 1.0
    assert t.verdict is Verdict.OK


async def test_pivot_goes_through_english(engine: Engine) -> None:
    t = await engine.translate("Unit arrived", "fr", source="ht")
    assert t.text == "Unit arrived >en >fr"
    assert t.route is Route.PIVOT
    assert t.models == ("ht_en", "en_fr")


async def test_multilingual_route_sends_the_target_prefix(engine: Engine) -> None:
    t = await engine.translate("Unit arrived", "sw", source="ht")
    assert t.route is Route.MULTILINGUAL
    assert t.models == ("multi_ht_sw",)
    assert t.text == "Unit arrived >sw"


async def test_detected_language_and_how(engine: Engine) -> None:
    t = await engine.translate("Unit arrived", "en", chat_languages=("ht",))
    assert (t.source, t.source_decided_by) == ("ht", "prior:chat")


async def test_message_already_in_target_language_is_not_translated(
    engine: Engine, recorder: Recorder
) -> None:
    t = await engine.translate("Unit arrived", "ht", chat_languages=("ht",))
    assert t.route is Route.SAME
    assert t.text == "Unit arrived"
    assert recorder.batches == []


async def test_uncertain_detection_is_flagged(engine: Engine) -> None:
    t = await engine.translate("hello there", "fr")  # fake detector: en at 0.3
    assert Flag.LANGUAGE_UNCERTAIN in t.flags


async def test_translate_many_runs_every_target_and_shares_the_pivot_leg(
    engine: Engine, recorder: Recorder
) -> None:
    ts = await engine.translate_many("Unit arrived", ["en", "fr", "sw", "ht"], source="ht")
    assert [t.target for t in ts] == ["en", "fr", "sw", "ht"]
    assert [t.route for t in ts] == [Route.DIRECT, Route.PIVOT, Route.MULTILINGUAL, Route.SAME]
    # ht->en is needed by the direct "en" result and the pivot to fr: inferred once.
    assert [m for m, _ in recorder.batches].count("ht_en") == 1


async def test_translate_many_can_return_errors_in_place() -> None:
    rec = Recorder()
    eng = make_engine(rec, FakeStore([direct("ht", "en")]))
    try:
        out = await eng.translate_many("Bonjou", ["en", "sw"], source="ht", return_exceptions=True)
        assert out[0].text == "Bonjou >en"  # type: ignore[union-attr]
        assert isinstance(out[1], MissingModel)
        with pytest.raises(MissingModel):
            await eng.translate_many("Bonjou", ["en", "sw"], source="ht")
    finally:
        await eng.close()


async def test_200_concurrent_calls_are_batched_and_matched_to_their_callers(
    engine: Engine, recorder: Recorder
) -> None:
    texts = [f"message number {chr(65 + i % 26)}{i}" for i in range(200)]
    results = await asyncio.gather(*(engine.translate(x, "en", source="sw") for x in texts))
    assert [r.text for r in results] == [f"{x} >en" for x in texts]
    # Numbers in the texts are protected spans: they came back byte-identical.
    assert len(recorder.batches) < 20
    assert all(len(b) <= 32 for _, b in recorder.batches)
    assert engine.stats().model_calls == len(recorder.batches)


async def test_identical_segments_in_flight_are_translated_once(
    engine: Engine, recorder: Recorder
) -> None:
    results = await asyncio.gather(
        *(engine.translate("Need water. Need water.", "en", source="sw") for _ in range(10))
    )
    assert {r.text for r in results} == {"Need water. >en Need water. >en"}
    assert recorder.segments == ["Need water."]


async def test_repeated_message_is_served_from_the_cache(
    engine: Engine, recorder: Recorder
) -> None:
    first = await engine.translate("Road closed", "en", source="fr")
    second = await engine.translate("Road closed", "en", source="fr")
    assert first == second
    assert recorder.segments == ["Road closed"]
    assert engine.stats().cache_hits >= 1


async def test_cache_is_bounded_and_can_be_disabled(recorder: Recorder) -> None:
    eng = make_engine(recorder, cache_size=0)
    try:
        await eng.translate("Road closed", "en", source="fr")
        await eng.translate("Road closed", "en", source="fr")
        assert recorder.segments == ["Road closed", "Road closed"]
    finally:
        await eng.close()


async def test_spans_come_back_byte_identical(engine: Engine) -> None:
    t = await engine.translate("Unit KE-3 at 14:30 with 12 men", "fr", source="ht")
    for span in ("KE-3", "14:30", "12"):
        assert span in t.text
    assert t.spans == ("KE-3", "14:30", "12")
    assert Flag.SPAN_REPAIRED not in t.flags


async def test_lost_placeholder_is_repaired_by_translating_around_it(
    recorder: Recorder,
) -> None:
    recorder.drop_placeholders = True
    eng = make_engine(recorder)
    try:
        t = await eng.translate("drop unit KE-3 at 14:30 now", "en", source="ht")
        assert "KE-3" in t.text
        assert "14:30" in t.text
        assert t.text.index("KE-3") < t.text.index("14:30")
        assert Flag.SPAN_REPAIRED in t.flags
        # The model saw the text around the spans, without placeholders.
        assert "at" in recorder.segments
    finally:
        await eng.close()


async def test_each_sentence_reaches_the_model_numbered_from_zero(
    engine: Engine, recorder: Recorder
) -> None:
    t = await engine.translate("Unit KE-3 at 14:30. Then 12 men at 15:00.", "en", source="ht")
    # The second sentence is masked [2], [3] across the message, but the model saw it as it
    # would see it alone.
    assert recorder.segments == ["Unit [0] at [1].", "Then [0] men at [1]."]
    assert t.text == "Unit KE-3 at 14:30. >en Then 12 men at 15:00. >en"
    assert Flag.SPAN_REPAIRED not in t.flags


async def test_repair_keeps_the_separator_after_a_span(recorder: Recorder) -> None:
    recorder.drop_placeholders = True
    eng = make_engine(recorder)
    try:
        t = await eng.translate("drop at 14:30, need water", "en", source="ht")
        assert "need water" in recorder.segments  # the comma stays out of the model's input
        assert t.text == "drop at >en 14:30, need water >en"
        assert Flag.SPAN_REPAIRED in t.flags
    finally:
        await eng.close()


async def test_numbers_only_message_is_copied_without_a_model(
    engine: Engine, recorder: Recorder
) -> None:
    t = await engine.translate("14:30 KE-3", "en", source="ht")
    assert t.text == "14:30 KE-3"
    assert t.route is Route.DIRECT
    assert t.flags == ()  # nothing was translated, so nothing was checked either
    assert recorder.batches == []


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
async def test_empty_text_comes_back_unchanged(engine: Engine, text: str) -> None:
    t = await engine.translate(text, "en")
    assert t.route is Route.SAME
    assert t.source_decided_by == "empty"
    assert t.text == text.replace("\r", "")


async def test_lone_surrogates_are_refused(engine: Engine) -> None:
    with pytest.raises(BadText, match="send it again"):
        await engine.translate("bad \ud800 text", "en", source="ht")


async def test_control_characters_are_removed(engine: Engine) -> None:
    t = await engine.translate("Road\x00 closed\x07", "en", source="fr")
    assert t.text == "Road closed >en"


async def test_unknown_language_codes(engine: Engine) -> None:
    with pytest.raises(UnsupportedLanguage, match="daraja models catalog"):
        await engine.translate("x", "klingon")
    with pytest.raises(UnsupportedLanguage):
        await engine.translate("x", "en", source="xx")


async def test_missing_pair_says_what_to_install(recorder: Recorder) -> None:
    eng = make_engine(recorder, FakeStore([direct("ht", "en")]))
    try:
        with pytest.raises(MissingModel, match="daraja models install"):
            await eng.translate("Bonjou", "fr", source="ht")
    finally:
        await eng.close()


def _word(i: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return letters[i % 26] + letters[(i // 26) % 26] + letters[(i // 676) % 26]


async def test_100k_characters_are_segmented_never_truncated(
    engine: Engine, recorder: Recorder
) -> None:
    sentences = [f"Patrol {_word(i)} moves north." for i in range(5000)]
    text = " ".join(sentences)[:100_000]
    assert len(text) == 100_000
    t = await engine.translate(text, "en", source="sw")
    # Every sentence went to the model and came back, in order; the cut-off tail too.
    assert t.text.count(">en") == len(text.split(". "))
    assert t.text.startswith("Patrol aaa moves north. >en Patrol baa moves north. >en")
    assert t.text.endswith(text.split(". ")[-1] + " >en")
    assert all(len(b) <= 32 for _, b in recorder.batches)


async def test_overlong_segment_is_split_and_flagged(engine: Engine) -> None:
    # The fake runtime reports a split for inputs over 350 characters, like a real model
    # whose token limit is exceeded.
    t = await engine.translate("a" * 1000, "en", source="sw")
    assert t.text.count("a") == 1000
    assert Flag.TRUNCATED_INPUT in t.flags


async def test_model_loads_once_under_concurrent_first_use(
    engine: Engine, recorder: Recorder
) -> None:
    await asyncio.gather(*(engine.translate(f"m {i}x", "en", source="ht") for i in range(50)))
    assert recorder.loads == ["ht_en"]


async def test_corrupt_package_fails_its_pairs_only(recorder: Recorder) -> None:
    store = FakeStore(standard_packages(), corrupt=["ht_en"])
    eng = make_engine(recorder, store)
    try:
        with pytest.raises(ModelError, match=r"ht_en.*daraja models install"):
            await eng.translate("Bonjou", "en", source="ht")
        assert (await eng.translate("Hello", "fr", source="en")).text == "Hello >fr"
        assert "ht_en" not in recorder.loads
    finally:
        await eng.close()


async def test_a_model_that_throws_fails_that_call_only(recorder: Recorder) -> None:
    recorder.explode = "boom"
    eng = make_engine(recorder)
    try:
        results = await asyncio.gather(
            eng.translate("all good", "en", source="ht"),
            eng.translate("boom now", "en", source="ht"),
            eng.translate("fine too", "en", source="ht"),
            return_exceptions=True,
        )
        assert results[0].text == "all good >en"  # type: ignore[union-attr]
        assert isinstance(results[1], ModelError)
        assert results[2].text == "fine too >en"  # type: ignore[union-attr]
    finally:
        await eng.close()


async def test_a_hung_model_gives_model_error(recorder: Recorder) -> None:
    recorder.gate = threading.Event()
    eng = make_engine(recorder, inference_timeout_s=0.05)
    try:
        with pytest.raises(ModelError, match="did not answer"):
            await eng.translate("stuck", "en", source="ht")
    finally:
        recorder.gate.set()
        await eng.close()


async def test_self_test_reports_and_refuses_failing_pairs(recorder: Recorder) -> None:
    recorder.explode = "Kitengo"  # the sw self-test sentence breaks every sw model
    eng = make_engine(recorder)
    try:
        report = await eng.self_test()
        failed = {(c.source, c.target) for c in report.failures}
        assert failed == {("sw", "en"), ("sw", "ht")}
        assert not report.ok
        assert {(c.source, c.target) for c in report.checks} >= {("ht", "en"), ("en", "fr")}
        with pytest.raises(MissingModel, match="self-test"):
            await eng.translate("Habari", "en", source="sw")
        # ht->sw still works (its own model passed).
        assert (await eng.translate("Bonjou", "sw", source="ht")).text == "Bonjou >sw"
    finally:
        await eng.close()


async def test_self_test_with_exact_expected_sentences(recorder: Recorder) -> None:
    eng = make_engine(recorder)
    try:
        report = await eng.self_test(
            {("ht", "en"): [("Bonjou", "Bonjou >en")], ("en", "fr"): [("Hi", "Salut")]}
        )
        by_pair = {(c.source, c.target): c for c in report.checks}
        assert by_pair[("ht", "en")].ok
        assert not by_pair[("en", "fr")].ok
        assert "different" in by_pair[("en", "fr")].reason
    finally:
        await eng.close()


async def test_closed_engine_refuses_work(engine: Engine) -> None:
    await engine.close()
    with pytest.raises(ModelError, match="closed"):
        await engine.translate("x", "en", source="ht")
