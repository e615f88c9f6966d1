"""Recording a message's translations and its outbox rows: one code path for officers'
messages, SITREPs and FLASH orders, always inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.audit import AuditChain, PendingEvent
from storage.models import Chat, Delivery, Message, TranslationRow, split_languages
from translation.types import Translation


@dataclass(frozen=True)
class Target:
    """A target chat as recording needs it: its row id and languages (first one primary)."""

    id: int
    languages: str

    @property
    def language_list(self) -> list[str]:
        """The chat's languages, first one primary."""
        return split_languages(self.languages)


async def record_copies(
    s: AsyncSession,
    audit: AuditChain,
    *,
    message: Message,
    translations: Mapping[str, Translation],
    targets: Sequence[Chat | Target],
    now: datetime,
    action: str = "send",
    extra: Sequence[Delivery] = (),
    lead_events: Sequence[PendingEvent] = (),
) -> int:
    """`record_copies_sync` in an async transaction."""
    return await s.run_sync(
        lambda sync: record_copies_sync(
            sync,
            audit,
            message=message,
            translations=translations,
            targets=targets,
            now=now,
            action=action,
            extra=extra,
            lead_events=lead_events,
        )
    )


def record_copies_sync(
    s: Session,
    audit: AuditChain,
    *,
    message: Message,
    translations: Mapping[str, Translation],
    targets: Sequence[Chat | Target],
    now: datetime,
    action: str = "send",
    extra: Sequence[Delivery] = (),
    lead_events: Sequence[PendingEvent] = (),
) -> int:
    """Record a message's translations (audited) and one outbox row per target chat (then the
    `extra` rows, e.g. an in-place annotation), in the caller's transaction, exactly as the
    relay does for officers' messages. `lead_events` are audited before the translations (the
    message's own event). Core multi-row inserts, not the unit of work: this runs for every
    message of a burst."""
    s.flush()  # the message row (and anything else pending) first
    translation_rows: list[dict[str, Any]] = []
    events = list(lead_events)
    for lang, tr in translations.items():
        translation_rows.append(
            {
                "message_id": message.id,
                "revision": message.revision,
                "target_language": lang,
                "text": tr.text,
                "route": tr.route.value,
                "models": list(tr.models),
                "score": tr.score,
                "flags": [str(f) for f in tr.flags],
                "created_at": now,
            }
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
    # Outbox rows are inserted in order: their ids are the per-chat delivery order.
    deliveries = [
        {
            "message_id": message.id,
            "revision": message.revision,
            "target_chat_id": target.id,
            "action": action,
            "target_language": target.languages,
            "state": "pending",
            "attempts": 0,
            "created_at": now,
        }
        for target in targets
    ]
    deliveries.extend(
        {
            "message_id": row.message_id,
            "revision": row.revision,
            "target_chat_id": row.target_chat_id,
            "action": row.action,
            "target_language": row.target_language,
            "state": row.state or "pending",
            "attempts": row.attempts or 0,
            "created_at": row.created_at or now,
        }
        for row in extra
    )
    if translation_rows:
        s.execute(insert(cast(Table, TranslationRow.__table__)), translation_rows)
    if deliveries:
        s.execute(insert(cast(Table, Delivery.__table__)), deliveries)
    audit.append_many_sync(s, events)
    return len(targets) + len(extra)
