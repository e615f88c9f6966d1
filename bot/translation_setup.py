"""Build the translation engine from settings (placeholder until the engine is wired)."""

from __future__ import annotations

from typing import Any

from bot.settings import Settings


def build_translator(settings: Settings) -> Any:
    """No engine yet: the relay passes originals on, flagged."""
    return None
