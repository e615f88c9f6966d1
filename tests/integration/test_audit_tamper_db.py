"""Randomized tampering in a real SQLite file, the way an attacker with the file would do it.

Each trial opens a transaction on a database filled by the application, drops the guard
triggers, makes one edit in plain SQL (seq is the primary key here, so insertions shift the rows
after them and swaps exchange seq values), runs the same `verify_database` the CLI runs on the
tampered rows, and rolls everything back (SQLite's DDL is transactional), so each trial starts
from the clean chain without copying files. The 10,000-trial figure is `daraja bench tamper`
(in memory); this is the database's share of it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.audit import AuditChain, canonical_json, event_body
from storage.audit_verify import Anchor, verify_database
from storage.db import Database
from tests.integration.test_audit_chain import T0

N_EVENTS = 30
TRIALS = 500
FIELDS = ("ts", "component", "event_type", "actor", "outcome", "operation_id", "payload",
          "prev_hash", "hash")  # fmt: skip
GUARDS = ("audit_events_no_update", "audit_events_no_delete", "audit_head_forward_only")


async def _pristine(path: Path, chain: AuditChain) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.upgrade()
    rng = random.Random(5)
    for i in range(N_EVENTS):
        async with db.transaction() as s:
            await chain.append(
                s,
                component=rng.choice(["relay", "outbox", "enrollment"]),
                event_type=rng.choice(["message.in", "translation", "delivery.sent"]),
                actor=f"tg:{rng.randint(1000, 9999)}",
                operation_id=rng.choice([None, 1, 2]),
                payload={"text": f"Mesaj {i}: RN2 0700", "chat_id": -1001},
                ts=T0 + timedelta(minutes=7 * i, microseconds=rng.randint(0, 999_999)),
            )
    await db.dispose()  # checkpoints the WAL: the file alone holds everything


def _hex(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(64))


def _shift_ts(raw: str, seconds: int) -> str:
    return (datetime.fromisoformat(raw) + timedelta(seconds=seconds)).isoformat(" ")


class _Sql:
    """Plain SQL on the trial's connection, as an attacker's `sqlite3` shell would run it."""

    def __init__(self, session: Session) -> None:
        self.conn = session.connection()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> _Rows:
        result = self.conn.exec_driver_sql(sql, params)
        return _Rows(result.fetchall() if result.returns_rows else [])


class _Rows(list[Any]):
    def fetchone(self) -> Any:
        return self[0]


class _InTrial:
    """Stands in for `Database` so `verify_database` reads inside the trial's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        yield self.session


def _tamper(con: _Sql, rng: random.Random, kind: str) -> tuple[str, int, Anchor | None]:
    """One edit in SQL; returns the break the verifier must report."""
    n = N_EVENTS
    hashes = {seq: h for seq, h in con.execute("SELECT seq, hash FROM audit_events")}
    if kind == "change":
        k = rng.randint(1, n)
        name = rng.choice(FIELDS)
        old = con.execute(f"SELECT {name} FROM audit_events WHERE seq = ?", (k,)).fetchone()[0]
        if name == "ts":
            new: object = _shift_ts(old, rng.choice([-60, 1, 3600]))
        elif name in ("prev_hash", "hash"):
            new = _hex(rng)
        elif name == "operation_id":
            new = rng.choice([v for v in (None, 1, 2, 7) if v != old])
        elif name == "payload":
            new = old.replace("0700", "0800") if rng.random() < 0.5 else old.replace("RN2", "RN1")
        else:
            new = old + "x"
        con.execute(f"UPDATE audit_events SET {name} = ? WHERE seq = ?", (new, k))
        return "changed", k, None
    if kind == "delete":
        k = rng.randint(1, n)
        con.execute("DELETE FROM audit_events WHERE seq = ?", (k,))
        # The last event gone while audit_head still names it: a truncated tail.
        return ("truncated" if k == n else "missing"), k, None
    if kind == "insert":
        k = rng.randint(1, n)
        prev = hashes[k - 1] if k > 1 else "0" * 64
        ts_raw = con.execute("SELECT ts FROM audit_events WHERE seq = ?", (k,)).fetchone()[0]
        # Make room: shift every later row up by one (in two steps to dodge the primary key).
        con.execute("UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= ?", (k,))
        con.execute("UPDATE audit_events SET seq = seq - 999999 WHERE seq >= 1000000")
        ts = datetime.fromisoformat(ts_raw)
        payload = canonical_json({"text": "forged order", "chat_id": -1001})
        body = event_body(
            seq=k,
            ts=ts.replace(tzinfo=UTC),
            component="relay",
            event_type="message.in",
            actor="tg:666",
            outcome="ok",
            operation_id=1,
            payload=payload,
        )
        forged_hash = AuditChain().link(prev, body)  # the attacker has no key
        con.execute(
            "INSERT INTO audit_events VALUES (?, ?, 'relay', 'message.in', 'tg:666', 'ok', 1, "
            "?, ?, ?)",
            (k, ts_raw, payload, prev, forged_hash),
        )
        return "inserted", k, None
    if kind == "swap":
        i, j = sorted(rng.sample(range(1, n + 1), 2))
        con.execute("UPDATE audit_events SET seq = -1 WHERE seq = ?", (i,))
        con.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (i, j))
        con.execute("UPDATE audit_events SET seq = ? WHERE seq = -1", (j,))
        return "reordered", i, None
    if kind == "truncate":
        t = rng.randint(1, n - 1)
        keep = n - t
        con.execute("DELETE FROM audit_events WHERE seq > ?", (keep,))
        # A careful attacker rewinds the head too: only the anchor kept elsewhere tells.
        con.execute("UPDATE audit_head SET seq = ?, hash = ?", (keep, hashes[keep]))
        anchor = Anchor(hashes[n], n if rng.random() < 0.5 else None)
        return "truncated", keep + 1, anchor
    raise AssertionError(kind)


@pytest.mark.parametrize("key", [b"deployment-key", None], ids=["hmac", "sha256"])
async def test_random_tampering_in_sqlite_is_always_found_at_the_right_seq(
    tmp_path: Path, key: bytes | None
) -> None:
    chain = AuditChain(key=key)
    path = tmp_path / "audit.db"
    await _pristine(path, chain)
    db = Database(f"sqlite+aiosqlite:///{path}")
    rng = random.Random(20261126 if key else 11262026)
    kinds = ("change", "delete", "insert", "swap", "truncate")
    wrong: list[tuple[str, tuple[str, int], object]] = []
    try:
        for trial in range(TRIALS // 2):
            kind = kinds[trial % len(kinds)]
            async with db.sessions() as session:
                await session.begin()

                def attack(sync: Session, kind: str = kind) -> tuple[str, int, Anchor | None]:
                    sql = _Sql(sync)
                    for name in GUARDS:
                        sql.execute(f"DROP TRIGGER {name}")
                    return _tamper(sql, rng, kind)

                want_kind, want_seq, anchor = await session.run_sync(attack)
                fake: Callable[..., Any] = _InTrial  # duck-typed Database
                result = await verify_database(fake(session), chain, expect=anchor)
                await session.rollback()
            got = (result.broken.kind, result.broken.seq) if result.broken else None
            if got != (want_kind, want_seq):
                wrong.append((kind, (want_kind, want_seq), result.broken))
        # Every trial was rolled back: the stored chain is untouched and still guarded.
        assert (await verify_database(db, chain)).ok
    finally:
        await db.dispose()
    assert wrong == []
