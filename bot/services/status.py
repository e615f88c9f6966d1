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
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.domain import LANGUAGES, MessageKind, Role, escape_html
from bot.domain.gazetteer import PLACES, glossary_renderings, known_places
from bot.errors import AccessDenied, NotFound, StorageError, UserInputError
from bot.i18n import I18n
from bot.rendering.formatting import format_age
from bot.services.board import (
    Board,
    BoardRow,
    FreeText,
    Location,
    ReportView,
    is_stale,
    render_board,
    render_unit_reports,
)
from bot.services.notify import Notice, queue_notices
from bot.services.recording import record_copies
from bot.services.refusals import audit_refusal, audited_refusals, tg_actor
from bot.services.sitrep import (
    ReportDrafts,
    SitrepInput,
    clip,
    combine_free_text,
    parse_location,
    parse_one_line,
    validate,
)
from bot.services.translator import Translator, untranslated
from storage.audit import AuditChain
from storage.db import Database
from storage.errors import DELIVERY, MESSAGE_SOURCE, TRANSLATION, Duplicate, RefusedWrite
from storage.models import Chat, Message, Operation, Unit, utcnow
from storage.status_repo import Report, StaleAlert, StatusRepo
from storage.uow import UnitOfWork
from translation.types import Translation

log = logging.getLogger(__name__)

RECENT_REPORTS = 5


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
class UnitInfo:
    """A unit for `/who` and `/where`."""

    code: str
    name: str
    side: str
    languages: tuple[str, ...]
    has_chat: bool


# --- filing a SITREP, step by step -----------------------------------------------------------


@dataclass(frozen=True)
class _ReporterContext:
    """What the first, read-only step of filing learns about the group and the reporter."""

    unit_code: str
    chat_languages: list[str]
    glossary: Any
    author_language: str | None
    existing: Message | None  # the same Telegram message, filed before


@dataclass(frozen=True)
class _Filing:
    """A checked, translated SITREP ready to be stored."""

    sitrep: SitrepInput
    location: Location  # a known place resolved to its point
    needs: str
    remarks: str
    source: str
    translations: dict[str, dict[str, Any]]  # language -> needs, remarks, flags
    combined: dict[str, Translation]  # language -> one row for the copy (empty: no free text)
    now: datetime

    @property
    def free_text(self) -> str:
        return "\n".join(t for t in (self.needs, self.remarks) if t)

    def data(self) -> dict[str, Any]:
        """The structured SITREP kept in the message's `media`, from which copies are built."""
        loc = self.location
        return {
            "status": self.sitrep.status,
            "latitude": loc.latitude,
            "longitude": loc.longitude,
            "place": loc.place,
            "strength": self.sitrep.strength,
            "needs": self.needs,
            "remarks": self.remarks,
            "language": self.source,
            "translations": self.translations,
        }

    def view(self, author_name: str) -> ReportView:
        """How the filed SITREP reads back to the reporter."""
        by_lang = self.translations.items()
        return ReportView(
            self.sitrep.status,
            self.location,
            self.sitrep.strength,
            FreeText(self.needs, self.source, {k: str(v["needs"]) for k, v in by_lang}),
            FreeText(self.remarks, self.source, {k: str(v["remarks"]) for k, v in by_lang}),
            author_name,
            self.now,
        )


def sitrep_translations(
    needs: Mapping[str, Translation], remarks: Mapping[str, Translation], targets: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per target language: the translated needs and remarks and the union of their flags."""
    return {
        lang: {
            "needs": needs[lang].text,
            "remarks": remarks[lang].text,
            "flags": sorted({str(f) for f in (*needs[lang].flags, *remarks[lang].flags)}),
        }
        for lang in targets
    }


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
        await audit_refusal(
            self.uow,
            component="status",
            event_type="sitrep.refused",
            actor=tg_actor(actor),
            reason=reason,
            chat_id=chat_id,
            detail=detail,
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
        """Store a SITREP and queue its copies to every partner group, in one transaction.

        Three steps: check the group and the reporter (refusals audited), translate the free
        text outside any transaction, then store the report, its message, audit event and
        copies together."""
        loc = sitrep.location
        if loc.place in PLACES and loc.latitude is None and loc.longitude is None:
            loc = Location(*PLACES[loc.place], loc.place)  # a known place gives a point
        needs, remarks = clip(sitrep.needs), clip(sitrep.remarks)
        context = await self._reporter_context(
            sitrep, telegram_chat_id, telegram_message_id, author_id
        )
        if context.existing is not None:
            view = _view_of(sitrep, "", context.existing)
            return FiledReport(0, context.existing.id, context.unit_code, 0, view, True)
        free = "\n".join(t for t in (needs, remarks) if t)
        if free:
            guess = self.translator.detect(
                free,
                chat_languages=context.chat_languages,
                author_language=context.author_language,
            )
            source = guess.language
        else:
            source = context.chat_languages[0]
        targets = [lang for lang in LANGUAGES if lang != source]
        tr_needs = await self._translate(needs, source, targets, context.glossary)
        tr_remarks = await self._translate(remarks, source, targets, context.glossary)
        filing = _Filing(
            sitrep=sitrep,
            location=loc,
            needs=needs,
            remarks=remarks,
            source=source,
            translations=sitrep_translations(tr_needs, tr_remarks, targets),
            combined=(
                {lang: combine_free_text(tr_needs[lang], tr_remarks[lang]) for lang in targets}
                if free
                else {}
            ),
            now=self.clock(),
        )
        try:
            report_id, message_id, count = await self._store_report(
                filing, telegram_chat_id, telegram_message_id, author_id, author_name, update_id
            )
        except Duplicate as exc:
            if exc.constraint not in (MESSAGE_SOURCE, TRANSLATION, DELIVERY):
                log.error("SITREP from %s not filed: %s", author_id, exc.constraint)
                raise StorageError("SITREP not filed", key="sitrep.not_filed") from exc
            # The same update was filed twice at once: the other one won.
            log.info("SITREP update %s already filed (%s)", update_id, exc.constraint)
            view = _view_of(sitrep, source, None)
            return FiledReport(0, 0, context.unit_code, 0, view, True)
        except RefusedWrite as exc:
            log.error("SITREP from %s not filed: %s", author_id, type(exc).__name__)
            raise StorageError("SITREP not filed", key="sitrep.not_filed") from exc
        if count:
            self.on_queued()
        return FiledReport(
            report_id, message_id, context.unit_code, count, filing.view(author_name)
        )

    async def _reporter_context(
        self,
        sitrep: SitrepInput,
        telegram_chat_id: int,
        telegram_message_id: int,
        author_id: int | None,
    ) -> _ReporterContext:
        """Check that the SITREP may be filed from this group by this person (refusals audited)
        and gather what translating it needs; `existing` when the message was filed before."""
        async with (
            self._refusals(author_id, telegram_chat_id, "sitrep"),
            self.uow() as uow,
        ):
            validate(sitrep)
            chat, unit, op = await self._unit_chat(uow, telegram_chat_id)
            existing = await uow.messages.by_telegram(chat.id, telegram_message_id)
            author = await uow.people.by_telegram_id(author_id) if author_id else None
            if author is not None and author.unit_id not in (None, unit.id):
                raise AccessDenied(
                    "reporter belongs to another unit",
                    key="sitrep.other_unit",
                    refused="sitrep.other_unit",
                )
            return _ReporterContext(
                unit_code=unit.code,
                chat_languages=chat.language_list,
                glossary=op.glossary or None,
                author_language=author.language if author else None,
                existing=existing,
            )

    async def _store_report(
        self,
        filing: _Filing,
        telegram_chat_id: int,
        telegram_message_id: int,
        author_id: int | None,
        author_name: str,
        update_id: int | None,
    ) -> tuple[int, int, int]:
        """One transaction: the `messages` row, the `reports` row, the audit event and a copy
        queued to every partner group. Returns (report id, message id, copies queued)."""
        sitrep, loc, now = filing.sitrep, filing.location, filing.now
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
                    kind=MessageKind.SITREP,
                    text=filing.free_text,
                    entities=None,
                    media={"sitrep": filing.data()},
                    source_language=filing.source,
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
                    needs=filing.needs,
                    remarks=filing.remarks,
                    text_language=filing.source,
                    translations=filing.translations,
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
                    "needs": filing.needs,
                    "remarks": filing.remarks,
                    "language": filing.source,
                },
            )
            count = await record_copies(
                uow.session,
                self.audit,
                message=message,
                translations=filing.combined,
                targets=targets_chats,
                now=now,
            )
        return report.id, message.id, count

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
            return self.i18n.t("where.none", lang, unit=escape_html(unit.code))
        view = _view(reports[0])
        return self.i18n.t(
            "where.answer",
            lang,
            unit=escape_html(unit.code),
            location=escape_html(view.location.render(lang, glossary_renderings(op.glossary))),
            status=escape_html(self.i18n.t(f"status.{view.status}", lang)),
            age=escape_html(format_age(now - view.created_at, lang, self.i18n)),
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
            lines.append(
                f"• <b>{escape_html(row.code)}</b> ({escape_html(row.side)}): {escape_html(age)}"
            )
        head = self.i18n.t(
            "stale.alert", lang, operation=escape_html(op.name), interval=op.report_interval_min
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

    def _refusals(
        self, actor: int | None, chat_id: int | None, command: str
    ) -> AbstractAsyncContextManager[None]:
        """Refusals raised inside are audited after the rollback, then re-raised."""
        return audited_refusals(
            self.uow, component="status", command=command, actor=tg_actor(actor), chat_id=chat_id
        )


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
