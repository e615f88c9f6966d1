"""Recording a message's translations and its outbox rows: one code path for officers'
messages, SITREPs and FLASH orders, always inside the caller's transaction (the statements are
storage's, storage/relay_rows.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from storage.audit import AuditChain, PendingEvent
from storage.models import Chat, Delivery, Message
from storage.relay_rows import RelayRepo, Target, TranslationRecord
from storage.uow import SessionLike
from translation.types import Translation

__all__ = ["Target", "record_copies", "records_of"]


def records_of(translations: Mapping[str, Translation]) -> dict[str, TranslationRecord]:
    """The engine's translations as storage keeps them (route and flags as their names)."""
    return {
        lang: TranslationRecord(
            text=tr.text,
            route=tr.route.value,
            models=list(tr.models),
            score=tr.score,
            flags=[str(f) for f in tr.flags],
        )
        for lang, tr in translations.items()
    }


async def record_copies(
    s: SessionLike,
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
    `extra` rows, e.g. an in-place annotation) in the caller's transaction, exactly as the
    relay does for officers' messages; how many outbox rows."""
    return await RelayRepo(s, audit).record_copies(
        message=message,
        translations=records_of(translations),
        targets=targets,
        now=now,
        action=action,
        extra=extra,
        lead_events=lead_events,
    )
