"""Dates, times, ages and numbers as each side reads them, in the operation's time zone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.errors import ConfigError
from bot.i18n import I18n, load_i18n
from bot.rendering.formatting import (
    format_age,
    format_date,
    format_datetime,
    format_number,
    format_time,
    zone,
)

# 14:05 UTC on Thursday 26 November 2026 is 09:05 in Port-au-Prince (UTC-5, no DST then).
MOMENT = datetime(2026, 11, 26, 14, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return load_i18n()


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("ht", "26 nov 2026, 09:05 UTC-5"),
        ("fr", "26 nov. 2026, 09:05 UTC-5"),
        ("en", "26 Nov 2026, 09:05 UTC-5"),
        ("sw", "26 Nov 2026 09:05 UTC-5"),
    ],
)
def test_datetime_in_port_au_prince_by_default(lang: str, expected: str) -> None:
    assert format_datetime(MOMENT, lang) == expected


def test_kreyol_uses_kreyol_month_and_day_names_not_french() -> None:
    text = format_datetime(MOMENT, "ht", style="full")
    assert text.startswith("jedi 26 novanm 2026")
    assert "novembre" not in text
    assert "jeudi" not in text
    assert format_date(datetime(2026, 7, 14, 12, tzinfo=UTC), "ht", style="long") == "14 jiyè 2026"


def test_full_style_spells_the_month_and_shows_the_offset() -> None:
    assert (
        format_datetime(MOMENT, "sw", style="full") == "Alhamisi, 26 Novemba 2026 09:05 UTC-05:00"
    )
    assert format_datetime(MOMENT, "fr", style="long") == "26 novembre 2026, 09:05 UTC-05:00"


def test_operation_time_zone_is_honoured() -> None:
    assert format_time(MOMENT, "en", "Africa/Nairobi") == "17:05 UTC+3"
    assert format_time(MOMENT, "en", timezone(timedelta(hours=-4))) == "10:05 UTC-4"
    # Summer time in Haiti (UTC-4) is applied by the zone database.
    assert format_time(datetime(2026, 7, 1, 14, 5, tzinfo=UTC), "ht") == "10:05 UTC-4"


def test_naive_datetimes_are_taken_as_utc() -> None:
    assert format_time(datetime(2026, 11, 26, 14, 5), "fr") == "09:05 UTC-5"


def test_every_time_names_its_zone() -> None:
    assert format_time(MOMENT, "en", "UTC") == "14:05 UTC"
    assert format_time(MOMENT, "en", "Asia/Kolkata") == "19:35 UTC+5:30"
    assert format_time(MOMENT, "en", labelled=False) == "09:05"


def test_the_date_changes_with_the_zone() -> None:
    late = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
    assert format_date(late, "en", style="short") == "26/11/2026"
    assert format_date(late, "en", "UTC", style="short") == "27/11/2026"


def test_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'Mars/Olympus' is not a known time zone"):
        zone("Mars/Olympus")


def test_a_zone_stored_unknown_shows_times_in_utc_labelled_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An older version stored any --timezone text: rendering must not break on it.
    with caplog.at_level(logging.WARNING, logger="bot.rendering.formatting"):
        assert format_time(MOMENT, "en", "Mars/Valles") == f"{MOMENT:%H:%M} UTC"
        assert format_datetime(MOMENT, "fr", "Mars/Valles").endswith(f"{MOMENT:%H:%M} UTC")
        assert format_date(MOMENT, "sw", "Mars/Valles", style="short") == f"{MOMENT:%d/%m/%Y}"
    warned = [r for r in caplog.records if "Mars/Valles" in r.getMessage()]
    assert len(warned) == 1
    assert "UTC" in warned[0].getMessage()


@pytest.mark.parametrize(
    ("lang", "expected"),
    [("ht", "12\u202f345,5"), ("fr", "12\u202f345,5"), ("en", "12,345.5"), ("sw", "12,345.5")],
)
def test_numbers_use_each_sides_separators(lang: str, expected: str) -> None:
    assert format_number(12345.5, lang) == expected


def test_number_with_fixed_decimals() -> None:
    assert format_number(3, "fr", decimals=1) == "3,0"
    assert format_number(2.456, "en", decimals=2) == "2.46"
    assert format_number(1234, "sw", decimals=0) == "1,234"


@pytest.mark.parametrize(
    ("delta", "lang", "expected"),
    [
        (timedelta(seconds=20), "en", "just now"),
        (timedelta(seconds=-5), "fr", "à l'instant"),
        (timedelta(minutes=1, seconds=10), "en", "1 minute ago"),
        (timedelta(minutes=12), "en", "12 minutes ago"),
        (timedelta(minutes=12), "ht", "sa gen 12 minit"),
        (timedelta(minutes=12), "sw", "dakika 12 zilizopita"),
        (timedelta(minutes=90), "fr", "il y a 1 heure"),
        (timedelta(hours=5), "sw", "saa 5 zilizopita"),
        (timedelta(hours=5), "ht", "sa gen 5 èdtan"),
        (timedelta(days=3), "en", "3 days ago"),
        (timedelta(days=3), "sw", "siku 3 zilizopita"),
    ],
)
def test_age_reads_naturally(i18n: I18n, delta: timedelta, lang: str, expected: str) -> None:
    assert format_age(delta, lang, i18n) == expected
