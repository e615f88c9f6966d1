"""The relay: record an officer's message, translate it for every partner group, queue copies.

One path for every message: received -> recorded (message, translations, audit events and one
delivery row per target chat, in one transaction) -> delivered by the outbox worker. A replayed
update finds its message already recorded and does nothing. Translation happens before the
transaction, so a slow model never holds a database lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.observability.telemetry import Telemetry
from bot.services.recording import Target, records_of
from bot.services.translator import Translator, untranslated
from storage.audit import AuditChain, PendingEvent
from storage.db import Database
from storage.errors import DELIVERY, MESSAGE_SOURCE, TRANSLATION, Duplicate
from storage.models import Delivery, Message, utcnow
from storage.uow import Storage, UnitOfWork
from translation.types import Flag, Route, Translation, verdict_of

log = logging.getLogger(__name__)

# Message kinds relayed as such; everything else becomes text with the kind noted.
MEDIA_KINDS = frozenset({"photo", "video", "document", "voice", "audio", "animation"})
PLACE_KINDS = frozenset({"location", "venue"})
# A voice note's transcript, relayed as its own message replying to the note.
TRANSCRIPT = "transcript"
# Separates the pair in a back-translation's key: `en>ht` is the English copy read back in
# Kreyòl (fits TranslationRow.target_language, 8 characters).
BACK = ">"
# The constraints a replayed message or edit hits (two copies of one update racing).
_REPLAYED = frozenset({MESSAGE_SOURCE, TRANSLATION, DELIVERY})


@dataclass(frozen=True)
class Inbound:
    """An officer's message as the relay needs it (built by handlers from a Telegram update)."""

    chat_id: int
    message_id: int
    author_id: int | None
    author_name: str
    kind: str  # text | photo | video | document | voice | audio | animation | location | venue…
    text: str  # text, caption, venue title or poll question and options
    text_html: str | None = None  # the original with its formatting as Telegram HTML
    media: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    forward_from: str | None = None
    update_id: int | None = None
    edited: bool = False
    # Set for a voice note's transcript: the language it was transcribed in, not detected.
    language: str | None = None


@dataclass(frozen=True)
class RelayResult:
    """What happened to one inbound message."""

    status: str  # queued | duplicate | not_enrolled | unknown_edit
    message_id: int | None = None
    deliveries: int = 0
    languages: tuple[str, ...] = ()
    source_language: str | None = None
    translations: dict[str, Translation] = field(default_factory=dict)
    # Partner language -> its translation translated back into the source language.
    back_translations: dict[str, Translation] = field(default_factory=dict)
    # The source chat's languages and the author's (what a voice note may be spoken in).
    chat_languages: tuple[str, ...] = ()
    author_language: str | None = None


class RelayService:
    """Turns inbound messages into recorded originals, translations and queued copies."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        translator: Translator,
        *,
        on_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
        telemetry: Telemetry | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        # Tests hand a store without a database (tests/support/uow.py).
        self.storage = storage or Storage(db, audit)
        self.translator = translator
        self.on_queued = on_queued
        self.clock = clock
        self.telemetry = telemetry or Telemetry()

    async def receive(self, inbound: Inbound) -> RelayResult:
        """Record and queue one message (or edit) from an enrolled chat."""
        plan = await self._plan(inbound)
        if isinstance(plan, RelayResult):
            return plan
        guess_lang, decided_by, targets = plan.source, plan.decided_by, plan.languages
        started = time.monotonic()
        translations = await self._translate(inbound.text, guess_lang, targets, plan.glossary)
        if inbound.kind == TRANSCRIPT:
            # Numbers and callsigns in a transcript are what the model heard, not what was
            # said: never passed off as protected, exact spans.
            translations = {
                lang: replace(tr, flags=(*tr.flags, Flag.FROM_SPEECH))
                for lang, tr in translations.items()
            }
        back: dict[str, Translation] = {}
        if plan.back_translate:
            back = await self._back_translate(guess_lang, translations, plan.glossary)
        else:
            # A partner got a doubtful or unusable copy: the sender is told at once, with
            # what that copy says translated back (the sender check for those languages).
            doubtful = {lang: tr for lang, tr in translations.items() if tr.flagged}
            if doubtful:
                back = await self._back_translate(guess_lang, doubtful, plan.glossary)
        # Back-translation is model time too: it stays out of the relay's own overhead.
        self.telemetry.message_translated(
            inbound.update_id, time.monotonic() - started, translations
        )
        try:
            result = await self._record(inbound, plan, translations, back)
        except Duplicate as exc:
            # Another copy of the same update (or edit) won the race: nothing more to do.
            # Any other refused write is a failure the sender hears about.
            if exc.constraint not in _REPLAYED:
                raise
            log.info("update %s already recorded (%s)", inbound.update_id, exc.constraint)
            return RelayResult(status="duplicate")
        if result.message_id is not None:
            self.telemetry.message_queued(inbound.update_id, result.message_id, result.deliveries)
        if result.deliveries:
            self.on_queued()
        log.debug(
            "relayed message %s from chat %s (%s, decided by %s) to %d chats",
            inbound.message_id,
            inbound.chat_id,
            guess_lang,
            decided_by,
            result.deliveries,
        )
        return result

    async def explain(self, telegram_chat_id: int, telegram_message_id: int) -> CopyInfo | None:
        """The translation behind a copy the bot posted, or None if it is not a copy."""
        async with self.storage(read_only=True) as uow:
            repo = uow.messages
            copy = await repo.copy_at(telegram_chat_id, telegram_message_id)
            if copy is None:
                return None
            delivery = await repo.delivery(copy.delivery_id)
            message = await repo.message(copy.message_id)
            if delivery is None or message is None:
                return None
            source = message.source_language or "en"
            key = delivery.target_language.split(",")[0]
            for row in await repo.translations(message.id, delivery.revision):
                if row.target_language == key:
                    # A back-translation's key `en>ht` names its own pair.
                    src, _, target = key.rpartition(BACK)
                    return CopyInfo(
                        src or source,
                        target,
                        row.route,
                        tuple(row.models),
                        row.score,
                        tuple(row.flags),
                    )
            target = key.rpartition(BACK)[2]
            return CopyInfo(source, target, "same", (), None, ())

    # --- steps -------------------------------------------------------------------------------

    async def _plan(self, inbound: Inbound) -> _Plan | RelayResult:
        # One read on the fast path, language detection included.
        return await self.storage.read(lambda uow: self._plan_in(uow, inbound))

    async def _plan_in(self, uow: UnitOfWork, inbound: Inbound) -> _Plan | RelayResult:
        rows = uow.relay
        # The chat, the message already recorded, the author's language and the linked chats
        # in one statement (one round trip on PostgreSQL).
        read = await rows.plan(inbound.chat_id, inbound.message_id, inbound.author_id)
        chat, existing = read.chat, read.existing
        if chat is None or not chat.active:
            return RelayResult(status="not_enrolled")
        if inbound.edited:
            if existing is None:
                log.info("edit of a message never relayed (chat %s)", inbound.chat_id)
                return RelayResult(status="unknown_edit")
        elif existing is not None:
            return RelayResult(status="duplicate", message_id=existing.id)
        author_lang = read.author_language
        linked = [c for c in read.linked if c.id != chat.id]
        if inbound.edited and existing is not None:
            # Edit every chat the original went to; the outbox keeps per-chat order, so the
            # copy is posted before its edit is applied.
            sent_to = await rows.sent_to(existing.id)
            linked = [c for c in linked if c.id in sent_to]
        here = Target(chat.id, chat.languages)
        chat_langs = here.language_list
        if inbound.language is not None:
            source, decided_by = inbound.language, "speech"
        elif inbound.text.strip():
            guess = self.translator.detect(
                inbound.text, chat_languages=chat_langs, author_language=author_lang
            )
            source, decided_by = guess.language, guess.decided_by
        else:
            source, decided_by = chat_langs[0], "prior:chat"
        # Mixed groups answer in place with their other languages.
        in_place = [lang for lang in chat_langs if lang != source] if len(chat_langs) > 1 else []
        if inbound.kind == TRANSCRIPT and not inbound.edited:
            # The sender's own group gets the transcript too (in all its languages), as a
            # reply to the voice note: it is the sender's check of what was heard.
            linked = [here, *linked]
            in_place = []
        needed: list[str] = []
        for target_chat in linked:
            for lang in target_chat.language_list:
                if lang != source and lang not in needed:
                    needed.append(lang)
        for lang in in_place:
            if lang not in needed:
                needed.append(lang)
        return _Plan(
            chat=here,
            existing_id=existing.id if existing else None,
            existing_revision=existing.revision if existing else -1,
            operation_id=chat.operation_id,
            glossary=chat.glossary or None,
            unit_code=chat.unit_code,
            unit_side=chat.unit_side,
            source=source,
            decided_by=decided_by,
            languages=tuple(needed),
            targets=tuple(linked),
            in_place=tuple(in_place),
            back_translate=bool(chat.back_translate),
            author_language=author_lang,
        )

    async def _translate(
        self, text: str, source: str, targets: Sequence[str], glossary: Any
    ) -> dict[str, Translation]:
        if not text.strip() or not targets:
            return {t: untranslated(text, source, t, missing=False) for t in targets}
        results = await self.translator.translate_many(
            text, list(targets), source=source, glossary=glossary
        )
        return dict(zip(targets, results, strict=True))

    async def _back_translate(
        self, source: str, translations: dict[str, Translation], glossary: Any
    ) -> dict[str, Translation]:
        """What each partner language's copy says, translated back into the source language,
        one pair per language, concurrently (the engine batches them with other traffic)."""
        langs = [
            lang
            for lang, tr in translations.items()
            if lang != source and tr.route not in (Route.SAME, Route.NONE) and tr.text.strip()
        ]
        back: dict[str, Translation] = {}
        # Quality estimation already translated each copy back: no second model pass.
        for lang in [x for x in langs if translations[x].back_text is not None]:
            tr = translations[lang]
            back[lang] = Translation(
                text=tr.back_text or "",
                source=lang,
                target=source,
                source_decided_by="given",
                route=tr.route,
            )
        langs = [x for x in langs if x not in back]
        results = await asyncio.gather(
            *(
                self.translator.translate_many(
                    translations[lang].text, [source], source=lang, glossary=glossary
                )
                for lang in langs
            ),
            return_exceptions=True,
        )
        for lang, result in zip(langs, results, strict=True):
            if isinstance(result, Exception):
                # Like a forward translation without a model: the partner's text, flagged.
                log.warning("no back-translation %s->%s: %s", lang, source, type(result).__name__)
                back[lang] = untranslated(translations[lang].text, lang, source, missing=True)
            elif isinstance(result, BaseException):
                raise result
            else:
                back[lang] = result[0]
        return back

    async def _record(
        self,
        inbound: Inbound,
        plan: _Plan,
        translations: dict[str, Translation],
        back: dict[str, Translation],
    ) -> RelayResult:
        now = self.clock()

        # One short transaction on the fast path: on SQLite it runs on the event loop's
        # thread and holds the write lock only for its own statements.
        async def work(uow: UnitOfWork) -> RelayResult:
            if plan.existing_id is None:
                reply_to = None
                if inbound.reply_to_message_id is not None:
                    parent = await uow.messages.by_telegram(
                        plan.chat.id, inbound.reply_to_message_id
                    )
                    if parent is not None:
                        reply_to = parent.id
                    else:  # a reply to one of our copies answers its original
                        copy = await uow.messages.copy_at(
                            inbound.chat_id, inbound.reply_to_message_id
                        )
                        reply_to = copy.message_id if copy else None
                # A replayed message hits MESSAGE_SOURCE (`Duplicate`, raised by the write).
                message_id = await uow.relay.add_message(
                    {
                        "operation_id": plan.operation_id,
                        "chat_id": plan.chat.id,
                        "telegram_message_id": inbound.message_id,
                        "update_id": inbound.update_id,
                        "author_user_id": inbound.author_id,
                        "author_name": inbound.author_name[:255],
                        "kind": inbound.kind,
                        "text": inbound.text,
                        "entities": None,
                        "media": _media_record(inbound),
                        "source_language": plan.source,
                        "language_decided_by": plan.decided_by,
                        "reply_to_message_id": reply_to,
                        "priority": "normal",
                        "revision": 0,
                        "created_at": now,
                    },
                )
                # What recording the copies reads of it (never added to the session).
                message = Message(
                    id=message_id,
                    operation_id=plan.operation_id,
                    source_language=plan.source,
                    revision=0,
                )
                event = "message.received"
            else:
                message = await uow.relay.edit_message(
                    plan.existing_id,
                    revision=plan.existing_revision + 1,
                    text=inbound.text,
                    media=_media_record(inbound),
                    source_language=plan.source,
                    language_decided_by=plan.decided_by,
                    edited_at=now,
                    purged_at=None,  # an edit brings a body back (its own period starts)
                )
                event = "message.edited"
            lead = PendingEvent(
                component="relay",
                event_type=event,
                actor=f"tg:{inbound.author_id}" if inbound.author_id else "unknown",
                operation_id=plan.operation_id,
                payload={
                    "message_id": message.id,
                    "revision": message.revision,
                    "chat_id": inbound.chat_id,
                    "telegram_message_id": inbound.message_id,
                    "update_id": inbound.update_id,
                    "author": inbound.author_name,
                    "unit": plan.unit_code,
                    "kind": inbound.kind,
                    "text": inbound.text,
                    "language": plan.source,
                    "language_decided_by": plan.decided_by,
                    **_transcript_payload(inbound),
                },
            )
            action = "edit" if plan.existing_id is not None else "send"
            extra: list[Delivery] = []
            if plan.in_place:
                extra.append(
                    Delivery(
                        message_id=message.id,
                        revision=message.revision,
                        target_chat_id=plan.chat.id,
                        action="annotate" if action == "send" else "reannotate",
                        target_language=",".join(plan.in_place),
                        state="pending",
                        attempts=0,
                        created_at=now,
                    )
                )
            # The sender's check: back-translations stored beside the translations (keyed
            # `en>ht`), then one reply to the original in the source chat, queued after the
            # annotation so the chat's order stays the relay's order.
            keys = {f"{lang}{BACK}{plan.source}": tr for lang, tr in back.items()}
            if back:
                extra.append(
                    Delivery(
                        message_id=message.id,
                        revision=message.revision,
                        target_chat_id=plan.chat.id,
                        action="backcheck" if action == "send" else "rebackcheck",
                        target_language=",".join(keys),
                        state="pending",
                        attempts=0,
                        created_at=now,
                    )
                )
            count = await uow.relay.record_copies(
                message=message,
                translations=records_of({**translations, **keys}),
                targets=plan.targets,
                now=now,
                action=action,
                extra=extra,
                lead_events=[lead],
            )
            return RelayResult(
                status="queued",
                message_id=message.id,
                deliveries=count,
                languages=plan.languages,
                source_language=plan.source,
                translations=translations,
                back_translations=back,
                chat_languages=tuple(plan.chat.language_list),
                author_language=plan.author_language,
            )

        return await self.storage.write(work)


@dataclass(frozen=True)
class CopyInfo:
    """How one relayed copy was produced (for `/how`)."""

    source: str
    target: str
    route: str
    models: tuple[str, ...]
    score: float | None
    flags: tuple[str, ...]

    @property
    def verdict(self) -> str:
        """ok, doubtful or unusable (recomputed from the stored flags)."""
        return str(verdict_of(self.flags))


@dataclass(frozen=True)
class _Plan:
    chat: Target
    existing_id: int | None
    existing_revision: int
    operation_id: int
    glossary: Any
    unit_code: str | None
    unit_side: str | None
    source: str
    decided_by: str
    languages: tuple[str, ...]
    targets: tuple[Target, ...]
    in_place: tuple[str, ...]
    back_translate: bool = False
    author_language: str | None = None


def _transcript_payload(inbound: Inbound) -> dict[str, Any]:
    """What the audit keeps of a transcript: its scores, model, and what was heard (also
    when it was too doubtful to show)."""
    if inbound.kind != TRANSCRIPT:
        return {}
    media = inbound.media or {}
    return {"transcript": media.get("transcript"), "heard": media.get("heard", "")}


def _media_record(inbound: Inbound) -> dict[str, Any] | None:
    media = dict(inbound.media or {})
    if inbound.forward_from:
        media["forward_from"] = inbound.forward_from
    if inbound.text_html:
        media["html"] = inbound.text_html
    return media or None
