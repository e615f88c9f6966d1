"""A plain python-telegram-bot relay bot: the yardstick `daraja bench relay` measures Daraja by.

What a relay bot written straight from python-telegram-bot's examples does: PTB's own Updater
(long polling), one `MessageHandler`, and per message: detect its language, translate it with
the same offline engine Daraja uses (the same models and settings), `send_message` to every
other group in turn. It keeps nothing: no inbox (a crash loses the fetched batch), no outbox
(a failed send is lost, no retries or 429 handling), no audit log, no message map (no replies
or edits across groups). Updates run concurrently, as with `concurrent_updates(True)`, so two
messages of one group may reach a partner group out of order; the bench counts that.

Dev-only: it exists to be measured against, never to be deployed.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class PlainGroup:
    """One group the plain bot relays between: its chat id, unit code and language."""

    chat_id: int
    unit: str
    language: str


@dataclass
class PlainRelay:
    """Counts what the plain bot sent, so every copy is accounted for."""

    groups: Mapping[int, PlainGroup]
    translator: Any
    sent: int = 0
    failed: int = 0
    # (source chat, source message id, target chat) -> copies sent (a duplicate shows as 2)
    copies: dict[tuple[int, int, int], int] = field(default_factory=lambda: defaultdict(int))
    # (source chat, target chat) -> [(copy message id, source message id)] in sending order
    streams: dict[tuple[int, int], list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, update: Any, context: Any) -> None:
        """The handler: detect, translate into each partner language, send to each group."""
        message = update.effective_message
        source = self.groups.get(update.effective_chat.id) if update.effective_chat else None
        if message is None or source is None or not message.text:
            return
        targets = [g for g in self.groups.values() if g.chat_id != source.chat_id]
        guess = self.translator.detect(
            message.text, chat_languages=[source.language], author_language=None
        )
        languages = sorted({g.language for g in targets} - {guess.language})
        texts = {guess.language: message.text}
        if languages:
            results = await self.translator.translate_many(
                message.text, languages, source=guess.language
            )
            texts.update({t.target: t.text for t in results})
        author = html.escape(message.from_user.full_name if message.from_user else "")
        for group in targets:
            text = html.escape(texts[group.language])
            body = f"<b>{html.escape(source.unit)}</b> · {author}\n{text}"
            try:
                copy = await context.bot.send_message(group.chat_id, body, parse_mode="HTML")
            except Exception as exc:  # noqa: BLE001 - a plain bot logs and moves on
                self.failed += 1
                log.warning("plain relay: send failed (%s)", type(exc).__name__)
                continue
            self.sent += 1
            self.copies[(source.chat_id, message.message_id, group.chat_id)] += 1
            self.streams[(source.chat_id, group.chat_id)].append(
                (copy.message_id, message.message_id)
            )
            self.event.set()

    def counts(self) -> dict[str, int]:
        """Delivered (distinct source message × target), duplicated and out-of-order copies."""
        violations = 0
        for stream in self.streams.values():
            originals = [src for _copy, src in sorted(stream)]
            violations += sum(1 for a, b in itertools.pairwise(originals) if b < a)
        return {
            "delivered": len(self.copies),
            "duplicated": sum(n - 1 for n in self.copies.values()),
            "order_violations": violations,
            "failed_sends": self.failed,
        }


def build_plain_app(token: str, api_url: str, relay: PlainRelay, *, transport: str) -> Any:
    """The Application as a plain bot builds it: PTB's Updater, handlers run concurrently, one
    handler for group texts. `transport` "aiohttp" is the Bot API transport Daraja uses (the
    same pool size), so the comparison measures what the bots do, not their HTTP clients;
    "httpx" is PTB's stock transport (its connection pool's bookkeeping grows with the pool,
    and with 256 concurrent updates it costs more than the relay itself)."""
    from telegram.ext import ApplicationBuilder, MessageHandler, filters

    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{api_url}/bot")
        .base_file_url(f"{api_url}/file/bot")
        .concurrent_updates(True)
    )
    if transport == "aiohttp":
        from bot.delivery.http import AiohttpRequest

        builder = builder.request(AiohttpRequest(connection_pool_size=64)).get_updates_request(
            AiohttpRequest(connection_pool_size=1, read_timeout=40)
        )
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT & filters.ChatType.GROUPS, relay.on_message))
    return app


async def start_plain(app: Any, *, poll_timeout: int) -> None:
    """Initialize, start and begin long polling (what `run_polling` does, without owning the
    event loop); pending updates (the groups' creation) are dropped."""
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=poll_timeout, drop_pending_updates=True)


async def stop_plain(app: Any) -> None:
    """Stop polling and shut the Application down."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
