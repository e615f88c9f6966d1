"""The append-only, hash-chained audit log.

Each event's hash covers a domain tag, the previous event's hash and the event's canonical
serialization (sorted-key compact JSON, UTF-8). With a key, the hash is an HMAC, so someone
with write access to the database alone cannot recompute a valid chain. Appends lock the one
`audit_head` row (SQLite: the `BEGIN IMMEDIATE` write lock), so events form one total order
even with several bot processes on PostgreSQL. The application never updates or deletes
`audit_events` rows: there is no code path for it here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEvent, AuditHead, utcnow

DOMAIN = b"daraja.audit.v1\x00"
GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_body(
    *,
    seq: int,
    ts: datetime,
    component: str,
    event_type: str,
    actor: str,
    outcome: str,
    operation_id: int | None,
    payload: str,
) -> str:
    """The canonical serialization of one event (what the hash covers besides prev_hash)."""
    return canonical_json(
        {
            "seq": seq,
            "ts": ts.isoformat(timespec="microseconds"),
            "component": component,
            "event_type": event_type,
            "actor": actor,
            "outcome": outcome,
            "operation_id": operation_id,
            "payload": payload,
        }
    )


@dataclass(frozen=True)
class AuditChain:
    """Hashing rules of one deployment's chain (plain SHA-256 or keyed HMAC-SHA256)."""

    key: bytes | None = None

    def link(self, prev_hash: str, body: str) -> str:
        """The hash of an event given its predecessor's hash and its canonical body."""
        data = DOMAIN + prev_hash.encode("ascii") + b"\x00" + body.encode("utf-8")
        if self.key:
            return hmac.new(self.key, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    async def append(
        self,
        session: AsyncSession,
        *,
        component: str,
        event_type: str,
        actor: str,
        outcome: str = "ok",
        payload: dict[str, Any] | None = None,
        operation_id: int | None = None,
        ts: datetime | None = None,
    ) -> AuditEvent:
        """Append one event in the caller's transaction (commits or rolls back with it)."""
        actor = actor[:64]
        head = (
            await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        ).scalar_one()
        when = ts or utcnow()
        # Microsecond precision survives every backend; normalise before hashing.
        when = when.replace(microsecond=when.microsecond)
        payload_json = canonical_json(payload or {})
        seq = head.seq + 1
        body = event_body(
            seq=seq,
            ts=when,
            component=component,
            event_type=event_type,
            actor=actor,
            outcome=outcome,
            operation_id=operation_id,
            payload=payload_json,
        )
        digest = self.link(head.hash, body)
        event = AuditEvent(
            seq=seq,
            ts=when,
            component=component,
            event_type=event_type,
            actor=actor,
            outcome=outcome,
            operation_id=operation_id,
            payload=payload_json,
            prev_hash=head.hash,
            hash=digest,
        )
        session.add(event)
        head.seq = seq
        head.hash = digest
        await session.flush()
        return event
