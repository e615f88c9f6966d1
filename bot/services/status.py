"""Unit status: SITREPs, the status board, `/where`, `/who` and staleness alerts.

A SITREP follows the relay's one path: validated, free text translated (before the
transaction, so a slow model never holds a lock), then one transaction records the structured
`reports` row, a `messages` row of kind `sitrep` (the structured data in `media`, so the copy
builder renders status words from the catalogs in each group's language), the translations, the
audit events and one outbox row per partner chat. Refusals are audited after the rollback, on
their own: nothing is stored half-way and everything attempted is in the log.

The schedule logic takes the time as an argument (`check_staleness(now)`); a thin periodic task
in `bot.app.serve` calls it, so tests drive it with a controllable clock.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.domain import LANGUAGES, Role
from bot.errors import AccessDenied, DarajaError, NotFound, StorageError, UserInputError
from bot.i18n import SITREP_STATUSES, I18n
from bot.rendering.formatting import format_age
from bot.services.board import (
    Board,
    BoardRow,
    FreeText,
    Location,
    ReportView,
    esc,
    is_stale,
    render_board,
    render_unit_reports,
)
from bot.services.recording import record_copies
from bot.services.translator import Translator, untranslated
from storage.audit import AuditChain
from storage.db import Database
from storage.errors import DELIVERY, MESSAGE_SOURCE, TRANSLATION, Duplicate, RefusedWrite
from storage.models import Chat, Message, Operation, Unit, utcnow
from storage.notices import NoticeRepo
from storage.status_repo import Report, StaleAlert, StatusRepo
from storage.uow import UnitOfWork
from translation.types import Translation

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = SITREP_STATUSES
MAX_STRENGTH = 10_000
MAX_FREE_TEXT = 1000
DRAFT_TIMEOUT = timedelta(minutes=10)
RECENT_REPORTS = 5

# Places of the mission with approximate coordinates (town centres), so a place name gives a
# point on `/where`. An operation's glossary adds names (without coordinates).
PLACES: dict[str, tuple[float, float]] = {
    "Port-au-Prince": (18.5392, -72.3364),
    "Croix-des-Bouquets": (18.5770, -72.2260),
    "Cité Soleil": (18.5800, -72.3300),
    "Pétion-Ville": (18.5125, -72.2853),
    "Kenscoff": (18.4500, -72.2830),
    "Furcy": (18.4150, -72.2880),
    "Artibonite": (19.2500, -72.5000),
    "Delmas": (18.5500, -72.3000),
    "Tabarre": (18.5800, -72.2700),
    "Martissant": (18.5300, -72.3600),
    "Gonaïves": (19.4470, -72.6890),
    "Saint-Marc": (19.1080, -72.6940),
    "Cap-Haïtien": (19.7570, -72.2040),
    "Carrefour": (18.5410, -72.3990),
    "Cabaret": (18.7350, -72.4190),
    "Mirebalais": (18.8340, -72.1050),
}

_COORD_RE = re.compile(r"^\s*([+-]?\d{1,3}(?:[.,]\d+)?)\s*[,; ]\s*([+-]?\d{1,3}(?:[.,]\d+)?)\s*$")
_COORD_DOT_RE = re.compile(r"^\s*([+-]?\d{1,3}(?:\.\d+)?)\s*[,; ]\s*([+-]?\d{1,3}(?:\.\d+)?)\s*$")


# --- parsing and validation (pure) -----------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form for matching names typed in the field."""
    nfkd = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in nfkd if not unicodedata.combining(c)).replace("_", " ")


def check_coordinate(latitude: float, longitude: float) -> tuple[float, float]:
    """A coordinate on Earth; refuses NaN, out-of-range values and 0,0 (a GPS with no fix)."""
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise UserInputError("coordinate is not a number", key="sitrep.bad_coordinate")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise UserInputError(
            f"impossible coordinate {latitude},{longitude}", key="sitrep.bad_coordinate"
        )
    if latitude == 0 and longitude == 0:
        raise UserInputError("0,0 is a GPS with no fix", key="sitrep.bad_coordinate")
    return round(latitude, 6), round(longitude, 6)


def parse_coordinate(text: str) -> tuple[float, float] | None:
    """`18.5392,-72.3364` (or `18.5392 -72.3364`) -> a checked coordinate; None if the text is
    not shaped like one; UserInputError when it is but cannot be on Earth."""
    match = _COORD_DOT_RE.match(text)
    if match is None:
        match = _COORD_RE.match(text) if text.count(",") != 1 else None
        if match is None:
            return None
    lat = float(match.group(1).replace(",", "."))
    lon = float(match.group(2).replace(",", "."))
    return check_coordinate(lat, lon)


def glossary_places(glossary: Any) -> list[str]:
    """Place and term names from an operation's glossary (a mapping or a list of terms)."""
    if isinstance(glossary, Mapping):
        return [str(k) for k in glossary]
    if isinstance(glossary, list):
        return [str(k) for k in glossary if isinstance(k, str)]
    return []


def known_places(glossary: Any) -> list[str]:
    """Places a SITREP may name: the mission's gazetteer plus the operation's glossary."""
    names = list(PLACES)
    for name in glossary_places(glossary):
        if name not in names and name.upper() != name:  # skip acronyms such as PNH
            names.append(name)
    return names


def resolve_place(text: str, glossary: Any) -> str | None:
    """The canonical spelling of a known place typed any way (`kenscoff`, `Petion-ville`)."""
    wanted = fold(text).replace(" ", "-")
    for name in known_places(glossary):
        if fold(name).replace(" ", "-") == wanted:
            return name
    return None


def parse_location(text: str, glossary: Any) -> Location:
    """A coordinate or a known place name; UserInputError otherwise."""
    coordinate = parse_coordinate(text)
    if coordinate is not None:
        return Location(coordinate[0], coordinate[1], None)
    place = resolve_place(text, glossary)
    if place is None:
        raise UserInputError(
            f"unknown place {text[:40]!r}",
            key="sitrep.bad_location",
            places=", ".join(known_places(glossary)[:12]),
        )
    lat, lon = PLACES.get(place, (None, None))
    return Location(lat, lon, place)


def parse_strength(text: str) -> int:
    """Personnel available: a whole number from 0 to 10,000."""
    cleaned = text.strip()
    try:
        value = int(cleaned)
    except ValueError:
        raise UserInputError(
            f"strength {cleaned[:16]!r} is not a number", key="sitrep.bad_strength"
        ) from None
    if value < 0 or value > MAX_STRENGTH:
        raise UserInputError(f"strength {value} out of range", key="sitrep.bad_strength")
    return value


def parse_status(token: str, i18n: I18n | None = None) -> str | None:
    """A status from its code (`at_position`), its number on the list (1-7), or its label in
    any language (`at position`, `an pozisyon`)."""
    folded = fold(token)
    if folded.isdigit() and 1 <= int(folded) <= len(STATUSES):
        return STATUSES[int(folded) - 1]
    for code in STATUSES:
        if folded in (fold(code), fold(code).replace(" ", "")):
            return code
        if i18n is not None:
            for lang in LANGUAGES:
                if folded == fold(i18n.t(f"status.{code}", lang)):
                    return code
    return None


@dataclass(frozen=True)
class SitrepInput:
    """A complete SITREP as typed or tapped, before it is stored."""

    status: str
    location: Location
    strength: int
    needs: str = ""
    remarks: str = ""


def parse_one_line(args: str, glossary: Any, i18n: I18n | None = None) -> SitrepInput:
    """`/report STATUS LOCATION STRENGTH needs… | remarks…` in one message."""
    words = args.split()
    if len(words) < 3:
        raise UserInputError("SITREP needs STATUS LOCATION STRENGTH", key="sitrep.usage")
    status = parse_status(words[0], i18n)
    if status is None:
        raise UserInputError(f"unknown status {words[0][:24]!r}", key="sitrep.bad_status")
    location = parse_location(words[1], glossary)
    strength = parse_strength(words[2])
    rest = args.split(None, 3)[3] if len(words) > 3 else ""
    needs, _, remarks = rest.partition("|")
    return SitrepInput(status, location, strength, _clip(needs), _clip(remarks))


def _clip(text: str) -> str:
    text = text.strip()
    if text in ("-", "—"):
        return ""
    return text[:MAX_FREE_TEXT]


# --- the /report conversation ----------------------------------------------------------------


@dataclass
class Draft:
    """A SITREP being filled in, one step at a time, by one person in one group."""

    chat_id: int
    user_id: int
    step: str = "status"  # status | location | strength | needs | remarks
    status: str | None = None
    location: Location | None = None
    strength: int | None = None
    needs: str = ""
    remarks: str = ""
    prompt_message_id: int | None = None
    touched: datetime = field(default_factory=utcnow)

    def complete(self) -> SitrepInput:
        """The finished SITREP (every fixed field is set once the last step is reached)."""
        assert self.status is not None
        assert self.location is not None
        assert self.strength is not None
        return SitrepInput(self.status, self.location, self.strength, self.needs, self.remarks)


class ReportDrafts:
    """Conversation state per (chat, person), forgotten after a timeout.

    Every answer is stored in the database (`save`), and `load` reads the drafts back at
    start, so a restart in the middle of a wizard loses nothing: the person's next tap or
    answer carries on. The copy in memory serves the message filter, which cannot wait for
    the database."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork] | None = None,
        *,
        timeout: timedelta = DRAFT_TIMEOUT,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.uow = uow
        self.timeout = timeout
        self.clock = clock
        self._drafts: dict[tuple[int, int], Draft] = {}

    def start(self, chat_id: int, user_id: int) -> Draft:
        """A fresh draft (replacing any earlier one of the same person in the same group);
        `save` it once its prompt is posted."""
        self._expire()
        draft = Draft(chat_id=chat_id, user_id=user_id, touched=self.clock())
        self._drafts[(chat_id, user_id)] = draft
        return draft

    def get(self, chat_id: int, user_id: int) -> Draft | None:
        """The person's live draft in this group, if any."""
        draft = self._drafts.get((chat_id, user_id))
        if draft is None:
            return None
        if self.clock() - draft.touched > self.timeout:
            del self._drafts[(chat_id, user_id)]
            return None
        draft.touched = self.clock()
        return draft

    def waiting_for_input(self, chat_id: int, user_id: int) -> bool:
        """Whether the person's next message in this group answers a SITREP question."""
        draft = self._drafts.get((chat_id, user_id))
        return draft is not None and self.clock() - draft.touched <= self.timeout

    def drop(self, chat_id: int, user_id: int) -> None:
        """Forget a draft in memory (`discard` also forgets the stored one)."""
        self._drafts.pop((chat_id, user_id), None)

    async def save(self, draft: Draft) -> None:
        """Store the draft's answers so far."""
        draft.touched = self.clock()
        self._drafts[(draft.chat_id, draft.user_id)] = draft
        if self.uow is not None:
            async with self.uow() as uow:
                await uow.drafts.put(
                    draft.chat_id, draft.user_id, _draft_data(draft), draft.touched
                )

    async def discard(self, chat_id: int, user_id: int) -> None:
        """Forget a draft (filed or cancelled), stored copy included."""
        self.drop(chat_id, user_id)
        if self.uow is not None:
            async with self.uow() as uow:
                await uow.drafts.delete(chat_id, user_id)

    async def load(self) -> int:
        """Read back the stored drafts still live (at start); returns how many."""
        if self.uow is None:
            return 0
        now = self.clock()
        async with self.uow() as uow:
            repo = uow.drafts
            await repo.delete_before(now - self.timeout)
            rows = list(await repo.all())
        for row in rows:
            draft = _draft_of(row.telegram_chat_id, row.telegram_user_id, row.data, row.updated_at)
            self._drafts[(draft.chat_id, draft.user_id)] = draft
        return len(rows)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, d in self._drafts.items() if now - d.touched > self.timeout]:
            del self._drafts[key]


def _draft_data(draft: Draft) -> dict[str, Any]:
    loc = draft.location
    return {
        "step": draft.step,
        "status": draft.status,
        "location": [loc.latitude, loc.longitude, loc.place] if loc is not None else None,
        "strength": draft.strength,
        "needs": draft.needs,
        "remarks": draft.remarks,
        "prompt_message_id": draft.prompt_message_id,
    }


def _draft_of(chat_id: int, user_id: int, data: dict[str, Any], touched: datetime) -> Draft:
    loc = data.get("location")
    return Draft(
        chat_id=chat_id,
        user_id=user_id,
        step=str(data.get("step") or "status"),
        status=data.get("status"),
        location=Location(loc[0], loc[1], loc[2]) if loc else None,
        strength=data.get("strength"),
        needs=str(data.get("needs") or ""),
        remarks=str(data.get("remarks") or ""),
        prompt_message_id=data.get("prompt_message_id"),
        touched=touched,
    )


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FiledReport:
    """What `/report` stored and queued."""

    report_id: int
    message_id: int
    unit: str
    deliveries: int
    view: ReportView
    duplicate: bool = False


@dataclass(frozen=True)
class Notice:
    """A message the bot sends on its own (alerts, reminders) to one chat."""

    chat_id: int  # Telegram chat id (a group, or a person's private chat)
    text: str  # Telegram HTML
    reply_to: int | None = None
    kind: str = "notice"  # flash.reminder | flash.escalation | status.stale_alert | ...


async def queue_notices(
    repo: NoticeRepo, notices: Sequence[Notice], *, now: datetime, ref: str, operation_id: int
) -> None:
    """Queue notices in the notice outbox, in the caller's transaction (the worker posts
    them once it commits)."""
    for notice in notices:
        await repo.queue(
            telegram_chat_id=notice.chat_id,
            kind=notice.kind,
            text=notice.text,
            target_message_id=notice.reply_to,
            ref=ref,
            operation_id=operation_id,
            now=now,
        )


@dataclass(frozen=True)
class UnitInfo:
    """A unit for `/who` and `/where`."""

    code: str
    name: str
    side: str
    languages: tuple[str, ...]
    has_chat: bool


# --- the service -----------------------------------------------------------------------------


class StatusService:
    """SITREPs, the board, `/where`, `/who` and staleness alerts."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        translator: Translator,
        i18n: I18n,
        *,
        admin_ids: Sequence[int] = (),
        clock: Callable[[], datetime] = utcnow,
        on_queued: Callable[[], None] = lambda: None,
        on_notice: Callable[[], None] = lambda: None,
        uow: Callable[..., UnitOfWork] | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        # The staleness rule runs as units of work (tests pass a factory of fakes).
        self.uow: Callable[..., UnitOfWork] = uow or partial(UnitOfWork, db, audit)
        self.translator = translator
        self.i18n = i18n
        self.admin_ids = frozenset(admin_ids)
        self.clock = clock
        self.on_queued = on_queued
        self.on_notice = on_notice
        self.drafts = ReportDrafts(self.uow, clock=clock)

    # --- SITREP ----------------------------------------------------------------------------

    async def report_context(self, telegram_chat_id: int) -> tuple[str, list[str]]:
        """The unit code of a group and the places its operation knows (for the keyboard);
        refused when the group is not a unit's enrolled group."""
        async with self.uow() as uow:
            _chat, unit, op = await self._unit_chat(uow, telegram_chat_id)
            return unit.code, known_places(op.glossary)

    async def check_location(self, telegram_chat_id: int, text: str) -> Location:
        """Validate a typed location against the group's operation."""
        async with self.uow() as uow:
            _chat, _unit, op = await self._unit_chat(uow, telegram_chat_id)
            return parse_location(text, op.glossary)

    async def parse_line(
        self, telegram_chat_id: int, args: str, *, actor: int | None
    ) -> SitrepInput:
        """Parse the one-line form against the group's operation (refusals audited)."""
        async with self._refusals(actor, telegram_chat_id, "sitrep"), self.uow() as uow:
            _chat, _unit, op = await self._unit_chat(uow, telegram_chat_id)
            glossary = op.glossary
            return parse_one_line(args, glossary, self.i18n)

    async def refuse(
        self,
        actor: int | None,
        reason: str,
        *,
        chat_id: int | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Audit a refused SITREP step (bad coordinate, negative strength, wrong chat...)."""
        async with self.uow() as uow:
            chat = await uow.chats.by_telegram_id(chat_id) if chat_id is not None else None
            await uow.audit(
                component="status",
                event_type="sitrep.refused",
                actor=f"tg:{actor}" if actor else "unknown",
                outcome="refused",
                operation_id=chat.operation_id if chat else None,
                payload={"reason": reason, "chat_id": chat_id, **(detail or {})},
            )

    async def file_report(
        self,
        *,
        telegram_chat_id: int,
        telegram_message_id: int,
        author_id: int | None,
        author_name: str,
        sitrep: SitrepInput,
        update_id: int | None = None,
    ) -> FiledReport:
        """Store a SITREP and queue its copies to every partner group, in one transaction."""
        loc = sitrep.location
        if loc.place in PLACES and loc.latitude is None and loc.longitude is None:
            loc = Location(*PLACES[loc.place], loc.place)  # a known place gives a point
        needs, remarks = _clip(sitrep.needs), _clip(sitrep.remarks)
        async with (
            self._refusals(author_id, telegram_chat_id, "sitrep"),
            self.uow() as uow,
        ):
            _validate(sitrep)
            chat, unit, op = await self._unit_chat(uow, telegram_chat_id)
            existing = await uow.messages.by_telegram(chat.id, telegram_message_id)
            author = await uow.people.by_telegram_id(author_id) if author_id else None
            if author is not None and author.unit_id not in (None, unit.id):
                raise AccessDenied(
                    "reporter belongs to another unit",
                    key="sitrep.other_unit",
                    refused="sitrep.other_unit",
                )
            chat_langs = chat.language_list
            glossary = op.glossary or None
            author_lang = author.language if author else None
        if existing is not None:
            return FiledReport(0, existing.id, unit.code, 0, _view_of(sitrep, "", existing), True)
        free = "\n".join(t for t in (needs, remarks) if t)
        if free:
            guess = self.translator.detect(
                free, chat_languages=chat_langs, author_language=author_lang
            )
            source = guess.language
        else:
            source = chat_langs[0]
        targets = [lang for lang in LANGUAGES if lang != source]
        tr_needs = await self._translate(needs, source, targets, glossary)
        tr_remarks = await self._translate(remarks, source, targets, glossary)
        translations: dict[str, dict[str, Any]] = {
            lang: {
                "needs": tr_needs[lang].text,
                "remarks": tr_remarks[lang].text,
                "flags": sorted(
                    {str(f) for f in (*tr_needs[lang].flags, *tr_remarks[lang].flags)}
                ),
            }
            for lang in targets
        }
        data = {
            "status": sitrep.status,
            "latitude": loc.latitude,
            "longitude": loc.longitude,
            "place": loc.place,
            "strength": sitrep.strength,
            "needs": needs,
            "remarks": remarks,
            "language": source,
            "translations": translations,
        }
        now = self.clock()
        try:
            async with self.uow() as uow:
                chat, unit, op = await self._unit_chat(uow, telegram_chat_id)
                targets_chats = [c for c in await uow.chats.linked(op.id) if c.id != chat.id]
                message = await uow.messages.add_message(
                    Message(
                        operation_id=op.id,
                        chat_id=chat.id,
                        telegram_message_id=telegram_message_id,
                        update_id=update_id,
                        author_user_id=author_id,
                        author_name=author_name[:255],
                        kind="sitrep",
                        text=free,
                        entities=None,
                        media={"sitrep": data},
                        source_language=source,
                        language_decided_by="sitrep",
                        reply_to_message_id=None,
                        priority="normal",
                        revision=0,
                        created_at=now,
                    )
                )
                report = await uow.status.add_report(
                    Report(
                        operation_id=op.id,
                        unit_id=unit.id,
                        chat_id=chat.id,
                        message_id=message.id,
                        author_user_id=author_id,
                        author_name=author_name[:255],
                        status=sitrep.status,
                        latitude=loc.latitude,
                        longitude=loc.longitude,
                        place=loc.place,
                        strength=sitrep.strength,
                        needs=needs,
                        remarks=remarks,
                        text_language=source,
                        translations=translations,
                        created_at=now,
                    )
                )
                await uow.audit(
                    component="status",
                    event_type="sitrep.filed",
                    actor=f"tg:{author_id}" if author_id else "unknown",
                    operation_id=op.id,
                    ts=now,
                    payload={
                        "report_id": report.id,
                        "message_id": message.id,
                        "unit": unit.code,
                        "chat_id": telegram_chat_id,
                        "author": author_name,
                        "status": sitrep.status,
                        "latitude": loc.latitude,
                        "longitude": loc.longitude,
                        "place": loc.place,
                        "strength": sitrep.strength,
                        "needs": needs,
                        "remarks": remarks,
                        "language": source,
                    },
                )
                combined = {lang: _combine(tr_needs[lang], tr_remarks[lang]) for lang in targets}
                count = await record_copies(
                    uow.session,
                    self.audit,
                    message=message,
                    translations=combined if free else {},
                    targets=targets_chats,
                    now=now,
                )
        except Duplicate as exc:
            if exc.constraint not in (MESSAGE_SOURCE, TRANSLATION, DELIVERY):
                log.error("SITREP from %s not filed: %s", author_id, exc.constraint)
                raise StorageError("SITREP not filed", key="sitrep.not_filed") from exc
            # The same update was filed twice at once: the other one won.
            log.info("SITREP update %s already filed (%s)", update_id, exc.constraint)
            return FiledReport(0, 0, unit.code, 0, _view_of(sitrep, source, None), True)
        except RefusedWrite as exc:
            log.error("SITREP from %s not filed: %s", author_id, type(exc).__name__)
            raise StorageError("SITREP not filed", key="sitrep.not_filed") from exc
        if count:
            self.on_queued()
        view = ReportView(
            sitrep.status,
            loc,
            sitrep.strength,
            FreeText(needs, source, {k: str(v["needs"]) for k, v in translations.items()}),
            FreeText(remarks, source, {k: str(v["remarks"]) for k, v in translations.items()}),
            author_name,
            now,
        )
        return FiledReport(report.id, message.id, unit.code, count, view)

    async def _translate(
        self, text: str, source: str, targets: Sequence[str], glossary: Any
    ) -> dict[str, Translation]:
        if not text.strip():
            return {t: untranslated("", source, t, missing=False) for t in targets}
        results = await self.translator.translate_many(
            text, list(targets), source=source, glossary=glossary
        )
        return dict(zip(targets, results, strict=True))

    # --- the board -------------------------------------------------------------------------

    async def board(self, viewer_id: int, telegram_chat_id: int | None = None) -> Board:
        """Everything `/status` shows for the viewer's operation, read in one transaction."""
        now = self.clock()
        async with (
            self._refusals(viewer_id, telegram_chat_id, "status"),
            self.uow() as uow,
        ):
            op = await self._viewer_operation(uow, viewer_id, telegram_chat_id)
            return await self._board(uow.status, op, now)

    async def _board(self, repo: StatusRepo, op: Operation, now: datetime) -> Board:
        # Two queries whatever the size of the operation (the board's time budget is 50 ms).
        units = await repo.units_with_latest(op.id)
        chats = await repo.unit_chats(op.id)
        interval = timedelta(minutes=op.report_interval_min)
        rows = []
        for unit, report in units:
            unit_chats = chats.get(unit.id, [])
            since = min((c.enrolled_at for c in unit_chats), default=None)
            rows.append(
                BoardRow(
                    code=unit.code,
                    name=unit.name,
                    side=unit.side,
                    languages=tuple(
                        unit_chats[0].language_list if unit_chats else [unit.language]
                    ),
                    report=_view(report) if report else None,
                    stale=bool(unit_chats)
                    and is_stale(
                        report.created_at if report else None,
                        since,
                        report.status if report else None,
                        interval=interval,
                        now=now,
                    ),
                    has_chat=bool(unit_chats),
                )
            )
        return Board(
            operation=op.name,
            timezone=op.timezone,
            interval_min=op.report_interval_min,
            now=now,
            rows=tuple(rows),
            renderings=glossary_renderings(op.glossary),
        )

    async def board_pages(
        self, viewer_id: int, lang: str, telegram_chat_id: int | None = None
    ) -> list[str]:
        """The board rendered for a reader, as pages (audited as a read)."""
        board = await self.board(viewer_id, telegram_chat_id)
        return render_board(board, lang, self.i18n)

    async def unit_pages(
        self, viewer_id: int, unit_code: str, lang: str, telegram_chat_id: int | None = None
    ) -> list[str]:
        """`/status UNIT`: a unit's recent reports with originals."""
        now = self.clock()
        async with (
            self._refusals(viewer_id, telegram_chat_id, "status"),
            self.uow() as uow,
        ):
            op = await self._viewer_operation(uow, viewer_id, telegram_chat_id)
            unit = await self._unit(uow, op, unit_code)
            board = await self._board(uow.status, op, now)
            row = next(r for r in board.rows if r.code == unit.code)
            reports = [_view(r) for r in await uow.status.unit_reports(unit.id, RECENT_REPORTS)]
        return render_unit_reports(
            row,
            reports,
            lang=lang,
            i18n=self.i18n,
            timezone=board.timezone,
            now=now,
            renderings=board.renderings,
        )

    async def where(
        self, viewer_id: int, unit_code: str, lang: str, telegram_chat_id: int | None = None
    ) -> str:
        """`/where UNIT`: the unit's last reported location and how long ago, in one line."""
        now = self.clock()
        async with (
            self._refusals(viewer_id, telegram_chat_id, "where"),
            self.uow() as uow,
        ):
            op = await self._viewer_operation(uow, viewer_id, telegram_chat_id)
            unit = await self._unit(uow, op, unit_code)
            reports = await uow.status.unit_reports(unit.id, 1)
        if not reports:
            return self.i18n.t("where.none", lang, unit=esc(unit.code))
        view = _view(reports[0])
        return self.i18n.t(
            "where.answer",
            lang,
            unit=esc(unit.code),
            location=esc(view.location.render(lang, glossary_renderings(op.glossary))),
            status=esc(self.i18n.t(f"status.{view.status}", lang)),
            age=esc(format_age(now - view.created_at, lang, self.i18n)),
        )

    async def who(self, viewer_id: int, telegram_chat_id: int | None = None) -> list[UnitInfo]:
        """`/who`: the operation's units with their side and their groups' languages."""
        async with self._refusals(viewer_id, telegram_chat_id, "who"), self.uow() as uow:
            op = await self._viewer_operation(uow, viewer_id, telegram_chat_id)
            repo = uow.status
            chats = await repo.unit_chats(op.id)
            out = []
            for unit in await repo.units(op.id):
                langs: list[str] = []
                for chat in chats.get(unit.id, []):
                    langs.extend(x for x in chat.language_list if x not in langs)
                out.append(
                    UnitInfo(
                        unit.code,
                        unit.name,
                        unit.side,
                        tuple(langs or [unit.language]),
                        unit.id in chats,
                    )
                )
            return out

    # --- staleness -------------------------------------------------------------------------

    async def check_staleness(self, now: datetime) -> list[Notice]:
        """Alert each operation's commanders once per reporting lapse; returns what was queued.

        A lapse is identified by the unit's last report (`r<id>`), or `none` before the first
        one, so a unit is alerted again only after it has reported and lapsed once more. The
        alerts are queued in the notice outbox in the transaction that records the lapses as
        alerted, so a lapse is never marked alerted without its alert on its way.
        """
        queued: list[Notice] = []
        async with self.uow() as uow:
            operations = list(await uow.operations.all())
        for op in operations:
            async with self.uow() as uow:
                board = await self._board(uow.status, op, now)
                repo = uow.status
                done = await repo.alerted_lapses(op.id)
                units = {u.code: u for u in await repo.units(op.id)}
                latest = await repo.latest_reports(op.id)
                targets = await self._commanders(uow, op)
                lapses: list[tuple[Unit, str, BoardRow]] = []
                for row in board.rows:
                    if not row.stale:
                        continue
                    unit = units[row.code]
                    report = latest.get(unit.id)
                    lapse = f"r{report.id}" if report else "none"
                    if (unit.id, lapse) not in done:
                        lapses.append((unit, lapse, row))
                if not lapses or not targets:
                    continue
                notices = [
                    Notice(
                        chat_id, self._stale_text(op, lapses, lang, now), kind="status.stale_alert"
                    )
                    for chat_id, lang in targets
                ]
                await queue_notices(
                    uow.notices, notices, now=now, ref=f"operation:{op.id}", operation_id=op.id
                )
                for unit, lapse, _row in lapses:
                    await repo.add_alert(
                        StaleAlert(
                            operation_id=op.id, unit_id=unit.id, lapse=lapse, alerted_at=now
                        )
                    )
                await uow.audit(
                    component="status",
                    event_type="status.stale_alert",
                    actor="daraja",
                    operation_id=op.id,
                    ts=now,
                    payload={
                        "units": [u.code for u, _, _ in lapses],
                        "lapses": [lapse for _, lapse, _ in lapses],
                        "notified": [chat for chat, _ in targets],
                    },
                )
            queued.extend(notices)
        if queued:
            self.on_notice()
        return queued

    def _stale_text(
        self, op: Operation, lapses: Sequence[tuple[Unit, str, BoardRow]], lang: str, now: datetime
    ) -> str:
        """One staleness alert in the reader's language."""
        lines = []
        for _unit, _lapse, row in lapses:
            age = (
                format_age(now - row.report.created_at, lang, self.i18n)
                if row.report
                else self.i18n.t("board.no_report", lang)
            )
            lines.append(f"• <b>{esc(row.code)}</b> ({esc(row.side)}): {esc(age)}")
        head = self.i18n.t(
            "stale.alert", lang, operation=esc(op.name), interval=op.report_interval_min
        )
        return head + "\n" + "\n".join(lines)

    async def _commanders(self, uow: UnitOfWork, op: Operation) -> list[tuple[int, str]]:
        """Where the operation's commanders read alerts: its command chats, else each commander
        privately (Telegram private chat id = user id), each in its language."""
        command = await uow.status.command_chats(op.id)
        if command:
            return [(c.telegram_chat_id, c.language_list[0]) for c in command]
        people = await uow.people.in_operation(op.id)
        return [
            (p.telegram_user_id, p.language or op.default_language)
            for p in people
            if p.role in (Role.COMMANDER.value, Role.ADMIN.value)
        ]

    # --- helpers ---------------------------------------------------------------------------

    async def _unit_chat(
        self, uow: UnitOfWork, telegram_chat_id: int
    ) -> tuple[Chat, Unit, Operation]:
        chat = await uow.chats.by_telegram_id(telegram_chat_id)
        if chat is None or not chat.active:
            raise AccessDenied(
                "chat not enrolled", key="access.chat_not_enrolled", refused="chat.not_enrolled"
            )
        if chat.unit_id is None:
            raise UserInputError(
                "not a unit's group", key="sitrep.not_unit_chat", refused="sitrep.not_unit_chat"
            )
        ops = uow.operations
        unit = await ops.unit_by_id(chat.unit_id)
        op = await ops.by_id(chat.operation_id)
        if unit is None or op is None or unit.operation_id != op.id:
            raise NotFound("unit not in the operation", key="sitrep.unit_not_in_operation")
        return chat, unit, op

    async def _viewer_operation(
        self, uow: UnitOfWork, viewer_id: int, telegram_chat_id: int | None
    ) -> Operation:
        """The operation a commander asks about: the enrolled chat's, else the person's, else
        the only one (admins named in settings need not be enrolled)."""
        ops = uow.operations
        if telegram_chat_id is not None and telegram_chat_id != viewer_id:
            chat = await uow.chats.by_telegram_id(telegram_chat_id)
            if chat is not None and chat.active:
                op = await ops.by_id(chat.operation_id)
                if op is not None:
                    return op
        op = await ops.of_person(viewer_id)
        if op is not None:
            return op
        every = list(await ops.all())
        if len(every) == 1:
            return every[0]
        raise NotFound("no operation for this person", key="status.no_operation")

    async def _unit(self, uow: UnitOfWork, op: Operation, code: str) -> Unit:
        unit = await uow.operations.unit(op, code.strip())
        if unit is None:
            raise NotFound(
                f"no unit {code!r} in {op.name}",
                key="error.unknown_unit",
                unit=code[:32],
                refused="unknown_unit",
            )
        return unit

    @asynccontextmanager
    async def _refusals(
        self, actor: int | None, chat_id: int | None, command: str
    ) -> AsyncIterator[None]:
        """Refusals raised inside are audited after the rollback, then re-raised."""
        try:
            yield
        except DarajaError as exc:
            reason = exc.params.get("refused") or exc.key
            async with self.uow() as uow:
                chat = await uow.chats.by_telegram_id(chat_id) if chat_id is not None else None
                await uow.audit(
                    component="status",
                    event_type=f"{command}.refused",
                    actor=f"tg:{actor}" if actor else "unknown",
                    outcome="refused",
                    operation_id=chat.operation_id if chat else None,
                    payload={"reason": str(reason), "chat_id": chat_id},
                )
            raise


def _validate(sitrep: SitrepInput) -> None:
    """Refuse a SITREP no parser would have produced (the service checks its input itself)."""
    if sitrep.status not in STATUSES:
        raise UserInputError(f"unknown status {sitrep.status!r}", key="sitrep.bad_status")
    if sitrep.strength < 0 or sitrep.strength > MAX_STRENGTH:
        raise UserInputError("strength out of range", key="sitrep.bad_strength")
    loc = sitrep.location
    if loc.latitude is not None or loc.longitude is not None:
        if loc.latitude is None or loc.longitude is None:
            raise UserInputError("half a coordinate", key="sitrep.bad_coordinate")
        check_coordinate(loc.latitude, loc.longitude)
    elif not loc.place:
        raise UserInputError("no location", key="sitrep.bad_location", places="")


def _combine(needs: Translation, remarks: Translation) -> Translation:
    """One translation row per language for a SITREP's free text (needs, then remarks)."""
    text = "\n".join(t for t in (needs.text, remarks.text) if t)
    return replace(
        needs if needs.text else remarks,
        text=text,
        flags=tuple(dict.fromkeys((*needs.flags, *remarks.flags))),
    )


def glossary_renderings(glossary: Any) -> dict[str, dict[str, str]]:
    """Fixed renderings of glossary terms by language, e.g. Port-au-Prince -> ht Pòtoprens."""
    if not isinstance(glossary, Mapping):
        return {}
    return {
        str(term): {str(k): str(v) for k, v in value.items()}
        for term, value in glossary.items()
        if isinstance(value, Mapping)
    }


def _view(report: Report) -> ReportView:
    translations: Mapping[str, Any] = report.translations or {}
    return ReportView(
        status=report.status,
        location=Location(report.latitude, report.longitude, report.place),
        strength=report.strength,
        needs=FreeText(
            report.needs,
            report.text_language,
            {k: str(v.get("needs", "")) for k, v in translations.items()},
        ),
        remarks=FreeText(
            report.remarks,
            report.text_language,
            {k: str(v.get("remarks", "")) for k, v in translations.items()},
        ),
        author=report.author_name,
        created_at=report.created_at,
    )


def _view_of(sitrep: SitrepInput, language: str, message: Message | None) -> ReportView:
    return ReportView(
        sitrep.status,
        sitrep.location,
        sitrep.strength,
        FreeText(sitrep.needs, language or None),
        FreeText(sitrep.remarks, language or None),
        message.author_name if message else "",
        message.created_at if message else utcnow(),
    )
