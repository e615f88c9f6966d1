"""Build the relay's translator from settings: the offline engine over the installed models.

With no model installed the bot still runs: originals pass on, flagged `no_model`, and the log
says which `daraja models` command fixes it. At start the engine's self-test runs in the
background; pairs that fail are logged and no longer routed (never silent garbage).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.settings import Settings

log = logging.getLogger(__name__)


def build_translator(settings: Settings) -> Any:
    """An `EngineTranslator` over DARAJA_MODELS_DIR, or None when no package is installed."""
    from bot.engines.factory import build_engine
    from bot.services.translator import EngineTranslator
    from translation.store import ModelStore

    if not settings.models_dir.exists() or not ModelStore(settings.models_dir).list():
        log.warning(
            "no translation models in %s: messages will be relayed untranslated "
            "(see `daraja models catalog` and `daraja models install`)",
            settings.models_dir,
        )
        return None
    if settings.qe_lexicon_dir is not None:
        _check_lexicons(settings)
    return EngineTranslator(build_engine(settings))


def _check_lexicons(settings: Settings) -> None:
    """Read the operator's critical-word lists now: a bad line stops the start, named."""
    from bot.errors import ConfigError
    from translation.critical import LexiconError, Lexicons
    from translation.types import LANGUAGES

    directory = settings.qe_lexicon_dir
    if directory is None or not directory.is_dir():
        raise ConfigError(f"DARAJA_QE_LEXICON_DIR: {directory} is not a directory")
    lexicons = Lexicons(directory)
    try:
        for language in LANGUAGES:
            lexicons.get(language)
    except (LexiconError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"DARAJA_QE_LEXICON_DIR: {exc}") from None


async def self_test(translator: Any) -> None:
    """Run the engine's self-test and log every pair that fails (called once at start)."""
    engine = getattr(translator, "engine", None)
    if engine is None:
        return
    try:
        report = await engine.self_test()
    except Exception:
        log.exception("translation self-test could not run")
        return
    for check in report.failures:
        log.error(
            "translation pair %s failed its self-test and will not be used: %s",
            getattr(check, "pair", check),
            getattr(check, "reason", ""),
        )
    if report.ok:
        log.info("translation self-test passed for %d checks", len(report.checks))


def start_self_test(translator: Any) -> asyncio.Task[None] | None:
    """Start the self-test in the background (the bot answers meanwhile)."""
    if translator is None:
        return None
    return asyncio.create_task(self_test(translator), name="translation-self-test")
