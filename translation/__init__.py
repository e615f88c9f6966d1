"""Offline machine translation for Daraja (no Telegram, database or `bot` imports).

Importing this package is cheap: it loads no model and imports neither ctranslate2,
sentencepiece nor numpy. The engine lives in `translation.engine` (`Engine`, `EngineConfig`);
the names below are resolved on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from translation.errors import (
    BadText,
    MissingModel,
    ModelError,
    ModelIntegrityError,
    PackageError,
    TranslationError,
    UnsupportedLanguage,
)
from translation.types import LANGUAGES, Flag, LanguageGuess, Route, Translation

if TYPE_CHECKING:
    from translation.engine import Engine, EngineConfig
    from translation.selftest import SelfTestReport

__all__ = [
    "LANGUAGES",
    "BadText",
    "Engine",
    "EngineConfig",
    "Flag",
    "LanguageGuess",
    "MissingModel",
    "ModelError",
    "ModelIntegrityError",
    "PackageError",
    "Route",
    "SelfTestReport",
    "Translation",
    "TranslationError",
    "UnsupportedLanguage",
]

_LAZY = {
    "Engine": "translation.engine",
    "EngineConfig": "translation.engine",
    "SelfTestReport": "translation.selftest",
}


def __getattr__(name: str) -> Any:
    # The engine's modules are imported on first use of their names, not with the package.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'translation' has no attribute {name!r}")
