"""The LibreTranslate backend through the real engine, against fake servers that answer what
the real LibreTranslate 1.9.6 answers (`tests/support/fake_libretranslate.py`; the real server
itself is exercised by `test_libretranslate_real.py` where it is installed).

The local models are small fakes behind the engine's runtime seam (tagging text `<local>`):
what is under test is the engine's use of the servers, its fail-over to the local route, and
that span protection and quality flags still apply. The last test fails over to the real
bundled CTranslate2 fixture models.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_libretranslate import FakeLibreTranslate
from translation.ct2 import SegmentRequest, SegmentResult
from translation.engine import EngineConfig, TextTools
from translation.libretranslate import LibreTranslateClient, RemoteFirstEngine, RemoteUnavailable
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
        EngineConfig(batch_wait_ms=1, verify_checksums=False),
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
    from bot.engine_factory import build_engine
    from bot.settings import load_settings

    plain = build_engine(load_settings(models_dir=tmp_path))
    remote = build_engine(
        load_settings(
            models_dir=tmp_path,
            libretranslate_urls="http://127.0.0.1:5000, http://127.0.0.1:5001",
            libretranslate_api_key=API_KEY,
            libretranslate_timeout=3,
        )
    )
    assert not isinstance(plain, RemoteFirstEngine)
    assert isinstance(remote, RemoteFirstEngine)
    assert remote.client.urls == ["http://127.0.0.1:5000", "http://127.0.0.1:5001"]
    assert (remote.client.api_key, remote.client.timeout_s) == (API_KEY, 3)


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
