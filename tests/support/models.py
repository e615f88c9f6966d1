"""The bundled fixture models, installed into a models directory for tests."""

from __future__ import annotations

from pathlib import Path

from bot.engines.bundled import install_bundled_models


def install_fixture_models(target: Path) -> Path:
    """Install every committed fixture package into `target`."""
    return install_bundled_models(target)
