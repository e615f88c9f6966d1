"""Unit status: the status board, `/where`, `/who`, and the entry point for SITREPs and
staleness alerts.

`StatusService` is what the handlers call. The SITREP wizard's parsing and drafts are in
sitrep.py, filing a SITREP in sitrep_filing.py, the staleness rule in staleness.py; the board's
rendering in board.py. Every call is a unit of work (storage/uow.py) and imports no SQL;
refusals are audited after the rollback (refusals.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.domain import escape_html
from bot.domain.gazetteer import glossary_renderings, known_places
from bot.errors import AccessDenied, NotFound, UserInputError
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
from bot.services.notify import Notice
from bot.services.refusals import audit_refusal, audited_refusals, tg_actor
from bot.services.sitrep import (
    ReportDrafts,
    SitrepInput,
    parse_location,
    parse_one_line,
)
from bot.services.sitrep_filing import FiledReport, SitrepFiling
from bot.services.staleness import StalenessAlerts
from bot.services.translator import Translator
from storage.audit import AuditChain
from storage.db import Database
from storage.models import Chat, Operation, Unit, utcnow
from storage.status_repo import Report, StatusRepo
from storage.uow import UnitOfWork

RECENT_REPORTS = 5


# --- results ---------------------------------------------------------------------------------


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
        self.filing = SitrepFiling(self)
        self.staleness = StalenessAlerts(self)

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
        """Store a SITREP and queue its copies to every partner group, in one transaction
        (bot/services/sitrep_filing.py)."""
        return await self.filing.file(
            telegram_chat_id=telegram_chat_id,
            telegram_message_id=telegram_message_id,
            author_id=author_id,
            author_name=author_name,
            sitrep=sitrep,
            update_id=update_id,
        )

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
        """Alert each operation's commanders once per reporting lapse; returns what was queued
        (bot/services/staleness.py)."""
        return await self.staleness.check(now)

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
