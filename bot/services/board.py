"""Pure rendering of unit status for people: the board, a unit's reports, a SITREP copy.

No database and no Telegram here: the status service gathers `BoardRow`s and these functions
turn them into Telegram HTML in the reader's language, every page within Telegram's 4,096
character limit. Interface words come from the catalogs (`status.*`, `board.*`); free text
(needs, remarks) is shown in the reader's language when a translation exists, else as written.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain import escape_html
from bot.i18n import I18n
from bot.rendering.copies import TEXT_LIMIT, pack, pack_headed, visible_len
from bot.rendering.formatting import format_age, format_datetime, format_time

# Units per board page: 15 two-line entries read comfortably on a phone; pages are further
# split if long needs would pass Telegram's limit.
UNITS_PER_PAGE = 15
PAGE_BUDGET = TEXT_LIMIT - 200  # room for the title, the page line and Telegram's counting
NEEDS_PREVIEW = 80  # characters of needs shown on the board (the full text: /status UNIT)
# Statuses a commander must see first: they get a red mark on the board.
URGENT = frozenset({"in_contact", "need_support", "casualties"})


@dataclass(frozen=True)
class Location:
    """Where a unit reported from: a coordinate, a named place, or both."""

    latitude: float | None = None
    longitude: float | None = None
    place: str | None = None

    def render(self, lang: str, renderings: Mapping[str, Mapping[str, str]] | None = None) -> str:
        """`Kenscoff (18.4500, -72.2800)`; the place in the reader's language if the glossary
        fixes a rendering for it."""
        name = self.place
        if name and renderings:
            name = renderings.get(name, {}).get(lang) or name
        coords = (
            f"{self.latitude:.4f}, {self.longitude:.4f}"
            if self.latitude is not None and self.longitude is not None
            else ""
        )
        if name and coords:
            return f"{name} ({coords})"
        return name or coords or "-"


@dataclass(frozen=True)
class FreeText:
    """Free text as written plus its translations by language."""

    original: str
    language: str | None
    translations: Mapping[str, str] = field(default_factory=dict)

    def in_language(self, lang: str) -> tuple[str, bool]:
        """The text for a reader of `lang`, and whether it is the original."""
        if not self.original or lang == self.language:
            return self.original, True
        translated = self.translations.get(lang)
        if translated:
            return translated, False
        return self.original, True


@dataclass(frozen=True)
class ReportView:
    """One report as the board shows it."""

    status: str
    location: Location
    strength: int | None
    needs: FreeText
    remarks: FreeText
    author: str
    created_at: datetime


@dataclass(frozen=True)
class BoardRow:
    """One unit on the board: who it is and its newest report (if any)."""

    code: str
    name: str
    side: str
    languages: tuple[str, ...]
    report: ReportView | None
    stale: bool
    has_chat: bool = True


@dataclass(frozen=True)
class Board:
    """Everything the board shows, gathered in one read."""

    operation: str
    timezone: str
    interval_min: int
    now: datetime
    rows: tuple[BoardRow, ...]
    renderings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def render_board(board: Board, lang: str, i18n: I18n) -> list[str]:
    """The whole board as pages of Telegram HTML, each within the message limit."""
    entries = [_entry(row, board, lang, i18n) for row in board.rows]
    pages: list[list[str]] = []
    current: list[str] = []
    size = 0
    for entry in entries:
        length = visible_len(entry) + 1
        if current and (len(current) >= UNITS_PER_PAGE or size + length > PAGE_BUDGET):
            pages.append(current)
            current, size = [], 0
        current.append(entry)
        size += length
    if current or not pages:
        pages.append(current)
    total = len(pages)
    stale = sum(1 for row in board.rows if row.stale)
    urgent = sum(1 for row in board.rows if row.report and row.report.status in URGENT)
    head = [
        f"<b>{escape_html(i18n.t('board.title', lang))}</b> · {escape_html(board.operation)}",
        escape_html(i18n.tn("board.units_count", lang, len(board.rows)))
        + (f" · ⚠ {stale}" if stale else "")
        + (f" · 🔴 {urgent}" if urgent else "")
        + f" · {escape_html(format_time(board.now, lang, board.timezone))}",
    ]
    out: list[str] = []
    for number, page in enumerate(pages, start=1):
        lines = list(head)
        if total > 1:
            lines[1] += " · " + escape_html(i18n.t("board.page", lang, page=number, pages=total))
        lines.append("")
        lines.extend(page)
        out.append("\n".join(lines))
    return out


def _entry(row: BoardRow, board: Board, lang: str, i18n: I18n) -> str:
    report = row.report
    first = f"<b>{escape_html(row.code)}</b> · {escape_html(row.side)}"
    if report is None:
        first += f" · <i>{escape_html(i18n.t('board.no_report', lang))}</i>"
    else:
        mark = "🔴 " if report.status in URGENT else ""
        first += f" · {mark}<b>{escape_html(i18n.t(f'status.{report.status}', lang))}</b>"
    if row.stale:
        first += f" · {escape_html(i18n.t('board.stale', lang))}"
    if report is None:
        return first
    bits = [
        "📍 " + escape_html(report.location.render(lang, board.renderings)),
        "👥 " + ("-" if report.strength is None else str(report.strength)),
        "🕒 " + escape_html(format_age(board.now - report.created_at, lang, i18n)),
    ]
    lines = [first, "    " + " · ".join(bits)]
    needs, _ = report.needs.in_language(lang)
    if needs:
        short = needs if len(needs) <= NEEDS_PREVIEW else needs[: NEEDS_PREVIEW - 1] + "…"
        lines.append(f"    {escape_html(i18n.t('board.needs', lang))}: {escape_html(short)}")
    return "\n".join(lines)


def render_unit_reports(
    row: BoardRow,
    reports: Sequence[ReportView],
    *,
    lang: str,
    i18n: I18n,
    timezone: str,
    now: datetime,
    renderings: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """`/status UNIT`: the unit's recent reports, translated, each with its original."""
    head = f"<b>{escape_html(row.code)}</b> · {escape_html(row.name)} · {escape_html(row.side)}"
    if row.stale:
        head += f" · {escape_html(i18n.t('board.stale', lang))}"
    pieces = [head]
    if not reports:
        pieces.append(f"<i>{escape_html(i18n.t('board.no_report', lang))}</i>")
    for report in reports:
        when = format_datetime(report.created_at, lang, timezone)
        age = format_age(now - report.created_at, lang, i18n)
        block = [
            "",
            f"🕒 {escape_html(when)} ({escape_html(age)}) · {escape_html(report.author)}",
            *sitrep_lines(report, lang, i18n, renderings=renderings, with_original=True),
        ]
        pieces.append("\n".join(block))
    return _pack(pieces)


def sitrep_lines(
    report: ReportView,
    lang: str,
    i18n: I18n,
    *,
    renderings: Mapping[str, Mapping[str, str]] | None = None,
    with_original: bool = True,
) -> list[str]:
    """The body of a SITREP in one language: status, location, strength, needs, remarks, and
    the originals of translated free text in an expandable quote."""
    mark = "🔴 " if report.status in URGENT else ""
    lines = [
        # SITREP is a proword kept as is in every language (locales/terminology.tsv).
        f"📋 <b>SITREP</b> · {mark}<b>{escape_html(i18n.t(f'status.{report.status}', lang))}</b>",
        f"📍 {escape_html(i18n.t('board.location', lang))}: "
        + escape_html(report.location.render(lang, renderings)),
        f"👥 {escape_html(i18n.t('board.strength', lang))}: "
        + ("-" if report.strength is None else str(report.strength)),
    ]
    originals: list[str] = []
    for key, text in (("board.needs", report.needs), ("sitrep.remarks", report.remarks)):
        shown, is_original = text.in_language(lang)
        if not shown:
            continue
        lines.append(f"{escape_html(i18n.t(key, lang))}: {escape_html(shown)}")
        if not is_original:
            originals.append(f"{escape_html(i18n.t(key, lang))}: {escape_html(text.original)}")
    if originals and with_original:
        source = report.needs.language or report.remarks.language or lang
        label = i18n.t("relay.original", lang, language=i18n.t(f"lang.name.{source}", lang))
        lines.append(
            f"<blockquote expandable><b>{escape_html(label)}</b>\n"
            + "\n".join(originals)
            + "</blockquote>"
        )
    return lines


def report_view(data: Mapping[str, Any], created_at: datetime, author: str) -> ReportView:
    """A report view from the structured SITREP kept in a message's `media` JSON."""
    translations: Mapping[str, Any] = data.get("translations") or {}
    language = data.get("language")
    return ReportView(
        status=str(data.get("status", "")),
        location=Location(data.get("latitude"), data.get("longitude"), data.get("place")),
        strength=data.get("strength"),
        needs=FreeText(
            str(data.get("needs") or ""),
            language,
            {k: str(v.get("needs", "")) for k, v in translations.items()},
        ),
        remarks=FreeText(
            str(data.get("remarks") or ""),
            language,
            {k: str(v.get("remarks", "")) for k, v in translations.items()},
        ),
        author=author,
        created_at=created_at,
    )


def render_sitrep_copy(
    header: str,
    data: Mapping[str, Any],
    languages: Sequence[str],
    i18n: I18n,
    *,
    created_at: datetime,
    renderings: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """A relayed SITREP for a group: the header, then the report in each of its languages."""
    view = report_view(data, created_at, "")
    pieces: list[str] = []
    for lang in languages:
        if len(languages) > 1:
            pieces.append(f"<i>{escape_html(lang)}:</i>")
        pieces.extend(sitrep_lines(view, lang, i18n, renderings=renderings))
    return pack_headed(header, lambda room: _fit(pieces, room), PAGE_BUDGET)


def is_stale(
    report_time: datetime | None,
    since: datetime | None,
    status: str | None,
    *,
    interval: timedelta,
    now: datetime,
) -> bool:
    """Whether a unit is overdue: no report within the interval (counted from its last report,
    else from when its group was enrolled). Units reporting `off_duty` are never overdue."""
    if status == "off_duty":
        return False
    start = report_time or since
    if start is None:
        return False
    return now - start > interval


def _pack(pieces: Sequence[str]) -> list[str]:
    """Join pieces into messages within the limit; a piece longer than a page is cut."""
    return pack(_fit(pieces, PAGE_BUDGET), PAGE_BUDGET)


def _fit(pieces: Sequence[str], budget: int) -> list[str]:
    """The pieces, each cut to fit `budget`."""
    return [_cut(p, budget) if visible_len(p) + 1 > budget else p for p in pieces]


def _cut(piece: str, budget: int) -> str:
    # Only reached by a single report with pages of free text: keep it readable and valid
    # HTML by dropping markup rather than splitting inside a tag.
    import re

    plain = html.unescape(re.sub(r"<[^>]+>", "", piece))
    keep = max(1, math.floor(budget * 0.9))
    return escape_html(plain[:keep]) + "…"
