"""Recording a message's translations and its outbox rows: one code path for officers'
messages, SITREPs and FLASH orders, always inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import AuditChain
from storage.messages import MessageRepo
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
) -> int:
    """Record a message's translations (audited) and one outbox row per target chat, in the
    caller's transaction, exactly as the relay does for officers' messages."""
    repo = MessageRepo(s)
    for lang, tr in translations.items():
        await repo.add_translation(
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
        await audit.append(
            s,
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
    for target in targets:
        await repo.add_delivery(
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
        )
    return len(targets)
