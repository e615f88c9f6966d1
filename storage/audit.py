"""The append-only, hash-chained audit log.

Each event's hash covers a domain tag, the previous event's hash and the event's canonical
serialization (sorted-key compact JSON, UTF-8). With a key, the hash is an HMAC, so someone
with write access to the database alone cannot recompute a valid chain. Appends lock the one
`audit_head` row (SQLite: the `BEGIN IMMEDIATE` write lock), so events form one total order
even with several bot processes on PostgreSQL. The application never updates or deletes
`audit_events` rows: there is no code path for it here, and migration 0002 adds triggers that
refuse UPDATE and DELETE (retention purges go through `storage.audit_retention`).

`AuditRecord` is the plain, backend-neutral form of one event (time as its canonical text), used
by the verifier (`storage.audit_verify`) and the exporter (`storage.audit_export`), so that a
database walk and a JSONL export are checked by the same code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.models import AuditEvent, AuditHead, naive_utc, utcnow

DOMAIN = b"daraja.audit.v1\x00"
GENESIS = "0" * 64
PURGE_EVENT = "audit.purge"
READ_EVENT = "audit.read"
# The fields of one event, in export order.
FIELDS: tuple[str, ...] = (
    "seq",
    "ts",
    "component",
    "event_type",
    "actor",
    "outcome",
    "operation_id",
    "payload",
    "prev_hash",
    "hash",
)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_ts(ts: datetime) -> str:
    """The canonical text of an event time: UTC, microseconds, `+00:00`."""
    if ts.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def event_body(
    *,
    seq: int,
    ts: datetime | str,
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
            "ts": ts if isinstance(ts, str) else format_ts(ts),
            "component": component,
            "event_type": event_type,
            "actor": actor,
            "outcome": outcome,
            "operation_id": operation_id,
            "payload": payload,
        }
    )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit event as plain data (time as canonical text): what is hashed and exported."""

    seq: int
    ts: str
    component: str
    event_type: str
    actor: str
    outcome: str
    operation_id: int | None
    payload: str
    prev_hash: str
    hash: str

    def body(self) -> str:
        """The canonical serialization the event's hash covers (with `prev_hash`)."""
        return event_body(
            seq=self.seq,
            ts=self.ts,
            component=self.component,
            event_type=self.event_type,
            actor=self.actor,
            outcome=self.outcome,
            operation_id=self.operation_id,
            payload=self.payload,
        )

    def as_dict(self) -> dict[str, Any]:
        """All fields, in export order (payload stays the exact JSON text that was hashed)."""
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: Any) -> AuditRecord:
        """Build a record from a decoded JSONL object; ValueError names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [name for name in FIELDS if name not in data]
        if missing:
            raise ValueError(f"missing field {missing[0]!r}")
        for name in FIELDS:
            value = data[name]
            if name in ("seq", "operation_id"):
                ok = (value is None and name == "operation_id") or (
                    isinstance(value, int) and not isinstance(value, bool)
                )
            else:
                ok = isinstance(value, str)
            if not ok:
                raise ValueError(f"field {name!r} has the wrong type")
        return cls(**{name: data[name] for name in FIELDS})

    @classmethod
    def from_event(cls, event: AuditEvent) -> AuditRecord:
        """The plain form of an ORM event."""
        return cls(
            seq=event.seq,
            ts=format_ts(event.ts),
            component=event.component,
            event_type=event.event_type,
            actor=event.actor,
            outcome=event.outcome,
            operation_id=event.operation_id,
            payload=event.payload,
            prev_hash=event.prev_hash,
            hash=event.hash,
        )


@dataclass(frozen=True)
class HeadState:
    """The chain head as `audit_head` records it (seq 0 and GENESIS for an empty chain)."""

    seq: int
    hash: str


async def read_head(session: AsyncSession) -> HeadState:
    """The current head of the chain (no lock: for reading and anchoring)."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    return HeadState(seq=head.seq, hash=head.hash)


@dataclass(frozen=True)
class PendingEvent:
    """One event to append (`AuditChain.append_many`)."""

    component: str
    event_type: str
    actor: str
    outcome: str = "ok"
    payload: dict[str, Any] | None = None
    operation_id: int | None = None
    ts: datetime | None = None


_EVENTS = cast(Table, AuditEvent.__table__)
_HEAD = cast(Table, AuditHead.__table__)
# Built once: statement construction is a real share of an append's cost.
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_EVENTS = insert(_EVENTS)
_MOVE_HEAD = (
    update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("seq"), hash=bindparam("hash"))
)

# PostgreSQL: the events go in as arrays (unnest), and the head moves in the same statement.
# The two parts are shared with statements that write more in the same round trip
# (storage/outbox_claim.py): `WITH <writes>, <PG_APPEND_CTE> <PG_MOVE_HEAD>`.
PG_APPEND_CTE_IF = """
    appended AS (
        INSERT INTO audit_events
            (seq, ts, component, event_type, actor, outcome, operation_id, payload, prev_hash,
             hash)
        SELECT * FROM unnest(
            CAST(:seq AS BIGINT[]), CAST(:ts AS TIMESTAMP[]), CAST(:component AS VARCHAR[]),
            CAST(:event_type AS VARCHAR[]), CAST(:actor AS VARCHAR[]),
            CAST(:outcome AS VARCHAR[]), CAST(:operation_id AS INTEGER[]),
            CAST(:payload AS TEXT[]), CAST(:prev_hash AS VARCHAR[]), CAST(:hash AS VARCHAR[])
        ) WHERE {condition}
    )"""
PG_APPEND_CTE = PG_APPEND_CTE_IF.format(condition="true")
PG_MOVE_HEAD = "UPDATE audit_head SET seq = :head_seq, hash = :head_hash WHERE id = 1"
PG_APPEND_BINDS = (
    bindparam("seq", type_=ARRAY(BigInteger)),
    bindparam("ts", type_=ARRAY(DateTime())),
    bindparam("component", type_=ARRAY(String)),
    bindparam("event_type", type_=ARRAY(String)),
    bindparam("actor", type_=ARRAY(String)),
    bindparam("outcome", type_=ARRAY(String)),
    bindparam("operation_id", type_=ARRAY(Integer)),
    bindparam("payload", type_=ARRAY(Text)),
    bindparam("prev_hash", type_=ARRAY(String)),
    bindparam("hash", type_=ARRAY(String)),
    bindparam("head_seq", type_=BigInteger),
    bindparam("head_hash", type_=String),
)
_PG_APPEND = text(f"WITH {PG_APPEND_CTE} {PG_MOVE_HEAD}").bindparams(*PG_APPEND_BINDS)


@dataclass(frozen=True)
class AuditChain:
    """Hashing rules of one deployment's chain (plain SHA-256 or keyed HMAC-SHA256)."""

    key: bytes | None = None
    # The head each database's chain had after this process's last append, by connection
    # pool: a guess (another process, or a write that rolled back, may have moved it since)
    # that a single-statement append checks against the head in the same statement.
    _hints: dict[int, tuple[int, str]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    def head_hint(self, session: Session) -> tuple[int, str] | None:
        """The head as this process last left it on `session`'s database, if known."""
        return self._hints.get(_pool_key(session))

    def remember_head(self, session: Session, seq: int, digest: str) -> None:
        """Note the head an append in this process leaves (committed or not)."""
        self._hints[_pool_key(session)] = (seq, digest)

    def forget_head(self, session: Session, stale: tuple[int, str]) -> None:
        """The noted head `stale` was wrong: read it the next time (unless an append in this
        process has noted a newer one meanwhile)."""
        key = _pool_key(session)
        if self._hints.get(key) == stale:
            del self._hints[key]

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
        (event,) = await self.append_many(
            session,
            [
                PendingEvent(
                    component=component,
                    event_type=event_type,
                    actor=actor,
                    outcome=outcome,
                    payload=payload,
                    operation_id=operation_id,
                    ts=ts,
                )
            ],
        )
        return event

    async def append_many(
        self, session: AsyncSession, events: Sequence[PendingEvent]
    ) -> list[AuditEvent]:
        """Append events in order in the caller's transaction: the head is read (and locked)
        once and written once, however many events, so a batch costs one round of statements."""
        if not events:
            return []
        return await session.run_sync(self.append_many_sync, events)

    def append_many_sync(
        self,
        session: Session,
        events: Sequence[PendingEvent],
        *,
        head: tuple[int, str] | None = None,
    ) -> list[AuditEvent]:
        """`append_many` for synchronous transactions (`Database.write`). `head`: the head's
        (seq, hash) as the caller already read and locked it in this transaction, as the
        last part of a statement of its own (`SELECT seq, hash FROM audit_head WHERE id = 1
        FOR UPDATE`; PostgreSQL: one round trip less); None reads and locks it here."""
        if not events:
            return []
        # Core statements, not the unit of work: the head is read fresh (never from the
        # session's identity map) and the events go in as one multi-row insert.
        seq, prev = head if head is not None else session.execute(_READ_HEAD).one()
        rows = self.linked(events, seq, prev)
        self.remember_head(session, rows[-1].seq, rows[-1].hash)
        if session.get_bind().dialect.name == "postgresql":
            # The events and the head in one statement: one round trip while the head's lock
            # is held instead of two (and one statement text whatever the number of events).
            session.execute(_PG_APPEND, pg_append_params(rows))
            return rows
        # Table statements (not ORM-enabled ones): no mapper work per row.
        session.execute(_INSERT_EVENTS, [{c: getattr(row, c) for c in FIELDS} for row in rows])
        session.execute(_MOVE_HEAD, {"seq": rows[-1].seq, "hash": rows[-1].hash})
        return rows

    def linked(self, events: Sequence[PendingEvent], seq: int, prev: str) -> list[AuditEvent]:
        """The events as rows chained after the head (seq, hash), not yet written."""
        rows: list[AuditEvent] = []
        for pending in events:
            # Hash the time exactly as it reads back from every backend: UTC, microseconds.
            if pending.ts is not None and pending.ts.tzinfo is None:
                raise ValueError("audit times must be timezone-aware")
            when = (pending.ts or utcnow()).astimezone(UTC)
            actor = pending.actor[:64]
            payload_json = canonical_json(pending.payload or {})
            seq += 1
            body = event_body(
                seq=seq,
                ts=when,
                component=pending.component,
                event_type=pending.event_type,
                actor=actor,
                outcome=pending.outcome,
                operation_id=pending.operation_id,
                payload=payload_json,
            )
            digest = self.link(prev, body)
            rows.append(
                AuditEvent(
                    seq=seq,
                    ts=when,
                    component=pending.component,
                    event_type=pending.event_type,
                    actor=actor,
                    outcome=pending.outcome,
                    operation_id=pending.operation_id,
                    payload=payload_json,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        return rows


def _pool_key(session: Session) -> int:
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    return id(engine.pool)


def pg_append_params(rows: Sequence[AuditEvent]) -> dict[str, Any]:
    """The parameters of PG_APPEND_CTE and PG_MOVE_HEAD for chained rows (`linked`)."""
    columns: dict[str, Any] = {c: [getattr(row, c) for row in rows] for c in FIELDS}
    columns["ts"] = [naive_utc(when) for when in columns["ts"]]
    return {**columns, "head_seq": rows[-1].seq, "head_hash": rows[-1].hash}
