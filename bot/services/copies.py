"""Prepare what one delivery posts: rendered parts, reply target, media, and what to edit.

Reads the outbox row, the original, its translations and the message map in one transaction and
returns a `PreparedCopy` the outbox worker sends without further database reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain import escape_html as escape
from bot.i18n import N_, VOICE_STATUSES, I18n
from bot.rendering.copies import (
    Block,
    CopyContent,
    Mark,
    header_line,
    marks_from_html,
    render_caption,
    render_parts,
)
from bot.services.relay import BACK, TRANSCRIPT
from storage.db import Database
from storage.messages import MessageRepo
from storage.models import Chat, Copy, Delivery, Message, Person, TranslationRow, Unit
from storage.repositories import OperationRepo
from storage.uow import Storage, UnitOfWork
from translation.spans import find_spans
from translation.types import Verdict, verdict_of

MEDIA_KINDS = frozenset({"photo", "video", "document", "voice", "audio", "animation"})
# The sender's back-translation check (issue 6 item 8), posted and edited in the source chat.
BACKCHECK_ACTIONS = frozenset({"backcheck", "rebackcheck"})
ORIGINAL_HTML_LIMIT = 3000

# Flags that make a reader look at the original, and the catalog key that says so.
WARNINGS = (
    ("no_model", N_("relay.warning_no_model")),
    ("meaning_changed", N_("relay.warning_meaning_changed")),
    ("span_repaired", N_("relay.warning_span_repaired")),
    ("low_confidence", N_("relay.warning_low_confidence")),
    ("empty_output", N_("relay.warning_low_confidence")),
    ("repeated_ngrams", N_("relay.warning_low_confidence")),
    ("too_long", N_("relay.warning_low_confidence")),
    ("too_short", N_("relay.warning_low_confidence")),
    ("untranslated", N_("relay.warning_low_confidence")),
    ("language_tag_leaked", N_("relay.warning_low_confidence")),
)


@dataclass(frozen=True)
class PreparedCopy:
    """Everything the worker needs to post (or edit) one copy."""

    delivery_id: int
    message_id: int
    target_chat_row: int
    telegram_chat_id: int
    action: str  # send | edit | annotate | reannotate | backcheck | rebackcheck
    kind: str  # text | media | location | venue
    parts: tuple[str, ...]  # HTML texts (for media: overflow after the caption)
    caption: str | None = None
    media: dict[str, Any] = field(default_factory=dict)
    source_chat_id: int = 0
    source_message_id: int = 0
    reply_to: int | None = None  # Telegram message id in the target chat
    edit_ids: tuple[int, ...] = ()  # existing copies to edit, by part
    edit_parts: tuple[int, ...] = ()  # the part number of each of `edit_ids`
    # What a surplus part of an edited copy becomes when Telegram refuses to delete it (HTML).
    replaced_text: str = ""
    sent_parts: frozenset[int] = frozenset()  # parts already posted (a retried delivery)
    # The target chat's operation (None: the chat belongs to none), for the outcome's event.
    operation_id: int | None = None
    ambiguous: bool = False
    attempts: int = 0
    # Inline buttons (label, callback data) under the last part: FLASH acknowledge (issue 7).
    buttons: tuple[tuple[str, str], ...] = ()


class CopyBuilder:
    """Builds `PreparedCopy`s from the database and the catalogs."""

    def __init__(self, db: Database, i18n: I18n, *, cache_size: int = 256) -> None:
        self.db = db
        self.storage = Storage(db)
        self.i18n = i18n
        # One message revision is rendered for every linked chat: what is the same for all its
        # copies is read once. A revision's original and translations never change (an edit is
        # a new revision), so the cache cannot serve stale text.
        self._contexts: OrderedDict[tuple[int, int], _Context] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    async def _prefetch(self, uow: UnitOfWork, deliveries: Sequence[Delivery]) -> None:
        """Read the contexts of the messages being rendered that are not cached, for all of
        them in one query (five per message before: on PostgreSQL each a round trip), and
        cache them."""
        with self._cache_lock:
            wanted = {
                (d.message_id, d.revision)
                for d in deliveries
                if (d.message_id, d.revision) not in self._contexts
            }
        if not wanted:
            return
        for found in await uow.messages.contexts(key[0] for key in wanted):
            key = (found.message.id, found.message.revision)
            # Only the current revision is read and cached (`_context` reads an older one).
            if key in wanted:
                self._remember(key, _context_of(*found))

    def _remember(self, key: tuple[int, int], context: _Context) -> None:
        with self._cache_lock:
            self._contexts[key] = context
            while len(self._contexts) > self._cache_size:
                self._contexts.popitem(last=False)

    async def _context(self, uow: UnitOfWork, message_id: int, revision: int) -> _Context | None:
        key = (message_id, revision)
        with self._cache_lock:  # reader threads (the fallback when SQLite is busy) share it
            found = self._contexts.get(key)
            if found is not None:
                self._contexts.move_to_end(key)
                return found
        repo = uow.messages
        # The same read as `_prefetch`'s, for one message (the header's unit: the author's
        # own when known, a FLASH typed privately is filed under another chat, else the unit
        # of the chat it was written in).
        read = await repo.contexts([message_id])
        if not read:
            return None
        message, source, author, unit, rows = read[0]
        if message.revision != revision:  # an older revision's own translations
            rows = {t.target_language: t for t in await repo.translations(message_id, revision)}
        context = _context_of(message, source, author, unit, rows)
        if message.revision == revision:  # the row read is this revision's text
            self._remember(key, context)
        return context

    async def prepare(self, delivery: Delivery) -> PreparedCopy | None:
        """Render one delivery; None when its chat or message no longer exists. The reads run
        in one go (`Storage.read`, the fast path)."""
        return await self.storage.read(lambda uow: self._prepare(uow, delivery))

    async def prepare_many(
        self, deliveries: Sequence[Delivery], *, chats: Mapping[int, Chat] | None = None
    ) -> dict[int, PreparedCopy | BaseException | None]:
        """Render several deliveries in one read; each gets its copy, None (message or chat
        gone) or the exception its rendering raised. `chats`: target chats already read (with
        the claim); the others are read here."""
        given = dict(chats or {})

        async def render(uow: UnitOfWork) -> dict[int, PreparedCopy | BaseException | None]:
            out: dict[int, PreparedCopy | BaseException | None] = {}
            # Every target chat in one query: each copy's lookup of its chat then finds it in
            # the session instead of running a query of its own (held here: the session's
            # identity map only keeps rows someone references).
            missing = {d.target_chat_id for d in deliveries} - set(given)
            targets = await uow.messages.chats(missing)
            await self._prefetch(uow, deliveries)
            for delivery in deliveries:
                try:
                    out[delivery.id] = await self._prepare(
                        uow, delivery, given.get(delivery.target_chat_id)
                    )
                except Exception as exc:  # noqa: BLE001 - handed to that delivery
                    out[delivery.id] = exc
            del targets
            return out

        return await self.storage.read(render)

    async def _prepare(
        self, uow: UnitOfWork, delivery: Delivery, target: Chat | None = None
    ) -> PreparedCopy | None:
        repo = uow.messages
        if target is None:
            target = await repo.chat(delivery.target_chat_id)
        context = await self._context(uow, delivery.message_id, delivery.revision)
        if context is None or target is None:
            return None
        message, source, author, unit, rows = (
            context.message,
            context.source,
            context.author,
            context.unit,
            context.rows,
        )
        ops = uow.operations
        langs = [x for x in delivery.target_language.split(",") if x]
        if delivery.action in BACKCHECK_ACTIONS:
            return await self._backcheck(repo, ops, delivery, message, source, target, rows, langs)
        ui = langs[0]
        src = message.source_language or ui
        annotate = delivery.action in ("annotate", "reannotate")
        blocks: list[Block] = []
        flags: list[str] = []
        marks = context.marks
        unusable = False
        for lang in langs:
            row = rows.get(lang)
            if lang == src or row is None:
                if not annotate:
                    blocks.append(Block(lang, message.text, is_original=True, marks=marks))
                continue
            if verdict_of(row.flags) is Verdict.UNUSABLE:
                # No reliable translation: the original first, the guess after it, marked.
                unusable = True
                if not annotate:
                    blocks.append(Block(lang, message.text, is_original=True, marks=marks))
                label = self.i18n.t("relay.guess_label", ui)
                blocks.append(Block(lang, f"{label}: {row.text}", is_original=True, marks=marks))
                continue
            blocks.append(Block(lang, row.text, marks=marks))
            flags.extend(str(f) for f in row.flags)
        warning = self._warning(flags, ui)
        edited = self.i18n.t("relay.edited", ui) if message.revision > 0 else ""
        notes: list[str] = []
        if unusable:
            notes.append(f"⚠️ {self.i18n.t('relay.warning_unusable', ui)}")
        media = dict(message.media or {})
        if media.get("forward_from"):
            notes.append(self.i18n.t("relay.forwarded", ui, source=media["forward_from"]))
        if delivery.ambiguous:
            notes.append(self.i18n.t("relay.possible_duplicate", ui))
        if message.kind == TRANSCRIPT:
            blocks, warning = self._transcript(media, message.text, blocks, notes, ui, warning)
        translated = any(not b.is_original for b in blocks)
        original_html = media.get("html")
        if not isinstance(original_html, str) or len(original_html) > ORIGINAL_HTML_LIMIT:
            original_html = None
        header = header_line(
            author=message.author_name,
            unit=unit.code if unit else None,
            side=unit.side if unit else None,
            rank=author.rank if author else "",
            edited_label=edited,
        )
        # Issue 7: a FLASH copy is headed by its priority label and, in a unit group expected
        # to acknowledge, carries the acknowledge button.
        buttons: tuple[tuple[str, str], ...] = ()
        if message.priority == "flash" and not annotate:
            from bot.services.flash import flash_copy_extras

            label, buttons = await flash_copy_extras(uow.flashes, self.i18n, message, target, ui)
            header = f"{label}\n{header}"
        content = CopyContent(
            header="" if annotate else header,
            blocks=tuple(blocks),
            warning=warning,
            original=message.text if translated and not annotate else "",
            original_html=original_html,
            original_label=self.i18n.t(
                "relay.original", ui, language=self.i18n.t(f"lang.name.{src}", ui)
            ),
            show_language_tags=len(langs) > 1 or annotate,
            notes=tuple(notes),
        )
        kind = "text"
        caption: str | None = None
        parts: list[str]
        if message.kind in MEDIA_KINDS and media.get("file_id") and not annotate:
            kind = "media"
            caption, parts = render_caption(content)
        elif message.kind in ("location", "venue") and not annotate:
            kind = message.kind
            parts = render_parts(content)
        elif message.kind == "sitrep" and isinstance(media.get("sitrep"), dict):
            # Issue 7: a SITREP renders from its structured data; status words come from
            # the catalogs in each of the group's languages, free text from translations.
            from bot.domain.gazetteer import glossary_renderings
            from bot.services.board import render_sitrep_copy

            ops_row = await ops.by_id(message.operation_id)
            parts = render_sitrep_copy(
                header,
                media["sitrep"],
                langs,
                self.i18n,
                created_at=message.created_at,
                renderings=glossary_renderings(ops_row.glossary if ops_row else None),
            )
        else:
            parts = render_parts(_strip_empty(content))
        reply_to: int | None = None
        edits: Sequence[Copy] = ()
        if annotate:
            reply_to = message.telegram_message_id
        elif message.reply_to_message_id is not None:
            parent = await repo.message(message.reply_to_message_id)
            if parent is not None and parent.chat_id == target.id:
                reply_to = parent.telegram_message_id
            elif parent is not None:
                copies = await repo.copies_of(parent.id, target.id)
                reply_to = copies[0].telegram_message_id if copies else None
        action = delivery.action
        if action in ("edit", "reannotate"):
            # The source chat may also hold a back-translation check: edit the annotation.
            kind_of = "annotate" if action == "reannotate" else None
            edits = await repo.copies_of(message.id, target.id, action=kind_of)
            if not edits and action == "edit":
                action = "send"  # the first copy never arrived: post the edited text anew
        sent_parts = await _sent_parts(repo, delivery)
        return PreparedCopy(
            delivery_id=delivery.id,
            message_id=message.id,
            target_chat_row=target.id,
            telegram_chat_id=target.telegram_chat_id,
            action=action,
            kind=kind,
            parts=tuple(parts),
            caption=caption,
            media=media,
            source_chat_id=source.telegram_chat_id,
            source_message_id=message.telegram_message_id,
            reply_to=reply_to,
            edit_ids=tuple(c.telegram_message_id for c in edits),
            edit_parts=tuple(c.part for c in edits),
            replaced_text=self._replaced(content.header, ui),
            sent_parts=sent_parts,
            operation_id=target.operation_id,
            ambiguous=delivery.ambiguous,
            attempts=delivery.attempts,
            buttons=buttons,
        )

    async def _backcheck(
        self,
        repo: MessageRepo,
        ops: OperationRepo,
        delivery: Delivery,
        message: Message,
        source: Chat,
        target: Chat,
        rows: dict[str, TranslationRow],
        keys: list[str],
    ) -> PreparedCopy:
        """The sender's check: what each partner language read, translated back, one line per
        language under a short header, as a reply to the original, in the source chat's
        language (the message's own language when the chat has it)."""
        chat_langs = target.language_list or ["en"]
        src = message.source_language or chat_langs[0]
        ui = src if src in chat_langs else chat_langs[0]
        blocks: list[Block] = []
        flags: list[str] = []
        doubted = False
        units = await _units_by_language(repo, ops, message.id)
        for key in keys:
            row = rows.get(key)
            if row is None:
                continue
            lang = key.split(BACK, 1)[0]
            forward = rows.get(lang)
            verdict = verdict_of(forward.flags) if forward is not None else Verdict.OK
            label = lang
            if verdict is not Verdict.OK:
                # The sender is told which units read a doubtful copy, and what it says.
                doubted = True
                verdict_label = self.i18n.t(f"relay.label.{verdict}", ui)
                label = f"{', '.join(units.get(lang, ())) or lang} ({verdict_label})"
            blocks.append(Block(label, row.text))
            flags.extend(str(f) for f in row.flags)
        header_key = "relay.sender_check_header" if doubted else "relay.backcheck_header"
        content = CopyContent(
            header=f"<b>{self.i18n.t(header_key, ui)}</b>",
            blocks=tuple(blocks),
            warning=self.i18n.t("relay.rephrase_hint", ui)
            if doubted
            else self._warning(flags, ui),
            show_language_tags=True,
        )
        action = delivery.action
        edits: Sequence[Copy] = ()
        if action == "rebackcheck":
            edits = await repo.copies_of(message.id, target.id, action="backcheck")
            if not edits:
                action = "backcheck"  # no check was posted before (turned on since): post one
        sent_parts = await _sent_parts(repo, delivery)
        return PreparedCopy(
            delivery_id=delivery.id,
            message_id=message.id,
            target_chat_row=target.id,
            telegram_chat_id=target.telegram_chat_id,
            action=action,
            kind="text",
            parts=tuple(render_parts(content)),
            source_chat_id=source.telegram_chat_id,
            source_message_id=message.telegram_message_id,
            reply_to=message.telegram_message_id,
            edit_ids=tuple(c.telegram_message_id for c in edits),
            edit_parts=tuple(c.part for c in edits),
            replaced_text=self._replaced(content.header, ui),
            sent_parts=sent_parts,
            operation_id=target.operation_id,
            ambiguous=delivery.ambiguous,
            attempts=delivery.attempts,
        )

    def _transcript(
        self,
        media: dict[str, Any],
        text: str,
        blocks: list[Block],
        notes: list[str],
        ui: str,
        warning: str | None,
    ) -> tuple[list[Block], str | None]:
        """A voice note's transcript: the automatic-transcription line and the numbers and
        callsigns as heard (unverified), or the one line saying why there is none."""
        info = media.get("transcript")
        status = info.get("status") if isinstance(info, dict) else None
        if status != "ok" or not text.strip():
            key = f"voice.status.{status}" if status in VOICE_STATUSES else "voice.status.corrupt"
            notes.append(self.i18n.t(key, ui))
            return [], None
        notes.append(self.i18n.t("voice.header", ui))
        heard = [s.text for s in find_spans(text) if s.kind != "glossary"]
        if heard:
            notes.append(self.i18n.t("voice.heard", ui, spans=", ".join(dict.fromkeys(heard))))
        return blocks, warning

    def _replaced(self, header: str, lang: str) -> str:
        """The note a surplus part of an edited copy shows when it cannot be deleted: whose
        message it was, and that its text now stands in the parts above."""
        note = f"<i>{escape(self.i18n.t('relay.part_replaced', lang))}</i>"
        return f"{header}\n{note}" if header else note

    def _warning(self, flags: list[str], lang: str) -> str | None:
        """The first warning line the flags call for, in `lang` (a doubtful copy always gets
        one: the generic one when no flag has its own)."""
        for flag, key in WARNINGS:
            if flag in flags:
                return self.i18n.t(key, lang)
        if verdict_of(flags) is not Verdict.OK:
            return self.i18n.t("relay.warning_low_confidence", lang)
        return None


async def _units_by_language(
    repo: MessageRepo, ops: OperationRepo, message_id: int
) -> dict[str, list[str]]:
    """Language -> codes of the units whose groups were sent a copy of the message."""
    chats = await repo.chats(await repo.chats_sent_to(message_id))
    out: dict[str, list[str]] = {}
    for chat in chats:
        unit = await ops.unit_by_id(chat.unit_id) if chat.unit_id else None
        if unit is None:
            continue
        for lang in chat.language_list:
            if unit.code not in out.setdefault(lang, []):
                out[lang].append(unit.code)
    return out


def _strip_empty(content: CopyContent) -> CopyContent:
    return content


async def _sent_parts(repo: MessageRepo, delivery: Delivery) -> frozenset[int]:
    """Parts of this delivery Telegram already accepted. A row never tried before (no error,
    not recovered from a stopped worker) has none, and is not looked up."""
    if delivery.last_error is None and not delivery.ambiguous:
        return frozenset()
    return frozenset(c.part for c in await repo.copies_for_delivery(delivery.id))


def _context_of(
    message: Message,
    source: Chat,
    author: Person | None,
    unit: Unit | None,
    rows: dict[str, TranslationRow],
) -> _Context:
    html = (message.media or {}).get("html")
    marks = marks_from_html(html if isinstance(html, str) else None)
    return _Context(message, source, author, unit, rows, marks)


@dataclass(frozen=True)
class _Context:
    """What every copy of one message revision shares."""

    message: Message
    source: Chat
    author: Person | None
    unit: Unit | None
    rows: dict[str, TranslationRow]
    # The original's bold, italics, code and links, re-applied to the fragments that come
    # through translation unchanged (and to the whole text in same-language copies).
    marks: tuple[Mark, ...]
