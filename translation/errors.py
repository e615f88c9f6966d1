"""Errors of the translation engine (no Telegram, no database, no `bot` imports).

    TranslationError            base
    ├── UnsupportedLanguage     a language code outside the supported set
    ├── MissingModel            no package (direct, multilingual or pivot) serves a pair
    ├── ModelError              a package is corrupt, fails its checksum, or inference failed
    │   └── ModelIntegrityError the package on disk does not match what was installed
    ├── PackageError            an archive or metadata is invalid (install refused)
    └── BadText                 input text cannot be translated (e.g. invalid surrogates)

Each message says what to do next (usually which `daraja models` command to run).
"""

from __future__ import annotations


class TranslationError(Exception):
    """Base class of translation failures."""


class UnsupportedLanguage(TranslationError):
    """A language code Daraja does not know."""


class MissingModel(TranslationError):
    """No installed package can serve a language pair."""

    def __init__(self, message: str, *, source: str = "", target: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.target = target


class ModelError(TranslationError):
    """A model could not be loaded or failed during inference."""


class ModelIntegrityError(ModelError):
    """A package's files no longer match the checksum recorded at install."""


class PackageError(TranslationError):
    """An .argosmodel archive or its metadata is invalid."""


class BadText(TranslationError):
    """The input cannot be translated as given."""
