"""Models installed or removed while the bot runs: the engine's reload."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from tests.unit.translation.engine_fakes import (
    FakeStore,
    Recorder,
    direct,
    fake_text_tools,
    multi,
    standard_packages,
)
from translation.engine import Engine, EngineConfig
from translation.routing import overlaps
from translation.types import Route


def make_engine(recorder: Recorder, store: FakeStore) -> Engine:
    return Engine(
        store,
        EngineConfig(batch_wait_ms=2),
        runtime_factory=recorder.factory(),
        text_tools=fake_text_tools(),
    )


async def test_a_package_installed_after_start_is_used_after_reload() -> None:
    recorder = Recorder()
    store = FakeStore([direct("ht", "en")])
    engine = make_engine(recorder, store)
    try:
        first = await engine.translate_many("Bonjou", ["fr"], source="ht", return_exceptions=True)
        assert not hasattr(first[0], "text")  # no ht->fr route yet
        store.packages.append(direct("ht", "fr"))
        added, removed = await engine.reload()
        assert (added, removed) == (["ht_fr"], [])
        result = await engine.translate("Bonjou", "fr", source="ht")
        assert result.route is Route.DIRECT
        assert result.models == ("ht_fr",)
    finally:
        await engine.close()


async def test_translation_under_way_finishes_on_the_removed_model() -> None:
    recorder = Recorder()
    store = FakeStore([direct("ht", "en")])
    engine = make_engine(recorder, store)
    try:
        await engine.translate("warm", "en", source="ht")  # the model is loaded
        recorder.gate = threading.Event()
        running = asyncio.create_task(engine.translate("Inite 2 rive", "en", source="ht"))
        for _ in range(1000):  # until the model has the segment
            if len(recorder.batches) >= 2:
                break
            await asyncio.sleep(0.01)
        store.packages.clear()
        reload = asyncio.create_task(engine.reload())
        await asyncio.sleep(0.1)
        assert not reload.done()  # waits for the translation begun on the old model
        recorder.gate.set()
        result = await running
        assert result.text == "Inite 2 rive >en"
        assert await reload == ([], ["ht_en"])
        assert engine.stats().loaded_models == ()
    finally:
        recorder.gate = None
        await engine.close()


async def test_an_unchanged_package_stays_loaded_and_a_replaced_one_is_reloaded() -> None:
    recorder = Recorder()
    ht_en, en_fr = direct("ht", "en"), direct("en", "fr")
    store = FakeStore([ht_en, en_fr])
    engine = make_engine(recorder, store)
    try:
        await engine.translate("a", "en", source="ht")
        await engine.translate("b", "fr", source="en")
        store.packages = [ht_en, replace(en_fr, sha256="1" * 64)]
        await engine.reload()
        await engine.translate("c", "en", source="ht")
        await engine.translate("d", "fr", source="en")
        assert recorder.loads == ["ht_en", "en_fr", "en_fr"]
    finally:
        await engine.close()


def test_overlaps_name_the_package_used_and_why() -> None:
    packages = [*standard_packages(), direct("ht", "sw"), multi("aaa_multi", ("ht", "sw"))]
    found = {(o.source, o.target): o for o in overlaps(packages)}
    ht_sw = found[("ht", "sw")]
    assert ht_sw.winner == "ht_sw"
    assert set(ht_sw.others) == {"aaa_multi", "multi_ht_sw"}
    assert "direct package is preferred over a multilingual one" in ht_sw.reason
    sw_ht = found[("sw", "ht")]
    assert (sw_ht.winner, sw_ht.others) == ("aaa_multi", ("multi_ht_sw",))
    assert sw_ht.reason == "first by package id among packages of the same kind"
    assert ("en", "fr") not in found
