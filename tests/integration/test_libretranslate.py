"""The LibreTranslate backend through the real engine, against fake servers that answer what
the real LibreTranslate 1.9.6 answers (`tests/support/fake_libretranslate.py`; the real server
itself is exercised by `test_libretranslate_real.py` where it is installed).

The local models are small fakes behind the engine's runtime seam (tagging text `<local>`):
what is under test is the engine's use of the servers, its fail-over to the local route, and
that span protection and quality flags still apply. The last test fails over to the real
bundled CTranslate2 fixture models.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_libretranslate import FakeLibreTranslate
from translation.ct2 import SegmentRequest, SegmentResult
from translation.engine import EngineConfig, TextTools
from translation.libretranslate import (
    ClientLimits,
    LibreTranslateClient,
    RemoteFirstEngine,
    RemoteUnavailable,
)
from translation.types import Flag, Route

API_KEY = "lt-key-0123456789"


# -- local models: fakes behind the engine's runtime seam -----------------------------------


@dataclass(frozen=True)
class Package:
    package_id: str
    from_codes: tuple[str, ...]
    to_codes: tuple[str, ...]
    multilingual: bool = False
    target_prefixes: dict[str, str] = field(default_factory=dict, hash=False)
    source_prefixes: dict[str, str] = field(default_factory=dict, hash=False)
    model_dir: Path = Path("/nonexistent")
    sp_model: Path = Path("/nonexistent/sp.model")
    sha256: str = "0" * 64

    def serves(self, src: str, tgt: str) -> bool:
        return src != tgt and src in self.from_codes and tgt in self.to_codes


class Store:
    def __init__(self, packages: Sequence[Package]) -> None:
        self.packages = list(packages)

    def list(self) -> list[Package]:
        return list(self.packages)

    def verify(self, pkg: Any) -> None:
        pass


class LocalRuntime:
    """Marks text as locally translated; placeholders kept."""

    calls: list[str] = []  # noqa: RUF012 - shared record across instances of one test

    def __init__(self, pkg: Package) -> None:
        self.name = pkg.package_id

    def translate(self, requests: Sequence[SegmentRequest]) -> list[SegmentResult]:
        LocalRuntime.calls.extend(r.text for r in requests)
        return [SegmentResult(f"{r.text} <local>", -0.1, 3) for r in requests]

    def close(self) -> None:
        pass


PACKAGES = [Package(f"{a}_{b}", (a,), (b,)) for a, b in (("ht", "en"), ("en", "ht"), ("sw", "en"))]


@pytest.fixture
async def server() -> AsyncIterator[FakeLibreTranslate]:
    fake = await FakeLibreTranslate(require_key=API_KEY).start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def backup() -> AsyncIterator[FakeLibreTranslate]:
    fake = await FakeLibreTranslate(require_key=API_KEY).start()
    try:
        yield fake
    finally:
        await fake.stop()


def engine_for(*urls: str, timeout: float = 10.0) -> RemoteFirstEngine:
    LocalRuntime.calls = []
    client = LibreTranslateClient(urls, api_key=API_KEY, timeout_s=timeout)
    return RemoteFirstEngine(
        Store(PACKAGES),
        # The requests each server gets are counted: no round trip for quality estimation.
        EngineConfig(batch_wait_ms=1, verify_checksums=False, quality_estimation=False),
        runtime_factory=LocalRuntime,
        text_tools=TextTools.default(),
        client=client,
    )


TEXT = "Inite KE-3 rive Kenscoff a 14:30"


async def test_server_translates_masked_segments_and_spans_come_back(
    server: FakeLibreTranslate,
) -> None:
    engine = engine_for(server.url)
    try:
        result = await engine.translate(TEXT, "en", source="ht")
    finally:
        await engine.close()
    assert result.route == Route.REMOTE
    assert result.models == ("libretranslate",)
    assert result.score is None  # no model probability from a server
    # The protected spans are reinserted byte for byte by Daraja, around the server's words.
    for span in ("KE-3", "Kenscoff", "14:30"):
        assert span in result.text
    assert result.text.startswith("Unit KE-3 arrived")
    assert LocalRuntime.calls == []
    (body,) = server.requests
    # The server saw placeholders, never the spans; the documented request shape.
    sent = " ".join(body["q"])
    assert "KE-3" not in sent
    assert "14:30" not in sent
    assert re.search(r"\[\d+\]", sent)
    assert (body["source"], body["target"], body["format"]) == ("ht", "en", "text")
    assert body["api_key"] == API_KEY


async def test_server_losing_placeholders_is_repaired_and_flagged(
    server: FakeLibreTranslate,
) -> None:
    server.script = ["drop_placeholders"]
    engine = engine_for(server.url)
    try:
        result = await engine.translate(TEXT, "en", source="ht")
    finally:
        await engine.close()
    assert Flag.SPAN_REPAIRED in result.flags
    for span in ("KE-3", "Kenscoff", "14:30"):
        assert span in result.text


@pytest.mark.parametrize("failure", ["500", "429", "malformed"])
async def test_failing_server_fails_over_to_the_next(
    server: FakeLibreTranslate, backup: FakeLibreTranslate, failure: str
) -> None:
    server.script = [failure, failure]  # a 500 is retried once on the same server
    engine = engine_for(server.url, backup.url)
    try:
        first = await engine.translate(TEXT, "en", source="ht")
        # The failed server cools down: the next message goes straight to the other one.
        second = await engine.translate("Nou bezwen 3 machin", "en", source="ht")
    finally:
        await engine.close()
    assert (first.route, second.route) == (Route.REMOTE, Route.REMOTE)
    assert len(server.requests) == (2 if failure == "500" else 1)
    assert len(backup.requests) == 2
    assert LocalRuntime.calls == []


async def test_no_server_available_falls_back_to_the_local_models(
    server: FakeLibreTranslate,
) -> None:
    server.script = ["429"]
    engine = engine_for(server.url, "http://127.0.0.1:9")  # nothing listens on port 9
    try:
        result = await engine.translate(TEXT, "en", source="ht")
        again = await engine.translate("Nou bezwen", "en", source="ht")
    finally:
        await engine.close()
    assert result.route == Route.DIRECT
    assert result.models == ("ht_en",)
    assert "<local>" in result.text
    for span in ("KE-3", "Kenscoff", "14:30"):
        assert span in result.text
    assert result.score is not None
    # Both servers are cooling down: the second message did not ask them again.
    assert again.route == Route.DIRECT
    assert len(server.requests) == 1


async def test_slow_server_times_out_and_the_local_models_answer(
    server: FakeLibreTranslate,
) -> None:
    server.script = ["slow"]
    engine = engine_for(server.url, timeout=0.3)
    try:
        result = await engine.translate(TEXT, "en", source="ht")
    finally:
        await engine.close()
    assert result.route == Route.DIRECT
    assert "<local>" in result.text


async def test_wrong_api_key_is_not_retried_and_falls_back(server: FakeLibreTranslate) -> None:
    client = LibreTranslateClient([server.url], api_key="wrong-key-000")
    with pytest.raises(RemoteUnavailable, match="API key refused"):
        await client.translate(["Nou bezwen"], "ht", "en")
    with pytest.raises(RemoteUnavailable, match="no LibreTranslate server available"):
        await client.translate(["Nou bezwen"], "ht", "en")
    assert len(server.requests) == 1  # the long auth cooldown: not asked again
    assert client.servers[server.url].auth_down_until > 0
    await client.close()


async def test_pair_a_server_does_not_serve_goes_local_and_is_remembered(
    server: FakeLibreTranslate,
) -> None:
    engine = engine_for(server.url)
    try:
        first = await engine.translate("Habari 14:30", "en", source="sw")
        second = await engine.translate("Habari tena", "en", source="sw")
        remote = await engine.translate("Nou bezwen", "en", source="ht")
    finally:
        await engine.close()
    assert (first.route, second.route, remote.route) == (Route.DIRECT, Route.DIRECT, Route.REMOTE)
    # sw is not in its /languages: never asked about it; ht→en still remote.
    assert [r["source"] for r in server.requests] == ["ht"]


async def test_pivot_pair_is_asked_directly_of_the_server(server: FakeLibreTranslate) -> None:
    """Locally ht→fr would pivot through English; the server does not list ht→fr, so it is
    not asked and the local pivot answers."""
    engine = engine_for(server.url)
    engine._store = Store([*PACKAGES, Package("en_fr", ("en",), ("fr",))])
    try:
        result = await engine.translate("Nou bezwen", "fr", source="ht")
    finally:
        await engine.close()
    assert server.requests == []
    assert result.route == Route.PIVOT


async def test_self_test_checks_the_local_models_only(server: FakeLibreTranslate) -> None:
    engine = engine_for(server.url)
    try:
        report = await engine.self_test()
    finally:
        await engine.close()
    assert report.checks
    assert server.requests == []


async def test_languages_lists_the_servers_pairs(server: FakeLibreTranslate) -> None:
    client = LibreTranslateClient([server.url])
    try:
        pairs = await client.pairs()
    finally:
        await client.close()
    assert pairs == {("ht", "en"), ("en", "ht"), ("en", "fr"), ("fr", "en")}


async def test_refused_request_is_not_sent_to_other_servers(
    server: FakeLibreTranslate, backup: FakeLibreTranslate
) -> None:
    client = LibreTranslateClient([server.url, backup.url], api_key=API_KEY)
    server.script = ["bad_format"]
    backup.script = ["bad_format"]
    try:
        with pytest.raises(RemoteUnavailable, match="format is not supported"):
            await client.translate(["Nou bezwen"], "ht", "en")
    finally:
        await client.close()
    assert len(server.requests) + len(backup.requests) == 1


def test_settings_put_the_servers_in_front_of_the_installed_models(tmp_path: Path) -> None:
    from bot.engines.factory import build_engine
    from bot.settings import load_settings

    plain = build_engine(load_settings(models_dir=tmp_path))
    remote = build_engine(
        load_settings(
            models_dir=tmp_path,
            libretranslate_urls="http://127.0.0.1:5000, http://127.0.0.1:5001",
            libretranslate_api_key=API_KEY,
            libretranslate_timeout=3,
            libretranslate_in_flight=4,
            libretranslate_batch_limit=8,
            libretranslate_segments_per_min=600,
        )
    )
    assert not isinstance(plain, RemoteFirstEngine)
    assert isinstance(remote, RemoteFirstEngine)
    assert remote.client.urls == ["http://127.0.0.1:5000", "http://127.0.0.1:5001"]
    assert (remote.client.api_key, remote.client.timeout_s) == (API_KEY, 3)
    limits = remote.client.limits
    assert (limits.max_in_flight, limits.batch_limit, limits.per_minute) == (4, 8, 600)
    assert limits.char_limit is None  # 0: only what a server publishes


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"


@pytest.mark.skipif(not (FIXTURES / "expected.json").exists(), reason="no fixture models")
async def test_fail_over_to_the_real_fixture_models_gives_their_exact_translation(
    tmp_path: Path, server: FakeLibreTranslate
) -> None:
    """The servers are down (500 everywhere): the bundled CTranslate2 models answer, exactly as
    the plain engine would, and the self-test still passes on them."""
    import json

    from translation.engine import Engine
    from translation.store import ModelStore

    store = ModelStore(tmp_path)
    for archive in sorted(FIXTURES.glob("fixture_ht_en.argosmodel")):
        store.install_file(archive)
    sentence = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))["ht-en"][0]
    source = sentence["source"].replace("[0]", "KE-3").replace("[1]", "14:30")
    config = EngineConfig(threads=1, beam_size=2)
    server.script = ["500"] * 4
    remote = RemoteFirstEngine.from_models_dir(
        tmp_path, config, client=LibreTranslateClient([server.url], api_key=API_KEY)
    )
    plain = Engine.from_models_dir(tmp_path, config)
    try:
        report = await remote.self_test()
        got = await remote.translate(source, "en", source="ht")
        want = await plain.translate(source, "en", source="ht")
    finally:
        await remote.close()
        await plain.close()
    assert report.ok
    assert (got.text, got.route, got.models) == (want.text, want.route, want.models)
    assert got.route == Route.DIRECT
    assert len(server.requests) == 2  # one try and one retry, then the local model


# -- the real server's answers: pairs, keys, limits, bursts, timeouts --------------------------

LACKS_HT = {"en": ["fr"], "fr": ["en"], "ht": []}


async def started(**kwargs: Any) -> FakeLibreTranslate:
    return await FakeLibreTranslate(**kwargs).start()


def engine_over(client: LibreTranslateClient) -> RemoteFirstEngine:
    LocalRuntime.calls = []
    return RemoteFirstEngine(
        Store(PACKAGES),
        # Requests are counted: no round trip for quality estimation.
        EngineConfig(batch_wait_ms=1, verify_checksums=False, quality_estimation=False),
        runtime_factory=LocalRuntime,
        text_tools=TextTools.default(),
        client=client,
    )


_NEEDS = "dlo manje machin gaz radyo doktè kamyon moun pen diri pwa sik sèl lwil bwa kawoutchou"
# Distinct words: the cache would otherwise answer every message after the first.
MESSAGES = [f"Inite KE-3 rive Kenscoff a 14:30, nou bezwen {w}" for w in _NEEDS.split()]


async def test_a_pair_one_server_lacks_is_served_remotely_by_the_other() -> None:
    """Target: with two servers of which one lacks a pair, 100% of that pair's messages are
    served remotely by the other (the one lacking it is never asked for it)."""
    lacking = await started(supported=LACKS_HT)
    full = await started()
    engine = engine_over(LibreTranslateClient([lacking.url, full.url]))
    try:
        results = [await engine.translate(m, "en", source="ht") for m in MESSAGES]
    finally:
        await engine.close()
        await lacking.stop()
        await full.stop()
    assert [r.route for r in results] == [Route.REMOTE] * len(MESSAGES)
    assert lacking.requests == []
    assert len(full.requests) == len(MESSAGES)
    assert LocalRuntime.calls == []
    assert lacking.languages_calls == 1  # cached, not asked per message


async def test_a_remote_translation_whose_back_check_ran_locally_is_still_remote() -> None:
    """With quality estimation on, the server serves ht→en but not en→ht: the translation
    is the server's (route `libretranslate`), its back-translation comes from the local
    models, and that does not turn the reader's route into the local one."""
    server = await started(supported={"ht": ["en"], "en": [], "fr": []})
    LocalRuntime.calls = []
    engine = RemoteFirstEngine(
        Store(PACKAGES),
        EngineConfig(batch_wait_ms=1, verify_checksums=False),
        runtime_factory=LocalRuntime,
        text_tools=TextTools.default(),
        client=LibreTranslateClient([server.url]),
    )
    try:
        result = await engine.translate(MESSAGES[0], "en", source="ht")
    finally:
        await engine.close()
        await server.stop()
    assert result.route == Route.REMOTE
    assert result.models == ("libretranslate",)
    assert len(server.requests) == 1  # the forward translation only
    assert LocalRuntime.calls  # the back-translation ran on the local models


async def test_not_available_as_a_target_moves_to_the_next_server_and_is_remembered() -> None:
    """A server whose /languages still lists the pair answers the real 400 "… is not
    available as a target language from …": that server lacks the pair, the message is not
    refused; the other server serves it and every later one."""
    stale = await started()
    full = await started()
    engine = engine_over(LibreTranslateClient([stale.url, full.url]))
    try:
        await engine.client.refresh()
        stale.supported = dict(LACKS_HT)  # packages removed after /languages was read
        results = [await engine.translate(m, "en", source="ht") for m in MESSAGES]
    finally:
        await engine.close()
        await stale.stop()
        await full.stop()
    assert [r.route for r in results] == [Route.REMOTE] * len(MESSAGES)
    assert len(stale.requests) == 1  # asked once, then remembered
    assert len(full.requests) == len(MESSAGES)
    assert LocalRuntime.calls == []


async def test_languages_are_refreshed_after_their_ttl() -> None:
    now = [0.0]
    server = await started(supported=LACKS_HT)
    client = LibreTranslateClient(
        [server.url], limits=ClientLimits(languages_ttl_s=600), clock=lambda: now[0]
    )
    try:
        assert await client.candidates("ht", "en") == []
        server.supported = {"ht": ["en"], "en": ["ht"]}  # a package installed later
        now[0] = 599.0
        assert await client.candidates("ht", "en") == []
        now[0] = 601.0
        assert [s.url for s in await client.candidates("ht", "en")] == [server.url]
    finally:
        await client.close()
        await server.stop()
    assert server.languages_calls == 2


@pytest.mark.parametrize(
    ("key", "expected"),
    [(None, "Please contact the server operator"), ("wrong-key-000", "Invalid API key")],
)
async def test_missing_or_wrong_key_is_an_auth_failure_not_a_refusal(
    caplog: pytest.LogCaptureFixture, key: str | None, expected: str
) -> None:
    """A server started with --require-api-key-secret answers 400 "Please contact the server
    operator to get an API key" without a key, 403 "Invalid API key" with a wrong one: one
    warning (never the key), a long cooldown, and the other server serves every message."""
    guarded = await started(require_key=API_KEY)
    open_server = await started()
    engine = engine_over(LibreTranslateClient([guarded.url, open_server.url], api_key=key))
    caplog.set_level("INFO", logger="translation.libretranslate")
    try:
        results = [await engine.translate(m, "en", source="ht") for m in MESSAGES[:6]]
    finally:
        await engine.close()
        await guarded.stop()
        await open_server.stop()
    assert [r.route for r in results] == [Route.REMOTE] * 6
    assert len(guarded.requests) == 1
    assert len(open_server.requests) == 6
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "API key" in warnings[0]
    assert expected in warnings[0]
    assert all(key is None or key not in r.getMessage() for r in caplog.records)


LONG = "Inite KE-3 rive Kenscoff. Nou bezwen dlo. Nou bezwen machin. Inite rive. Nou la."


async def test_q_lists_are_split_within_the_servers_batch_limit() -> None:
    """A server with --batch-limit 2 refuses longer q lists; Daraja, told the limit, never
    sends one; told a larger one, it learns the real limit from the first 400."""
    server = await started(batch_limit=2)
    told = engine_over(LibreTranslateClient([server.url], limits=ClientLimits(batch_limit=2)))
    try:
        result = await told.translate(LONG, "en", source="ht")
    finally:
        await told.close()
    assert result.route == Route.REMOTE
    assert [len(r["q"]) for r in server.requests] == [2, 2, 1]
    server.requests.clear()
    learning = engine_over(LibreTranslateClient([server.url]))  # default 16
    try:
        first = await learning.translate(LONG, "en", source="ht")
        again = await learning.translate(LONG.replace("dlo", "manje"), "en", source="ht")
    finally:
        await learning.close()
        await server.stop()
    assert (first.route, again.route) == (Route.REMOTE, Route.REMOTE)
    sizes = [len(r["q"]) for r in server.requests]
    assert sizes[0] == 5  # one 400 naming the limit, then within it
    assert all(n <= 2 for n in sizes[1:])
    assert LocalRuntime.calls == []


async def test_segments_over_the_published_char_limit_go_local_alone() -> None:
    """`charLimit` from /frontend/settings: a longer segment is never sent (the server would
    refuse the whole request); the others still are."""
    server = await started(char_limit=20)
    engine = engine_over(LibreTranslateClient([server.url]))
    text = "Nou bezwen dlo. Inite a rive nan Kenscoff a 14:30 ak de machin."
    try:
        result = await engine.translate(text, "en", source="ht")
    finally:
        await engine.close()
        await server.stop()
    sent = server.segments_requested()
    assert sent == ["Nou bezwen dlo."]
    assert len(LocalRuntime.calls) == 1
    assert LocalRuntime.calls[0].startswith("Inite")
    assert result.text.startswith("We need dlo.")
    assert "14:30" in result.text


async def test_429_without_retry_after_and_cost_per_segment() -> None:
    """LibreTranslate charges len(q) against its per-minute limit and answers 429 without
    Retry-After: the server rests a minute and the local models answer meanwhile; paced at
    the server's limit, Daraja does not provoke the 429 at all."""
    server = await started(req_limit_per_min=6)
    engine = engine_over(LibreTranslateClient([server.url]))
    try:
        first = await engine.translate(LONG, "en", source="ht")  # 5 segments: 5 of 6
        second = await engine.translate("Nou bezwen gaz. Inite la.", "en", source="ht")
        third = await engine.translate("Nou bezwen pen.", "en", source="ht")
    finally:
        await engine.close()
    assert first.route == Route.REMOTE
    assert (second.route, third.route) == (Route.DIRECT, Route.DIRECT)
    assert len(server.requests) == 2  # the 429, then a minute's rest: not asked for the third
    await server.stop()

    server = await started(req_limit_per_min=6)
    paced = engine_over(
        LibreTranslateClient([server.url], limits=ClientLimits(per_minute=6, queue_wait_s=1.0))
    )
    try:
        first = await paced.translate(LONG, "en", source="ht")
        second = await paced.translate("Nou bezwen gaz. Inite la.", "en", source="ht")
    finally:
        await paced.close()
        await server.stop()
    assert (first.route, second.route) == (Route.REMOTE, Route.DIRECT)
    assert len(server.requests) == 1  # the second would have waited too long: never sent


async def test_a_burst_is_queued_per_server_not_timed_out() -> None:
    """A server translates one request at a time. 24 messages at once used to be 24 requests
    in its queue, the later ones timing out and translated twice; with one request in flight
    per server each waits its turn on Daraja's side (not against its timeout)."""
    server = await started(threads=1, seconds_per_segment=0.05)
    client = LibreTranslateClient(
        [server.url], timeout_s=0.5, limits=ClientLimits(max_in_flight=1)
    )
    engine = engine_over(client)
    words = _NEEDS.split()
    messages = [f"Nou bezwen {a} ak {b}" for a in words[:6] for b in words[6:10]]
    try:
        results = await asyncio.gather(*(engine.translate(m, "en", source="ht") for m in messages))
    finally:
        await engine.close()
        await server.stop()
    assert [r.route for r in results] == [Route.REMOTE] * 24
    assert server.most_in_flight == 1
    assert client.stats[server.url].timeouts == 0
    sent = server.segments_requested()
    assert len(sent) == len(set(sent)) == 24  # each segment asked once
    assert LocalRuntime.calls == []


async def test_a_timed_out_request_is_never_repeated() -> None:
    """Target: 0 requests repeated after a timeout. The slow server's request is abandoned for
    good: its segments are translated once, locally, never sent to the other server; the slow
    server rests and the next messages go to the other one."""
    slow = await started(seconds_per_segment=0.4)
    fast = await started()
    client = LibreTranslateClient(
        [slow.url, fast.url], timeout_s=0.3, limits=ClientLimits(timeout_per_segment_s=0)
    )
    client._next = 0  # the slow server first
    engine = engine_over(client)
    try:
        first = await engine.translate(LONG, "en", source="ht")
        later = [await engine.translate(m, "en", source="ht") for m in MESSAGES[:4]]
    finally:
        await engine.close()
        await slow.stop()
        await fast.stop()
    assert first.route == Route.DIRECT
    assert client.stats[slow.url].timeouts == 1
    abandoned = slow.segments_requested()
    assert len(abandoned) == 5
    # Translated once, by the local models; the other server never saw them.
    assert sorted(LocalRuntime.calls) == sorted(abandoned)
    assert not set(abandoned) & set(fast.segments_requested())
    assert [r.route for r in later] == [Route.REMOTE] * 4
    assert len(slow.requests) == 1
    all_sent = slow.segments_requested() + fast.segments_requested()
    assert len(all_sent) == len(set(all_sent))


async def test_timeouts_scale_with_the_segments_up_to_a_ceiling() -> None:
    client = LibreTranslateClient(
        ["http://127.0.0.1:9"],
        timeout_s=10,
        limits=ClientLimits(timeout_per_segment_s=1.0, timeout_max_s=30),
    )
    assert [client.request_timeout(n) for n in (1, 2, 16, 64)] == [10, 11, 25, 30]


async def test_a_leaked_language_tag_is_cut_and_flagged() -> None:
    """A multilingual package served by LibreTranslate answers "Swh Latn …" with a 200: the
    tag is cut out and the translation flagged doubtful."""
    server = await started(leak_tag="swh_Latn")
    engine = engine_over(LibreTranslateClient([server.url]))
    try:
        result = await engine.translate(TEXT, "en", source="ht")
    finally:
        await engine.close()
        await server.stop()
    assert result.route == Route.REMOTE
    assert Flag.LANGUAGE_TAG in result.flags
    assert "Latn" not in result.text
    assert result.text.startswith("Unit KE-3 arrived")


async def test_server_case_and_punctuation_changes_leave_the_spans_daraja_s() -> None:
    """LibreTranslate upper-cases the output of an upper-case source and forces the source's
    final punctuation; the spans are still reinserted byte for byte by Daraja."""
    server = await started()
    engine = engine_over(LibreTranslateClient([server.url]))
    try:
        shouted = await engine.translate("INITE KE-3 RIVE KENSCOFF A 14:30!", "en", source="ht")
        quiet = await engine.translate("nou bezwen dlo ak ke-3", "en", source="ht")
    finally:
        await engine.close()
        await server.stop()
    assert shouted.route == quiet.route == Route.REMOTE
    assert shouted.text.endswith("!")
    assert "KE-3" in shouted.text
    assert "14:30" in shouted.text
    assert quiet.text == quiet.text.lower()


async def test_a_burst_with_timeouts_translates_every_segment_exactly_once() -> None:
    """Target, under a burst: 0 requests repeated after a timeout. Whatever times out on the
    slow server is translated once, locally; everything else once, remotely."""
    slow = await started(threads=1, seconds_per_segment=2.5)
    fast = await started()
    client = LibreTranslateClient(
        [slow.url, fast.url],
        timeout_s=1.0,
        limits=ClientLimits(max_in_flight=1, timeout_per_segment_s=0),
    )
    engine = engine_over(client)
    words = _NEEDS.split()
    messages = [f"Nou bezwen {a} ak {b}" for a in words[:4] for b in words[4:7]]
    try:
        results = await asyncio.gather(*(engine.translate(m, "en", source="ht") for m in messages))
    finally:
        await engine.close()
        await slow.stop()
        await fast.stop()
    assert client.stats[slow.url].timeouts >= 1
    sent = slow.segments_requested() + fast.segments_requested()
    assert len(sent) == len(set(sent))  # no segment sent twice
    local = LocalRuntime.calls
    assert not set(local) & set(fast.segments_requested())
    assert sorted(local) == sorted(slow.segments_requested())  # abandoned: local, once
    remote = [r for r in results if r.route == Route.REMOTE]
    assert len(remote) == len(fast.requests)
    assert len(remote) + len(local) == len(messages)
