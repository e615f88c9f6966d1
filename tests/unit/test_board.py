"""The status board as a commander reads it: 60 units in two languages, within Telegram's
limits, stale and urgent units marked, free text in the reader's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.i18n import I18n, load_i18n
from bot.rendering.copies import TEXT_LIMIT, visible_len
from bot.services.board import (
    Board,
    BoardRow,
    FreeText,
    Location,
    ReportView,
    render_board,
    render_sitrep_copy,
    render_unit_reports,
)
from bot.services.sitrep import STATUSES

NOW = datetime(2026, 11, 26, 19, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return load_i18n()


def board(units: int = 60, needs: str = "dlo, minisyon ak yon veyikil blende") -> Board:
    rows = []
    for i in range(units):
        reported = i % 7 != 6
        report = (
            ReportView(
                status=STATUSES[i % len(STATUSES)],
                location=Location(18.5 + i / 1000, -72.3, "Kenscoff" if i % 2 else None),
                strength=i,
                needs=FreeText(needs, "ht", {"en": f"[en] {needs}", "fr": f"[fr] {needs}"}),
                remarks=FreeText("", "ht"),
                author="Jean",
                created_at=NOW - timedelta(minutes=5 * i),
            )
            if reported
            else None
        )
        rows.append(
            BoardRow(
                code=f"{'PNH' if i % 2 else 'KE'}-{i:02d}",
                name=f"Unit {i}",
                side="PNH" if i % 2 else "MSS",
                languages=("ht",) if i % 2 else ("en",),
                report=report,
                stale=i % 5 == 0,
            )
        )
    return Board("Kenscoff", "America/Port-au-Prince", 60, NOW, tuple(rows))


@pytest.mark.parametrize("lang", ["fr", "sw", "en", "ht"])
def test_sixty_units_fit_telegrams_limit_on_every_page(i18n: I18n, lang: str) -> None:
    pages = render_board(board(), lang, i18n)
    assert len(pages) == 4  # 15 units a page
    assert all(visible_len(page) <= TEXT_LIMIT for page in pages)
    text = "\n".join(pages)
    for i in range(60):
        assert f"-{i:02d}</b>" in text  # every unit is on some page, once
    assert i18n.t("board.page", lang, page=4, pages=4) in pages[3]
    assert i18n.t("board.stale", lang) in text
    assert i18n.t("board.no_report", lang) in text


def test_statuses_and_free_text_are_in_the_readers_language(i18n: I18n) -> None:
    fr = "\n".join(render_board(board(8), "fr", i18n))
    sw = "\n".join(render_board(board(8), "sw", i18n))
    assert i18n.t("status.in_contact", "fr") in fr
    assert i18n.t("status.in_contact", "sw") in sw
    assert "[fr] dlo" in fr
    assert "dlo, minisyon" in sw  # no Swahili translation: the original is shown
    assert "🔴" in fr  # in contact, need support, casualties are marked


def test_very_long_needs_never_break_the_limit(i18n: I18n) -> None:
    pages = render_board(board(60, needs="😀 " * 3000), "en", i18n)
    assert all(visible_len(page) <= TEXT_LIMIT for page in pages)


def test_user_text_is_escaped(i18n: I18n) -> None:
    pages = render_board(board(2, needs="<b>bold</b> & more"), "ht", i18n)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in pages[0]


def test_an_empty_operation_still_renders_a_page(i18n: I18n) -> None:
    pages = render_board(board(0), "en", i18n)
    assert len(pages) == 1
    assert i18n.tn("board.units_count", "en", 0) in pages[0]


def test_unit_reports_show_translation_with_the_original(i18n: I18n) -> None:
    b = board(2)
    row = b.rows[1]
    assert row.report is not None
    pages = render_unit_reports(
        row, [row.report] * 30, lang="en", i18n=i18n, timezone=b.timezone, now=NOW
    )
    assert all(visible_len(p) <= TEXT_LIMIT for p in pages)
    text = "\n".join(pages)
    assert "[en] dlo" in text
    assert "<blockquote expandable>" in text
    assert i18n.t("lang.name.ht", "en") in text


def test_a_sitrep_copy_for_a_mixed_group_has_one_block_per_language(i18n: I18n) -> None:
    data = {
        "status": "need_support",
        "latitude": 18.45,
        "longitude": -72.283,
        "place": "Kenscoff",
        "strength": 9,
        "needs": "ranfò",
        "remarks": "",
        "language": "ht",
        "translations": {"en": {"needs": "reinforcements", "remarks": ""}},
    }
    parts = render_sitrep_copy(
        "<b>Jean</b> · PNH-1 · PNH", data, ["ht", "en"], i18n, created_at=NOW
    )
    text = "\n".join(parts)
    assert i18n.t("status.need_support", "ht") in text
    assert i18n.t("status.need_support", "en") in text
    assert "reinforcements" in text
    assert "Kenscoff (18.4500, -72.2830)" in text
