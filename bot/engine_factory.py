"""Build the translation engine from Daraja's settings (the only place that maps them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings
    from translation.engine import Engine, EngineConfig


def engine_config(settings: Settings) -> EngineConfig:
    """The engine configuration for these settings (DARAJA_TRANSLATION_*)."""
    from bot.voice_setup import translation_threads
    from translation.engine import EngineConfig

    return EngineConfig(
        threads=translation_threads(settings),
        inter_threads=settings.translation_inter_threads,
        compute_type=settings.translation_compute_type,
        batch_size=settings.translation_batch_size,
        batch_wait_ms=settings.translation_batch_wait_ms,
        beam_size=settings.translation_beam_size,
        cache_size=settings.translation_cache_size,
    )


def build_engine(settings: Settings) -> Engine:
    """An engine over the models in DARAJA_MODELS_DIR (nothing is loaded until first use)."""
    from translation.engine import Engine

    # Issue 10: with DARAJA_LIBRETRANSLATE_URLS the segment calls go to those servers first;
    # the installed models answer when none can (spans and flags stay Daraja's either way).
    if settings.libretranslate_urls:
        from translation.libretranslate import LibreTranslateClient, RemoteFirstEngine

        key = settings.libretranslate_api_key
        client = LibreTranslateClient(
            settings.libretranslate_urls,
            api_key=key.get_secret_value() if key is not None else None,
            timeout_s=settings.libretranslate_timeout,
        )
        return RemoteFirstEngine.from_models_dir(
            settings.models_dir, engine_config(settings), client=client
        )
    return Engine.from_models_dir(settings.models_dir, engine_config(settings))
