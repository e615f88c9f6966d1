"""Interface text in ht, fr, en and sw from the gettext catalogs under `locales/`.

Message ids are stable dotted keys (`enroll.chat_ok`); every catalog, English included, maps a
key to human-written text with `{name}` placeholders. The bot never machine-translates its own
interface. Catalogs are read from the `.po` sources at start (no hand-compiled `.mo` files).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
SUPPORTED: tuple[str, ...] = ("ht", "fr", "en", "sw")
FALLBACK = "en"
DOMAIN = "daraja"


@dataclass(frozen=True)
class I18n:
    """Loaded catalogs: key -> text (and plural forms) per language."""

    catalogs: dict[str, dict[str, str | tuple[str, ...]]] = field(default_factory=dict)
    plural_rules: dict[str, Any] = field(default_factory=dict)

    def resolve(self, lang: str | None) -> str:
        """The supported language to use for `lang` (falls back to English)."""
        if lang in self.catalogs:
            return lang
        return FALLBACK

    def t(self, key: str, lang: str | None, /, **params: Any) -> str:
        """The text for `key` in `lang`, placeholders filled; English, then the key, if missing."""
        text = self._lookup(key, lang)
        if isinstance(text, tuple):
            text = text[0]
        return _fill(text, params)

    def tn(self, key: str, lang: str | None, n: int, /, **params: Any) -> str:
        """The plural form of `key` for count `n` in `lang` (`{n}` is filled too)."""
        lang = self.resolve(lang)
        text = self._lookup(key, lang)
        if isinstance(text, tuple):
            rule = self.plural_rules.get(lang)
            index = int(rule(n)) if rule is not None else (0 if n == 1 else 1)
            text = text[min(index, len(text) - 1)]
        return _fill(text, {"n": n, **params})

    def _lookup(self, key: str, lang: str | None) -> str | tuple[str, ...]:
        for candidate in (self.resolve(lang), FALLBACK):
            found = self.catalogs.get(candidate, {}).get(key)
            if found:
                return found
        log.warning("missing interface text %r", key)
        return key


def _fill(text: str, params: dict[str, Any]) -> str:
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        log.warning("placeholder mismatch in interface text")
        return text


def load_i18n(locales_dir: Path | None = None) -> I18n:
    """Read every `locales/<lang>/LC_MESSAGES/daraja.po`; a broken file raises ConfigError."""
    from babel.messages.pofile import PoFileError, read_po

    root = locales_dir or LOCALES_DIR
    catalogs: dict[str, dict[str, str | tuple[str, ...]]] = {}
    rules: dict[str, Any] = {}
    for lang in SUPPORTED:
        path = root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not path.exists():
            continue
        try:
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=lang, abort_invalid=True)
        except (PoFileError, ValueError) as exc:
            raise ConfigError(f"{path}: broken catalog: {exc}") from None
        entries: dict[str, str | tuple[str, ...]] = {}
        for message in catalog:
            if not message.id:
                continue
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            if isinstance(message.string, tuple):
                if any(message.string):
                    entries[key] = tuple(message.string)
            elif message.string:
                entries[key] = message.string
        catalogs[lang] = entries
        rules[lang] = _plural_rule(catalog.plural_expr)
    return I18n(catalogs=catalogs, plural_rules=rules)


def _plural_rule(expr: str) -> Any:
    from gettext import c2py

    from babel.messages.plurals import get_plural  # noqa: F401  (kept for locale data)

    return c2py(expr)
