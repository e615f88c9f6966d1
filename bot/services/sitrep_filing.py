"""Filing a SITREP: checked, its free text translated, then stored with its copies.

A SITREP follows the relay's one path: validated, free text translated (before the
transaction, so a slow model never holds a lock), then one transaction records the structured
`reports` row, a `messages` row of kind `sitrep` (the structured data in `media`, so the copy
builder renders status words from the catalogs in each group's language), the translations, the
audit events and one outbox row per partner chat. Refusals are audited after the rollback, on
their own: nothing is stored half-way and everything attempted is in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.domain import LANGUAGES, MessageKind
from bot.domain.gazetteer import PLACES
from bot.errors import AccessDenied, StorageError
from bot.services.board import FreeText, Location, ReportView
from bot.services.recording import records_of
from bot.services.sitrep import SitrepInput, clip, combine_free_text, validate
from bot.services.translator import untranslated
from storage.errors import DELIVERY, MESSAGE_SOURCE, TRANSLATION, Duplicate, RefusedWrite
from storage.models import Message, utcnow
from storage.status_repo import Report
from translation.types import Translation

if TYPE_CHECKING:
    from bot.services.status import StatusService

log = logging.getLogger(__name__)


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


class SitrepFiling:
    """The filing steps of one StatusService (its units of work, translator and clock)."""

    def __init__(self, service: StatusService) -> None:
        self.service = service

    async def file(
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
            guess = self.service.translator.detect(
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
            now=self.service.clock(),
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
            self.service.on_queued()
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
            self.service._refusals(author_id, telegram_chat_id, "sitrep"),
            self.service.uow() as uow,
        ):
            validate(sitrep)
            chat, unit, op = await self.service._unit_chat(uow, telegram_chat_id)
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
        async with self.service.uow() as uow:
            chat, unit, op = await self.service._unit_chat(uow, telegram_chat_id)
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
            count = await uow.relay.record_copies(
                message=message,
                translations=records_of(filing.combined),
                targets=targets_chats,
                now=now,
            )
        return report.id, message.id, count

    async def _translate(
        self, text: str, source: str, targets: Sequence[str], glossary: Any
    ) -> dict[str, Translation]:
        if not text.strip():
            return {t: untranslated("", source, t, missing=False) for t in targets}
        results = await self.service.translator.translate_many(
            text, list(targets), source=source, glossary=glossary
        )
        return dict(zip(targets, results, strict=True))


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
