"""Tamper trials: synthetic chains and an attacker's edits, to prove the verifier finds them.

Used by the test suite (a few hundred trials with a fixed seed) and by `daraja bench tamper`
(10,000 and more). Each trial builds a valid chain, applies one edit as someone with write
access to the rows would (without the HMAC key), and states the break the verifier must
report: its kind and the seq where the chain first goes wrong. Edits work on the rows as an
export file holds them (seq is a field like any other); the database trials in the tests do the
same edits in SQL, where seq is the primary key.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.audit import GENESIS, AuditChain, AuditRecord, canonical_json, format_ts
from storage.audit_verify import Anchor, Kind, VerifyResult, verify_records

KINDS: tuple[str, ...] = ("change", "delete", "insert", "swap", "truncate")
CHANGE_FIELDS: tuple[str, ...] = (
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
_WORDS = ["Kenscoff", "Furcy", "patrouille", "doubout", "checkpoint", "kituo", "RN2", "0700"]


def _random_hex(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(64))


def _payload(rng: random.Random) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 6)))
    return canonical_json({"text": text, "chat_id": -100 - rng.randint(0, 50), "lang": "ht"})


def make_chain(
    chain: AuditChain, n: int, rng: random.Random, *, start: datetime | None = None
) -> list[AuditRecord]:
    """A valid chain of `n` events with varied content."""
    when = start or datetime(2026, 11, 1, tzinfo=UTC)
    prev = GENESIS
    rows: list[AuditRecord] = []
    for seq in range(1, n + 1):
        when += timedelta(seconds=rng.randint(0, 90), microseconds=rng.randint(0, 999_999))
        row = AuditRecord(
            seq=seq,
            ts=format_ts(when),
            component=rng.choice(["relay", "enrollment", "outbox", "audit"]),
            event_type=rng.choice(["message.in", "translation", "delivery.sent", "enroll.chat"]),
            actor=f"tg:{rng.randint(1000, 9999)}",
            outcome=rng.choice(["ok", "ok", "ok", "refused"]),
            operation_id=rng.choice([None, 1, 2]),
            payload=_payload(rng),
            prev_hash=prev,
            hash="",
        )
        row = replace(row, hash=chain.link(prev, row.body()))
        rows.append(row)
        prev = row.hash
    return rows


@dataclass(frozen=True)
class Trial:
    """One tampered chain and the break the verifier must report."""

    kind: str
    detail: str
    rows: list[AuditRecord]
    expect: Anchor
    want_kind: Kind
    want_seq: int


def _changed_value(row: AuditRecord, name: str, rng: random.Random) -> object:
    value = getattr(row, name)
    if name == "ts":
        when = datetime.fromisoformat(row.ts) + timedelta(seconds=rng.choice([-3600, -1, 1, 60]))
        return format_ts(when)
    if name == "operation_id":
        return rng.choice([v for v in (None, 1, 2, 3, 99) if v != value])
    if name in ("prev_hash", "hash"):
        return _random_hex(rng)
    if name == "payload":
        # One character flipped: the smallest edit someone could make to a message.
        text = str(value)
        i = rng.randrange(len(text))
        repl = rng.choice([c for c in string.ascii_letters if c != text[i]])
        return text[:i] + repl + text[i + 1 :]
    return str(value) + rng.choice(["x", " ", "0"]) if rng.random() < 0.5 else str(value)[:-1]


def tamper(rows: list[AuditRecord], rng: random.Random, kind: str) -> Trial:
    """Apply one edit of `kind` to a copy of a valid chain (at least 3 rows)."""
    n = len(rows)
    anchor = Anchor(hash=rows[-1].hash, seq=rows[-1].seq if rng.random() < 0.5 else None)
    out = list(rows)
    if kind == "change":
        k = rng.randint(1, n)
        name = rng.choice(CHANGE_FIELDS)
        value = _changed_value(rows[k - 1], name, rng)
        changes: dict[str, Any] = {name: value}
        out[k - 1] = replace(rows[k - 1], **changes)
        return Trial(kind, f"{name} of seq {k}", out, anchor, "changed", k)
    if kind == "delete":
        k = rng.randint(1, n - 1)
        del out[k - 1]
        return Trial(kind, f"seq {k}", out, anchor, "missing", k)
    if kind == "insert":
        k = rng.randint(1, n)
        prev = rows[k - 2].hash if k > 1 else GENESIS
        base = rows[k - 1]
        forged = replace(base, payload=_payload(rng), actor=f"tg:{rng.randint(1, 999)}")
        forged = replace(forged, prev_hash=prev)
        # Without the key the attacker hashes with plain SHA-256 (right only for unkeyed chains).
        forged = replace(forged, hash=AuditChain().link(prev, forged.body()))
        out.insert(k - 1, forged)
        return Trial(kind, f"before seq {k}", out, anchor, "inserted", k)
    if kind == "swap":
        i, j = sorted(rng.sample(range(1, n + 1), 2))
        out[i - 1], out[j - 1] = out[j - 1], out[i - 1]
        return Trial(kind, f"seq {i} and {j}", out, anchor, "reordered", i)
    if kind == "truncate":
        t = rng.randint(1, n - 1)
        del out[n - t :]
        return Trial(kind, f"last {t}", out, anchor, "truncated", n - t + 1)
    raise ValueError(f"unknown tamper kind {kind!r}")


@dataclass(frozen=True)
class TrialOutcome:
    """A trial and what the verifier said."""

    trial: Trial
    result: VerifyResult

    @property
    def detected(self) -> bool:
        """The verifier reported a break."""
        return not self.result.ok

    @property
    def right(self) -> bool:
        """The verifier reported the expected kind at the expected seq."""
        b = self.result.broken
        return b is not None and (b.kind, b.seq) == (self.trial.want_kind, self.trial.want_seq)


def run_trials(
    count: int, seed: int, *, min_len: int = 3, max_len: int = 60
) -> Iterator[TrialOutcome]:
    """Run `count` random trials (all kinds, keyed and unkeyed chains), one at a time."""
    rng = random.Random(seed)
    for i in range(count):
        chain = AuditChain(key=b"trial-key" if rng.random() < 0.5 else None)
        rows = make_chain(chain, rng.randint(min_len, max_len), rng)
        trial = tamper(rows, rng, KINDS[i % len(KINDS)])
        yield TrialOutcome(trial, verify_records(trial.rows, chain, expect=trial.expect))
