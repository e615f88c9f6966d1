"""Retention of what people wrote: the inbox's raw updates, message bodies, translations.

Three independent periods (settings `DARAJA_INBOX_RETENTION_DAYS`, default 7;
`DARAJA_MESSAGE_RETENTION_DAYS` and `DARAJA_TRANSLATION_RETENTION_DAYS`, default keep):

- inbox: a processed update (done or failed) older than its period is deleted. Only its raw
  JSON lives there (texts, `/join` codes); Telegram never redelivers an update that old, so
  nothing needs the row to recognise a replay.
- messages: the body of a message (text, entities, media) whose last change is older than the
  period is emptied and `purged_at` set; the row stays (id, chat, author, time, language,
  revision), so `/log`, replies and the status board still find it. Its translations go with
  it: a translation never outlives its original.
- translations: the text of a translation older than its period is emptied likewise.

Each purge runs in chunks, each chunk one transaction that also appends one `retention.purge`
audit event per operation, naming what went and a SHA-256 digest of the removed texts (whoever
kept a copy can show it is what was removed); the event's own seq and hash are the anchor to
keep elsewhere, as for `audit purge`. The audit log keeps its own copy of every text until
`DARAJA_AUDIT_RETENTION_DAYS` (`storage.audit_retention`) removes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import AuditChain, format_ts
from storage.db import Database
from storage.models import InboxUpdate, Message, TranslationRow

PURGE_EVENT = "retention.purge"
CHUNK = 500


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep each kind of content (None: forever)."""

    inbox_days: int | None = 7
    message_days: int | None = None
    translation_days: int | None = None


@dataclass
class Purged:
    """What one purge removed (or would remove, in a dry run)."""

    kind: str  # inbox | messages | translations
    before: datetime
    retention_days: int
    count: int = 0
    translations: int = 0  # messages: their translations emptied with them
    first_id: int | None = None
    last_id: int | None = None
    anchors: list[str] = field(default_factory=list)  # "seq:hash" of each purge event

    def add(self, ids: Sequence[int], translations: int = 0) -> None:
        """Count one chunk's rows."""
        if not ids:
            return
        self.count += len(ids)
        self.translations += translations
        self.first_id = min(ids) if self.first_id is None else min(self.first_id, *ids)
        self.last_id = max(ids) if self.last_id is None else max(self.last_id, *ids)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (for `daraja db purge --json`)."""
        return {
            "kind": self.kind,
            "before": format_ts(self.before),
            "retention_days": self.retention_days,
            "purged": self.count,
            "translations": self.translations,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "anchors": list(self.anchors),
        }


def _digest(rows: Sequence[tuple[Any, ...]]) -> str:
    """SHA-256 of the removed rows, one canonical JSON line each, in id order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(list(row), ensure_ascii=False, default=str).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


async def _audit(
    session: AsyncSession,
    chain: AuditChain,
    purged: Purged,
    *,
    actor: str,
    operation_id: int | None,
    ids: Sequence[int],
    digest: str,
    extra: dict[str, Any] | None = None,
) -> None:
    event = await chain.append(
        session,
        component="retention",
        event_type=PURGE_EVENT,
        actor=actor,
        operation_id=operation_id,
        payload={
            "kind": purged.kind,
            "before": format_ts(purged.before),
            "retention_days": purged.retention_days,
            "count": len(ids),
            "first_id": min(ids),
            "last_id": max(ids),
            "sha256": digest,
            **(extra or {}),
        },
    )
    purged.anchors.append(f"{event.seq}:{event.hash}")


async def _in_chunks(
    db: Database,
    query: Select[*tuple[Any, ...]],
    purge: Callable[[AsyncSession, Sequence[Row[Any]]], Awaitable[None]],
) -> None:
    """Hand each chunk of the rows `query` finds to `purge`, one transaction per chunk."""
    while True:
        async with db.transaction() as s:
            rows = (await s.execute(query.limit(CHUNK))).all()
            if rows:
                await purge(s, rows)
        if len(rows) < CHUNK:
            return


async def _empty_translations(session: AsyncSession, ids: Sequence[int], now: datetime) -> None:
    """Empty the texts of these translations, marking them purged at `now`."""
    await session.execute(
        update(TranslationRow)
        .where(TranslationRow.id.in_(ids))
        .values(text="", purged_at=now)
        .execution_options(synchronize_session=False)
    )


async def purge_inbox(
    db: Database,
    chain: AuditChain,
    now: datetime,
    days: int,
    *,
    actor: str = "daraja",
    dry_run: bool = False,
) -> Purged:
    """Delete processed inbox rows processed more than `days` ago."""
    purged = Purged("inbox", now - timedelta(days=days), days)
    done = InboxUpdate.state.in_(("done", "failed"))
    old = InboxUpdate.processed_at < purged.before
    if dry_run:
        async with db.transaction() as s:
            found = (await s.execute(select(InboxUpdate.update_id).where(done, old))).scalars()
            purged.add([int(i) for i in found])
        return purged

    async def chunk(s: AsyncSession, rows: Sequence[Row[Any]]) -> None:
        ids = [int(r[0]) for r in rows]
        await s.execute(
            delete(InboxUpdate)
            .where(InboxUpdate.update_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        await _audit(
            s,
            chain,
            purged,
            actor=actor,
            operation_id=None,
            ids=ids,
            digest=_digest([tuple(r) for r in rows]),
        )
        purged.add(ids)

    query = (
        select(InboxUpdate.update_id, InboxUpdate.payload)
        .where(done, old)
        .order_by(InboxUpdate.update_id)
    )
    await _in_chunks(db, query, chunk)
    return purged


async def purge_messages(
    db: Database,
    chain: AuditChain,
    now: datetime,
    days: int,
    *,
    actor: str = "daraja",
    dry_run: bool = False,
) -> Purged:
    """Empty the bodies of messages last changed more than `days` ago, with their
    translations."""
    purged = Purged("messages", now - timedelta(days=days), days)
    last_change = func.coalesce(Message.edited_at, Message.created_at)
    where = (Message.purged_at.is_(None), last_change < purged.before)
    if dry_run:
        async with db.transaction() as s:
            ids = [int(i) for i in (await s.execute(select(Message.id).where(*where))).scalars()]
            with_them = TranslationRow.message_id.in_(select(Message.id).where(*where))
            count = (
                await s.execute(
                    select(func.count())
                    .select_from(TranslationRow)
                    .where(with_them, TranslationRow.purged_at.is_(None))
                )
            ).scalar_one()
            purged.add(ids, int(count))
        return purged

    async def chunk(s: AsyncSession, rows: Sequence[Row[Any]]) -> None:
        ids = [int(r.id) for r in rows]
        translations = (
            await s.execute(
                select(TranslationRow.id, TranslationRow.message_id, TranslationRow.text)
                .where(TranslationRow.message_id.in_(ids), TranslationRow.purged_at.is_(None))
                .order_by(TranslationRow.id)
            )
        ).all()
        await s.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(text="", entities=None, media=None, purged_at=now)
            .execution_options(synchronize_session=False)
        )
        if translations:
            await _empty_translations(s, [t.id for t in translations], now)
        for operation_id in sorted({int(r.operation_id) for r in rows}):
            mine = [r for r in rows if r.operation_id == operation_id]
            mine_ids = {int(r.id) for r in mine}
            their = [t for t in translations if t.message_id in mine_ids]
            await _audit(
                s,
                chain,
                purged,
                actor=actor,
                operation_id=operation_id,
                ids=sorted(mine_ids),
                digest=_digest(
                    [(r.id, r.text, r.media) for r in mine]
                    + [(t.id, t.message_id, t.text) for t in their]
                ),
                extra={"translations": len(their)},
            )
        purged.add(ids, len(translations))

    query = (
        select(Message.id, Message.operation_id, Message.text, Message.media)
        .where(*where)
        .order_by(Message.id)
    )
    await _in_chunks(db, query, chunk)
    return purged


async def purge_translations(
    db: Database,
    chain: AuditChain,
    now: datetime,
    days: int,
    *,
    actor: str = "daraja",
    dry_run: bool = False,
) -> Purged:
    """Empty the texts of translations made more than `days` ago."""
    purged = Purged("translations", now - timedelta(days=days), days)
    where = (TranslationRow.purged_at.is_(None), TranslationRow.created_at < purged.before)
    if dry_run:
        async with db.transaction() as s:
            found = (await s.execute(select(TranslationRow.id).where(*where))).scalars()
            purged.add([int(i) for i in found])
        return purged

    async def chunk(s: AsyncSession, rows: Sequence[Row[Any]]) -> None:
        ids = [int(r.id) for r in rows]
        await _empty_translations(s, ids, now)
        for operation_id in sorted({int(r.operation_id) for r in rows}):
            mine = [r for r in rows if r.operation_id == operation_id]
            await _audit(
                s,
                chain,
                purged,
                actor=actor,
                operation_id=operation_id,
                ids=[int(r.id) for r in mine],
                digest=_digest([(r.id, r.message_id, r.text) for r in mine]),
            )
        purged.add(ids)

    query = (
        select(
            TranslationRow.id,
            TranslationRow.message_id,
            TranslationRow.text,
            Message.operation_id,
        )
        .join(Message, Message.id == TranslationRow.message_id)
        .where(*where)
        .order_by(TranslationRow.id)
    )
    await _in_chunks(db, query, chunk)
    return purged


async def apply_retention(
    db: Database,
    chain: AuditChain,
    policy: RetentionPolicy,
    now: datetime,
    *,
    actor: str = "daraja",
    dry_run: bool = False,
) -> list[Purged]:
    """Every purge the policy asks for, messages before translations."""
    done: list[Purged] = []
    if policy.inbox_days is not None:
        done.append(
            await purge_inbox(db, chain, now, policy.inbox_days, actor=actor, dry_run=dry_run)
        )
    if policy.message_days is not None:
        done.append(
            await purge_messages(db, chain, now, policy.message_days, actor=actor, dry_run=dry_run)
        )
    if policy.translation_days is not None:
        done.append(
            await purge_translations(
                db, chain, now, policy.translation_days, actor=actor, dry_run=dry_run
            )
        )
    return done
