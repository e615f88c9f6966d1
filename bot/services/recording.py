"""Recording a message's translations and its outbox rows: one code path for officers'
messages, SITREPs and FLASH orders, always inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import AuditChain, PendingEvent
from storage.models import Chat, Delivery, Message, TranslationRow
from translation.types import Translation


async def record_copies(
    s: AsyncSession,
    audit: AuditChain,
    *,
    message: Message,
    translations: Mapping[str, Translation],
    targets: Sequence[Chat],
    now: datetime,
    action: str = "send",
    extra: Sequence[Delivery] = (),
    lead_events: Sequence[PendingEvent] = (),
) -> int:
    """Record a message's translations (audited) and one outbox row per target chat (then the
    `extra` rows, e.g. an in-place annotation), in the caller's transaction, exactly as the
    relay does for officers' messages. `lead_events` are audited before the translations (the
    message's own event). One flush for everything: the audit head is read once."""
    rows: list[TranslationRow | Delivery] = []
    events = list(lead_events)
    for lang, tr in translations.items():
        rows.append(
            TranslationRow(
                message_id=message.id,
                revision=message.revision,
                target_language=lang,
                text=tr.text,
                route=tr.route.value,
                models=list(tr.models),
                score=tr.score,
                flags=[str(f) for f in tr.flags],
                created_at=now,
            )
        )
        events.append(
            PendingEvent(
                component="translation",
                event_type="translation.made",
                actor="daraja",
                operation_id=message.operation_id,
                ts=now,
                payload={
                    "message_id": message.id,
                    "revision": message.revision,
                    "source": message.source_language,
                    "target": lang,
                    "text": tr.text,
                    "route": tr.route.value,
                    "models": list(tr.models),
                    "score": tr.score,
                    "flags": [str(f) for f in tr.flags],
                },
            )
        )
    # Outbox rows are added in order: their ids are the per-chat delivery order.
    rows.extend(
        Delivery(
            message_id=message.id,
            revision=message.revision,
            target_chat_id=target.id,
            action=action,
            target_language=target.languages,
            state="pending",
            attempts=0,
            created_at=now,
        )
        for target in targets
    )
    rows.extend(extra)
    s.add_all(rows)
    if events:
        await audit.append_many(s, events)  # flushes the rows too
    else:
        await s.flush()
    return len(targets) + len(extra)
