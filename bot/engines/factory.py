"""Build the translation engine from Daraja's settings (the only place that maps them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings
    from translation.engine import Engine, EngineConfig


def engine_config(settings: Settings) -> EngineConfig:
    """The engine configuration for these settings (DARAJA_TRANSLATION_*)."""
    from bot.engines.voice import translation_threads
    from translation.engine import EngineConfig

    return EngineConfig(
        threads=translation_threads(settings),
        inter_threads=settings.translation_inter_threads,
        compute_type=settings.translation_compute_type,
        batch_size=settings.translation_batch_size,
        batch_wait_ms=settings.translation_batch_wait_ms,
        beam_size=settings.translation_beam_size,
        cache_size=settings.translation_cache_size,
        quality_estimation=settings.translation_quality_estimation,
        lexicon_dir=settings.qe_lexicon_dir,
    )


def build_engine(settings: Settings) -> Engine:
    """An engine over the models in DARAJA_MODELS_DIR (nothing is loaded until first use)."""
    from translation.engine import Engine

    # With DARAJA_LIBRETRANSLATE_URLS the segment calls go to those servers first;
    # the installed models answer when none can (spans and flags stay Daraja's either way).
    if settings.libretranslate_urls:
        from translation.libretranslate import (
            ClientLimits,
            LibreTranslateClient,
            RemoteFirstEngine,
        )

        key = settings.libretranslate_api_key
        client = LibreTranslateClient(
            settings.libretranslate_urls,
            api_key=key.get_secret_value() if key is not None else None,
            timeout_s=settings.libretranslate_timeout,
            limits=ClientLimits(
                max_in_flight=settings.libretranslate_in_flight,
                per_minute=settings.libretranslate_segments_per_min,
                batch_limit=settings.libretranslate_batch_limit,
                char_limit=settings.libretranslate_char_limit or None,
                timeout_per_segment_s=settings.libretranslate_timeout_per_segment,
                timeout_max_s=settings.libretranslate_timeout_max,
                auth_cooldown_s=settings.libretranslate_auth_cooldown,
                queue_wait_s=settings.libretranslate_queue_wait,
            ),
        )
        return RemoteFirstEngine.from_models_dir(
            settings.models_dir, engine_config(settings), client=client
        )
    return Engine.from_models_dir(settings.models_dir, engine_config(settings))
