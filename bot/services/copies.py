"""Prepare what one delivery posts: rendered parts, reply target, media, and what to edit.

Reads the outbox row, the original, its translations and the message map in one transaction and
returns a `PreparedCopy` the outbox worker sends without further database reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.i18n import I18n
from bot.rendering import Block, CopyContent, header_line, render_caption, render_parts
from storage.db import Database
from storage.messages import MessageRepo
from storage.models import Delivery
from storage.repositories import OperationRepo, PersonRepo

MEDIA_KINDS = frozenset({"photo", "video", "document", "voice", "audio", "animation"})
ORIGINAL_HTML_LIMIT = 3000

# Flags that make a reader look at the original, and the catalog key that says so.
WARNINGS = (
    ("no_model", "relay.warning_no_model"),
    ("span_repaired", "relay.warning_span_repaired"),
    ("low_confidence", "relay.warning_low_confidence"),
    ("empty_output", "relay.warning_low_confidence"),
    ("repeated_ngrams", "relay.warning_low_confidence"),
    ("too_long", "relay.warning_low_confidence"),
    ("too_short", "relay.warning_low_confidence"),
    ("untranslated", "relay.warning_low_confidence"),
)


@dataclass(frozen=True)
class PreparedCopy:
    """Everything the worker needs to post (or edit) one copy."""

    delivery_id: int
    message_id: int
    target_chat_row: int
    telegram_chat_id: int
    action: str  # send | edit | annotate | reannotate
    kind: str  # text | media | location | venue
    parts: tuple[str, ...]  # HTML texts (for media: overflow after the caption)
    caption: str | None = None
    media: dict[str, Any] = field(default_factory=dict)
    source_chat_id: int = 0
    source_message_id: int = 0
    reply_to: int | None = None  # Telegram message id in the target chat
    edit_ids: tuple[int, ...] = ()  # existing copies to edit, by part
    sent_parts: frozenset[int] = frozenset()  # parts already posted (a retried delivery)
    ambiguous: bool = False
    attempts: int = 0


class CopyBuilder:
    """Builds `PreparedCopy`s from the database and the catalogs."""

    def __init__(self, db: Database, i18n: I18n) -> None:
        self.db = db
        self.i18n = i18n

    async def prepare(self, delivery: Delivery) -> PreparedCopy | None:
        """Render one delivery; None when its chat or message no longer exists."""
        async with self.db.transaction() as s:
            repo = MessageRepo(s)
            message = await repo.message(delivery.message_id)
            target = await repo.chat(delivery.target_chat_id)
            if message is None or target is None:
                return None
            source = await repo.chat(message.chat_id)
            assert source is not None
            ops = OperationRepo(s)
            unit = await ops.unit_by_id(source.unit_id) if source.unit_id else None
            author = (
                await PersonRepo(s).by_telegram_id(message.author_user_id)
                if message.author_user_id
                else None
            )
            rows = {
                t.target_language: t
                for t in await repo.translations(message.id, delivery.revision)
            }
            langs = [x for x in delivery.target_language.split(",") if x]
            ui = langs[0]
            src = message.source_language or ui
            annotate = delivery.action in ("annotate", "reannotate")
            blocks: list[Block] = []
            flags: list[str] = []
            for lang in langs:
                row = rows.get(lang)
                if lang == src or row is None:
                    if not annotate:
                        blocks.append(Block(lang, message.text, is_original=True))
                    continue
                blocks.append(Block(lang, row.text))
                flags.extend(str(f) for f in row.flags)
            warning = None
            for flag, key in WARNINGS:
                if flag in flags:
                    warning = self.i18n.t(key, ui)
                    break
            edited = self.i18n.t("relay.edited", ui) if message.revision > 0 else ""
            notes: list[str] = []
            media = dict(message.media or {})
            if media.get("forward_from"):
                notes.append(self.i18n.t("relay.forwarded", ui, source=media["forward_from"]))
            if delivery.ambiguous:
                notes.append(self.i18n.t("relay.possible_duplicate", ui))
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
            else:
                parts = render_parts(_strip_empty(content))
            reply_to: int | None = None
            edit_ids: tuple[int, ...] = ()
            if annotate:
                reply_to = message.telegram_message_id
            elif message.reply_to_message_id is not None:
                parent = await repo.message(message.reply_to_message_id)
                if parent is not None and parent.chat_id == target.id:
                    reply_to = parent.telegram_message_id
                elif parent is not None:
                    copies = await repo.copies_of(parent.id, target.id)
                    reply_to = copies[0].telegram_message_id if copies else None
            if delivery.action in ("edit", "reannotate"):
                edit_ids = tuple(
                    c.telegram_message_id for c in await repo.copies_of(message.id, target.id)
                )
            sent_parts = frozenset(c.part for c in await repo.copies_for_delivery(delivery.id))
            return PreparedCopy(
                delivery_id=delivery.id,
                message_id=message.id,
                target_chat_row=target.id,
                telegram_chat_id=target.telegram_chat_id,
                action=delivery.action,
                kind=kind,
                parts=tuple(parts),
                caption=caption,
                media=media,
                source_chat_id=source.telegram_chat_id,
                source_message_id=message.telegram_message_id,
                reply_to=reply_to,
                edit_ids=edit_ids,
                sent_parts=sent_parts,
                ambiguous=delivery.ambiguous,
                attempts=delivery.attempts,
            )


def _strip_empty(content: CopyContent) -> CopyContent:
    return content
