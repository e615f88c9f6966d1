"""Group messages and edits become relay calls; `/how` explains how a copy was translated."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Message, Update

from bot.context import DarajaContext
from bot.domain import MessageKind
from bot.services.relay import Inbound
from bot.services.voice import VoiceJob, job_languages
from handlers.common import answer, reply_language

log = logging.getLogger(__name__)

# The Telegram message attributes that carry relayed media, each stored as its own kind.
MEDIA_KINDS = (
    MessageKind.PHOTO,
    MessageKind.VIDEO,
    MessageKind.DOCUMENT,
    MessageKind.VOICE,
    MessageKind.AUDIO,
    MessageKind.ANIMATION,
)


def inbound_of(message: Message, *, update_id: int | None, edited: bool) -> Inbound | None:
    """Translate a Telegram message into the relay's input; None for what is never relayed."""
    if message.from_user is None or message.from_user.is_bot:
        return None  # bots (this one included), channels and anonymous senders: no loops
    kind = MessageKind.TEXT
    text = message.text or message.caption or ""
    text_html = _html(message)
    media: dict[str, Any] | None = None
    for attr in MEDIA_KINDS:
        value = getattr(message, attr)
        if value:
            item = value[-1] if isinstance(value, tuple) else value
            kind = attr
            media = {"file_id": item.file_id}
            if attr == "voice":
                media["duration"] = _seconds(getattr(item, "duration", None))
            break
    if message.venue is not None:
        kind = MessageKind.VENUE
        venue = message.venue
        media = {
            "latitude": venue.location.latitude,
            "longitude": venue.location.longitude,
            "title": venue.title,
            "address": venue.address,
        }
        text = venue.title
        text_html = None
    elif message.location is not None:
        kind = MessageKind.LOCATION
        media = {"latitude": message.location.latitude, "longitude": message.location.longitude}
    elif message.poll is not None:
        kind = MessageKind.POLL
        poll = message.poll
        text = "\n".join([poll.question, *(f"• {o.text}" for o in poll.options)])
        text_html = None
    elif message.sticker is not None or message.dice is not None or message.contact is not None:
        return None  # documented: stickers, dice and contacts are not relayed
    if kind == MessageKind.TEXT and not text.strip():
        return None
    forward_from = None
    origin = message.forward_origin
    if origin is not None:
        sender = getattr(origin, "sender_user", None) or getattr(origin, "chat", None)
        forward_from = (
            getattr(sender, "full_name", None)
            or getattr(sender, "title", None)
            or getattr(origin, "sender_user_name", None)
            or "?"
        )
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    return Inbound(
        chat_id=message.chat_id,
        message_id=message.message_id,
        author_id=message.from_user.id,
        author_name=message.from_user.full_name,
        kind=kind,
        text=text,
        text_html=text_html,
        media=media,
        reply_to_message_id=reply_to,
        forward_from=forward_from,
        update_id=update_id,
        edited=edited,
    )


def _seconds(value: Any) -> float | None:
    """A Bot API duration (int seconds, or a timedelta in newer python-telegram-bot)."""
    if value is None:
        return None
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    return float(value)


def _html(message: Message) -> str | None:
    try:
        if message.text:
            return message.text_html
        if message.caption:
            return message.caption_html
    except (ValueError, IndexError):  # entities that do not map back: keep plain text
        return None
    return None


async def relay_message(update: Update, ctx: DarajaContext) -> None:
    """A message in an enrolled group: record, translate and queue its copies."""
    message = update.message or update.edited_message
    if message is None:
        return
    inbound = inbound_of(
        message, update_id=update.update_id, edited=update.edited_message is not None
    )
    if inbound is None:
        return
    relay = ctx.services.relay
    if relay is None:
        return
    result = await relay.receive(inbound)
    voice = ctx.services.voice
    if (
        inbound.kind == "voice"
        and not inbound.edited
        and voice is not None
        and result.status == "queued"
        and inbound.media
    ):
        voice.submit(
            VoiceJob(
                chat_id=inbound.chat_id,
                message_id=inbound.message_id,
                author_id=inbound.author_id,
                author_name=inbound.author_name,
                file_id=str(inbound.media["file_id"]),
                languages=job_languages(result.chat_languages, result.author_language),
                duration=inbound.media.get("duration"),
                update_id=inbound.update_id,
            )
        )


async def how(update: Update, ctx: DarajaContext) -> None:
    """/how as a reply to a relayed copy: the route, the back-translation check and the verdict
    behind it, in words."""
    message = update.effective_message
    lang = await reply_language(update, ctx)
    if message is None or message.reply_to_message is None or ctx.services.relay is None:
        await answer(update, ctx, "relay.how_usage", lang)
        return
    info = await ctx.services.relay.explain(message.chat_id, message.reply_to_message.message_id)
    if info is None:
        await answer(update, ctx, "relay.how_unknown", lang)
        return
    i18n = ctx.services.i18n
    flags = set(info.flags)
    # Officers read what was checked and what it means, not model ids or raw scores.
    if "round_trip_different" in flags:
        check = "different"
    elif "round_trip_similar" in flags:
        check = "similar"
    else:
        check = "none"
    verdict = info.verdict
    target = i18n.t(f"lang.name.{info.target}", lang)
    notes: list[str] = []
    if "meaning_changed" in flags:
        notes.append(i18n.t("relay.warning_meaning_changed", lang))
    if "wrong_language" in flags:
        notes.append(i18n.t("relay.how_wrong_language", lang, language=target))
    if "uncalibrated" in flags:
        notes.append(i18n.t("relay.how_uncalibrated", lang))
    await answer(
        update,
        ctx,
        "relay.how",
        lang,
        source=i18n.t(f"lang.name.{info.source}", lang),
        target=target,
        route=i18n.t(f"relay.route.{info.route}", lang),
        check=i18n.t(f"relay.check.{check}", lang),
        verdict=i18n.t(f"relay.verdict.{verdict}", lang),
        notes="".join(f"\n{note}" for note in notes),
    )
