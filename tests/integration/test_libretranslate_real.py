"""The LibreTranslate backend against the real `libretranslate` server, where one is installed.

Optional: skipped unless a `libretranslate` executable is found (`DARAJA_TEST_LIBRETRANSLATE`,
else PATH) in an environment of its own with spaCy (it is never installed into Daraja's; see
the README, "LibreTranslate"). The server runs offline on loopback with the repository's
fixture packages (`translation.peers`), with API keys required, one key limited to six
segments a minute.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from translation.engine import EngineConfig
from translation.libretranslate import (
    LibreTranslateClient,
    RemoteFirstEngine,
    RemoteUnavailable,
)
from translation.peers import (
    LibreTranslateServer,
    PeerHome,
    find_libretranslate,
    has_module,
    python_of,
)
from translation.store import ModelStore
from translation.types import Flag, Route

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
EXECUTABLE = find_libretranslate(os.environ.get("DARAJA_TEST_LIBRETRANSLATE"))
KEY = "daraja-test-key-0001"
SLOW_KEY = "daraja-test-key-0002"  # six segments a minute

pytestmark = pytest.mark.skipif(
    EXECUTABLE is None or not has_module(python_of(EXECUTABLE), "spacy"),
    reason="no libretranslate (with spaCy) installed in its own environment",
)


@dataclass
class Real:
    url: str
    models: Path


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Real]:
    assert EXECUTABLE is not None
    root = tmp_path_factory.mktemp("libretranslate")
    home = PeerHome(root / "home", threads=1)
    # Nothing from Swahili: it is known (a target of the multilingual package), with no way
    # from it.
    for name in ("ht_en", "en_ht", "en_fr", "fr_en", "multi_ht_fr_sw"):
        home.add_archive(FIXTURES / f"fixture_{name}.argosmodel")
    home.seed(python_of(EXECUTABLE))
    db = root / "keys.db"
    server = LibreTranslateServer(
        EXECUTABLE,
        home,
        threads=2,
        args=["--api-keys", "--api-keys-db-path", str(db), "--require-api-key-secret"],
    )
    models = root / "models"
    store = ModelStore(models)
    for name in ("ht_en", "en_ht", "en_fr", "fr_en", "sw_en", "en_sw"):
        store.install_file(FIXTURES / f"fixture_{name}.argosmodel")
    server.start()
    try:
        manage = EXECUTABLE.parent / "ltmanage"
        for key, limit in ((KEY, "1000"), (SLOW_KEY, "6")):
            subprocess.run(
                [str(manage), "keys", "--api-keys-db-path", str(db), "add", limit, "--key", key],
                env=home.env(),
                check=True,
                capture_output=True,
                timeout=120,
            )
        yield Real(server.url, models)
    finally:
        server.stop()


def engine(real: Real, key: str | None = KEY) -> RemoteFirstEngine:
    client = LibreTranslateClient([real.url], api_key=key, timeout_s=60)
    return RemoteFirstEngine.from_models_dir(real.models, EngineConfig(threads=1), client=client)


async def test_real_server_translates_with_daraja_s_spans(real: Real) -> None:
    e = engine(real)
    try:
        result = await e.translate("Inite KE-3 rive Kenscoff a 14:30.", "en", source="ht")
    finally:
        await e.close()
    assert result.route == Route.REMOTE
    for span in ("KE-3", "Kenscoff", "14:30"):
        assert span in result.text


async def test_real_languages_and_a_pair_it_cannot_translate(real: Real) -> None:
    client = LibreTranslateClient([real.url], api_key=KEY)
    try:
        pairs = await client.pairs()
        assert ("ht", "en") in pairs
        assert ("sw", "en") not in pairs
        assert await client.candidates("sw", "en") == []  # so it is never asked
        # A list gone stale (a package removed since): the real 400 "English (en) is not
        # available as a target language from Swahili (sw)" says it lacks the pair.
        state = client.servers[real.url]
        assert state.pairs is not None
        state.pairs = state.pairs | {("sw", "en")}
        with pytest.raises(RemoteUnavailable, match="pair not served"):
            await client.translate(["Habari."], "sw", "en")
        assert not state.serves("sw", "en")
        assert state.serves("ht", "en")
    finally:
        await client.close()


async def test_real_missing_key_is_an_auth_failure(real: Real) -> None:
    client = LibreTranslateClient([real.url], api_key=None)
    try:
        with pytest.raises(RemoteUnavailable, match="API key refused"):
            await client.translate(["Nou bezwen dlo."], "ht", "en")
        assert client.servers[real.url].auth_down_until > 0
    finally:
        await client.close()


async def test_real_429_counts_segments_and_has_no_retry_after(real: Real) -> None:
    client = LibreTranslateClient([real.url], api_key=SLOW_KEY)
    try:
        await client.translate([f"Nou bezwen {w}." for w in ("dlo", "manje", "gaz")], "ht", "en")
        await client.translate([f"Nou bezwen {w}." for w in ("pen", "diri", "pwa")], "ht", "en")
        with pytest.raises(RemoteUnavailable, match="rate limited"):
            await client.translate(["Nou bezwen sik."], "ht", "en")
    finally:
        await client.close()


async def test_real_multilingual_package_leaks_its_tag_and_is_flagged(real: Real) -> None:
    """The multilingual fixture served by LibreTranslate answers "Swh Latn …" (Argos ignores
    its target prefixes); Daraja cuts the tag out and flags the translation."""
    e = engine(real)
    try:
        # A local route exists for ht→sw (pivot), so the pair is sent to the server first.
        result = await e.translate("Inite a rive.", "sw", source="ht")
    finally:
        await e.close()
    assert result.route == Route.REMOTE
    assert Flag.LANGUAGE_TAG in result.flags
    assert "Latn" not in result.text
