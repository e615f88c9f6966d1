"""Interface text in ht, fr, en and sw from the gettext catalogs under `locales/`.

Message ids are stable dotted keys (`enroll.chat_ok`); every catalog, English included, maps a
key to human-written text with `{name}` placeholders. The bot never machine-translates its own
interface. Catalogs are read and checked from the `.po` sources at start (`bot.i18n.catalogs`); a
broken file stops the start with the file and line. Entries marked fuzzy (awaiting review by a
native speaker) are used all the same: a reviewed-later Kreyòl sentence serves a Kreyòl reader
better than English. `locales/README.md` describes the workflow (`daraja i18n ...`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain import LANGUAGES, Role, Side
from bot.errors import ConfigError

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"
SUPPORTED: tuple[str, ...] = LANGUAGES
FALLBACK = "en"
DOMAIN = "daraja"

# SITREP statuses a unit reports; `status.<value>` is the label shown on the board.
SITREP_STATUSES: tuple[str, ...] = (
    "on_patrol",
    "at_position",
    "in_contact",
    "need_support",
    "casualties",
    "returning",
    "off_duty",
)

# Kinds of Telegram message that are not relayed as text; `relay.kind.<kind>` names them.
MESSAGE_KINDS: tuple[str, ...] = (
    "voice",
    "audio",
    "video",
    "video_note",
    "photo",
    "document",
    "sticker",
    "animation",
    "location",
    "contact",
    "poll",
)

# Why a voice note has no transcript (`translation.speech.STATUSES` less "ok").
VOICE_STATUSES: tuple[str, ...] = (
    "unusable",
    "no_speech",
    "empty",
    "corrupt",
    "too_long",
    "no_model",
    "busy",
)

# How a translation was produced (`translation.types.Route` values); `relay.route.<route>`.
TRANSLATION_ROUTES: tuple[str, ...] = (
    "same",
    "direct",
    "multilingual",
    "pivot",
    "libretranslate",
    "none",
)

# Keys the code builds at run time (`f"help.{command}"`): the extractor cannot see these, so
# each family lists its members here; `daraja i18n extract` and the catalog tests expand them.
KEY_FAMILIES: dict[str, tuple[str, ...]] = {
    "help.{}": (
        "help",
        "start",
        "whoami",
        "lang",
        "join",
        "enroll",
        "backtranslate",
        "report",
        "status",
        "where",
        "who",
        "flash",
        "acks",
        "how",
        "log",
        "search",
        "console",
        "newop",
        "addunit",
        "code",
        "revoke",
    ),
    "role.{}": tuple(role.value for role in Role),
    "side.{}": tuple(side.value for side in Side),
    "lang.name.{}": SUPPORTED,
    "status.{}": SITREP_STATUSES,
    "relay.kind.{}": MESSAGE_KINDS,
    "relay.route.{}": TRANSLATION_ROUTES,
    "relay.check.{}": ("similar", "different", "none"),
    "relay.verdict.{}": ("ok", "doubtful", "unusable"),
    "relay.label.{}": ("ok", "doubtful", "unusable"),
    "voice.status.{}": VOICE_STATUSES,
}


def N_(key: str) -> str:
    """Mark a key kept in a table for later lookup, so `daraja i18n extract` finds it.

    `WARNINGS = (("no_model", N_("relay.warning_no_model")), ...)`: returns `key` unchanged.
    """
    return key


def family_keys(pattern: str) -> tuple[str, ...]:
    """The keys of a family (`"role.{}"` -> `role.officer`, ...); empty if not listed."""
    return tuple(pattern.replace("{}", member) for member in KEY_FAMILIES.get(pattern, ()))


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
        _, text = self._lookup(key, lang)
        if isinstance(text, tuple):
            text = text[0]
        return _fill(text, params)

    def tn(self, key: str, lang: str | None, n: int, /, **params: Any) -> str:
        """The plural form of `key` for count `n` in `lang` (`{n}` is filled too)."""
        found_in, text = self._lookup(key, lang)
        if isinstance(text, tuple):
            # The rule of the catalog the text came from: an English fallback needs English's.
            rule = self.plural_rules.get(found_in)
            index = int(rule(n)) if rule is not None else (0 if n == 1 else 1)
            text = text[min(max(index, 0), len(text) - 1)]
        return _fill(text, {"n": n, **params})

    def _lookup(self, key: str, lang: str | None) -> tuple[str, str | tuple[str, ...]]:
        for candidate in (self.resolve(lang), FALLBACK):
            found = self.catalogs.get(candidate, {}).get(key)
            if found:
                return candidate, found
        log.warning("missing interface text %r", key)
        return FALLBACK, key


def _fill(text: str, params: dict[str, Any]) -> str:
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        log.warning("placeholder mismatch in interface text")
        return text


def normalize_language(code: str | None) -> str | None:
    """`fr`, `FR`, `fr-CA`, `fr_HT` -> `fr`; None for anything Daraja does not speak."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return base if base in SUPPORTED else None


def choose_language(
    *,
    chat_languages: Iterable[str] | None,
    person_language: str | None,
    operation_language: str | None,
    telegram_language: str | None,
    default: str = FALLBACK,
) -> str:
    """The language to answer in: the group's, else the person's, else the operation's, else
    the person's Telegram app language, else `default` (the deployment's), else English.

    Pass `chat_languages` only for groups: in a private chat the person's own language wins.
    The Telegram app language comes after the operation's because it is a guess about the
    person, while the operation's default was chosen by the operation's admin.
    """
    for code in chat_languages or ():
        chosen = normalize_language(code)
        if chosen is not None:
            return chosen
    for candidate in (person_language, operation_language, telegram_language, default):
        chosen = normalize_language(candidate)
        if chosen is not None:
            return chosen
    return FALLBACK


def load_i18n(locales_dir: Path | None = None) -> I18n:
    """Read and check every `locales/<lang>/LC_MESSAGES/daraja.po`; ConfigError if broken."""
    from bot.i18n.catalogs import catalog_path, read_catalog

    root = locales_dir or LOCALES_DIR
    missing = [catalog_path(root, lang) for lang in SUPPORTED]
    missing = [path for path in missing if not path.is_file()]
    if missing:
        raise ConfigError(
            f"{missing[0]}: catalog file is missing; restore it from the source tree"
        )
    english = read_catalog(catalog_path(root, FALLBACK), FALLBACK)
    catalogs: dict[str, dict[str, str | tuple[str, ...]]] = {}
    rules: dict[str, Any] = {}
    for lang in SUPPORTED:
        parsed = (
            english if lang == FALLBACK else read_catalog(catalog_path(root, lang), lang, english)
        )
        # Fuzzy entries are kept: they await a native speaker's review but are still better
        # than falling back to English. Untranslated (empty) entries fall back to English.
        catalogs[lang] = {
            key: entry.text for key, entry in parsed.entries.items() if entry.translated
        }
        rules[lang] = _plural_rule(parsed.plural_expr)
    return I18n(catalogs=catalogs, plural_rules=rules)


def _plural_rule(expr: str) -> Callable[[int], int]:
    from gettext import c2py

    return c2py(expr)
