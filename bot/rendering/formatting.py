"""Dates, times, ages and numbers as each reader expects them, in the operation's time zone.

Which Babel (CLDR) locale serves each language, and why:
- `fr` -> `fr_HT`: French as written in Haiti (26 nov. 2026, 14:05; 12 345,6).
- `en` -> `en_KE`: the English of the Kenyan-led MSS (26 Nov 2026, 14:05; 12,345.6), 24-hour
  clock as police radio logs use, not the US `2:05 PM`.
- `sw` -> `sw_KE`: Kenyan Swahili (26 Nov 2026 14:05).
- `ht`: CLDR's Kreyòl data is a shell that inherits French month and day names ("novembre",
  "il y a 12 minutes"). Kreyòl is written with French conventions for numbers and the order of
  date parts, so `ht` uses `fr_HT`'s patterns and separators with the Kreyòl month and day names
  below (spelling of the official orthography, as in Haitian newspapers and PNH notes).
Relative ages ("12 min ago") come from the human-written catalogs (`time.*` keys, plural via
`tn`), not from CLDR, so all four languages read alike.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, cast

from bot.errors import ConfigError

if TYPE_CHECKING:
    from babel import Locale
    from babel.dates import DateTimeFormat

    from bot.i18n import I18n

DEFAULT_TIMEZONE = "America/Port-au-Prince"

BABEL_LOCALES: dict[str, str] = {"ht": "fr_HT", "fr": "fr_HT", "en": "en_KE", "sw": "sw_KE"}

KREYOL_MONTHS: tuple[str, ...] = (
    "janvye",
    "fevriye",
    "mas",
    "avril",
    "me",
    "jen",
    "jiyè",
    "out",
    "septanm",
    "oktòb",
    "novanm",
    "desanm",
)
KREYOL_MONTHS_SHORT: tuple[str, ...] = (
    "jan",
    "fev",
    "mas",
    "avr",
    "me",
    "jen",
    "jiy",
    "out",
    "sep",
    "okt",
    "nov",
    "des",
)
# Monday first, as `datetime.weekday()` counts.
KREYOL_DAYS: tuple[str, ...] = ("lendi", "madi", "mèkredi", "jedi", "vandredi", "samdi", "dimanch")
KREYOL_DAYS_SHORT: tuple[str, ...] = ("len", "mad", "mèk", "jed", "van", "sam", "dim")

Style = Literal["short", "medium", "long", "full"]


def babel_locale(lang: str) -> Locale:
    """The Babel locale whose patterns serve `lang` (English for anything unknown)."""
    from babel import Locale

    return Locale.parse(BABEL_LOCALES.get(lang, "en_KE"))


def zone(tz: str | tzinfo | None) -> tzinfo:
    """A time zone from an IANA name (None -> America/Port-au-Prince); ConfigError if unknown."""
    if isinstance(tz, tzinfo):
        return tz
    name = tz or DEFAULT_TIMEZONE
    return _zone(name)


@cache
def _zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name!r} is not a known time zone: use an IANA name such as {DEFAULT_TIMEZONE}"
        ) from None


@cache
def _shown_zone(name: str) -> tzinfo:
    """The zone a stored name is shown in: itself, or UTC (warned once per name) when the zone
    database does not know it. Names are checked when they are set, but an older version
    stored any text: the board, FLASH and the log must still render, labelled "UTC"."""
    try:
        return _zone(name)
    except ConfigError:
        import logging

        logging.getLogger(__name__).warning(
            "time zone %r is not known: times are shown in UTC (set a valid IANA name)",
            name[:64],
        )
        return UTC


def _local(dt: datetime, tz: str | tzinfo | None) -> datetime:
    # Naive datetimes are UTC: storage keeps UTC and SQLite drops the offset.
    aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    shown = tz if isinstance(tz, tzinfo) else _shown_zone(tz or DEFAULT_TIMEZONE)
    return aware.astimezone(shown)


def format_datetime(
    dt: datetime, lang: str, tz: str | tzinfo | None = None, *, style: Style = "medium"
) -> str:
    """Date and time in the reader's language and the operation's zone, labelled with it
    ("26 nov. 2026, 09:05 UTC-5").

    `medium` shows hours and minutes (no seconds: nobody on a radio log wants them); `short` is
    all digits; `long`/`full` spell the month. Every style names the zone by its UTC offset
    (zone names are not localized for Kreyòl, an offset reads the same in every language).
    """
    locale = babel_locale(lang)
    time_pattern = {
        "short": "HH:mm",
        "medium": "HH:mm",
        "long": "HH:mm 'UTC'xxx",
        "full": "HH:mm 'UTC'xxx",
    }
    # Glue the date and time patterns with the locale's own joiner ("{1}, {0}", "{1} 'à' {0}")
    # and format the whole, so quoted literals in the joiner are honoured.
    glue = str(locale.datetime_formats.get(style, "{1} {0}"))
    pattern = glue.replace("{1}", locale.date_formats[style].pattern).replace(
        "{0}", time_pattern[style]
    )
    local = _local(dt, tz)
    text = _apply(pattern, local, lang)
    return text if style in ("long", "full") else f"{text} {zone_label(local)}"


def format_date(
    dt: datetime, lang: str, tz: str | tzinfo | None = None, *, style: Style = "medium"
) -> str:
    """The date alone, in the reader's language and the operation's time zone."""
    local = _local(dt, tz)
    return _apply(babel_locale(lang).date_formats[style].pattern, local, lang)


def format_time(
    dt: datetime, lang: str, tz: str | tzinfo | None = None, *, labelled: bool = True
) -> str:
    """The time of day on the 24-hour clock in the operation's time zone, labelled with the
    zone ("14:05 UTC-5"; `labelled=False` for "14:05" where the zone is shown once nearby)."""
    local = _local(dt, tz)
    text = _apply("HH:mm", local, lang)
    return f"{text} {zone_label(local)}" if labelled else text


def zone_label(local: datetime) -> str:
    """The zone of an aware time as its UTC offset: "UTC", "UTC-5", "UTC+3", "UTC+5:30"."""
    offset = local.utcoffset()
    minutes = round(offset.total_seconds() / 60) if offset is not None else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _apply(pattern: str, value: datetime, lang: str) -> str:
    from babel.dates import DateTimeFormat, parse_pattern

    locale = babel_locale(lang)
    fields: Any = (
        _kreyol_format()(value, locale) if lang == "ht" else DateTimeFormat(value, locale)
    )
    return str(parse_pattern(pattern).format % fields)


@cache
def _kreyol_format() -> type[DateTimeFormat]:
    """Babel's field formatter with Kreyòl month and day names (built once, lazily)."""
    from babel.dates import DateTimeFormat

    class KreyolFormat(DateTimeFormat):
        """French patterns with Kreyòl month and day names."""

        def format_month(self, char: str, num: int) -> str:
            if num <= 2:
                return super().format_month(char, num)
            names = KREYOL_MONTHS_SHORT if num == 3 else KREYOL_MONTHS
            name = names[cast(date, self.value).month - 1]
            return name[0].upper() if num == 5 else name

        def format_weekday(self, char: str = "E", num: int = 4) -> str:
            if num < 3 and char.islower():
                return super().format_weekday(char, num)
            names = KREYOL_DAYS if num == 4 else KREYOL_DAYS_SHORT
            name = names[cast(date, self.value).weekday()]
            return name[0].upper() if num == 5 else name

    return KreyolFormat


def format_age(delta: timedelta, lang: str, i18n: I18n) -> str:
    """How long ago, in words from the catalogs: "just now", "12 min ago", "3 h ago", "2 days ago".

    Negative ages (a clock a little ahead) read as "just now".
    """
    seconds = delta.total_seconds()
    if seconds < 60:
        return i18n.t("time.just_now", lang)
    minutes = int(seconds // 60)
    if minutes < 60:
        return i18n.tn("time.minutes_ago", lang, minutes)
    hours = minutes // 60
    if hours < 48:
        return i18n.tn("time.hours_ago", lang, hours)
    return i18n.tn("time.days_ago", lang, hours // 24)


def format_number(value: float | int, lang: str, *, decimals: int | None = None) -> str:
    """A number with the reader's separators (12 345,5 in ht/fr; 12,345.5 in en/sw)."""
    from babel.numbers import format_decimal

    locale = babel_locale(lang)
    if decimals is None:
        return str(format_decimal(value, locale=locale))
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return str(format_decimal(value, format=pattern, locale=locale))
